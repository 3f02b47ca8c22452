"""``GET /metrics``: Prometheus text for the farm as the record shows it (tasks by status, devices
by hub, queue depth per hub, tasks waiting), computed at scrape time, plus this api process's HTTP
figures. Like the health probes it needs no key: keep it on an internal network or behind your proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.broker import get_redis
from shared.db.engine import get_engine
from shared.queues import device_queue

router = APIRouter(tags=["health"])

STATUS_NAMES = {0: "pending", 1: "running", 2: "completed", 3: "failed"}


class FarmCollector(Collector):
    """Reads the farm's state when Prometheus scrapes (a few small queries, whatever the table size)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tasks = GaugeMetricFamily("phonefleet_tasks", "Tasks by status", labels=["status"])
        devices = GaugeMetricFamily("phonefleet_devices", "Known phones by hub and state", labels=["hub", "online"])
        busy = GaugeMetricFamily("phonefleet_devices_busy", "Phones holding an attempt, by hub", labels=["hub"])
        depth = GaugeMetricFamily("phonefleet_queue_depth", "Messages in the hub's device queues", labels=["hub"])
        waiting = GaugeMetricFamily("phonefleet_tasks_due", "Pending tasks that are due and not yet sent")
        with get_engine().connect() as conn:
            counts: dict[int, int] = {
                int(s): int(n) for s, n in conn.execute(text("SELECT status, sum(n) FROM task_count GROUP BY status"))
            }
            for status, name in STATUS_NAMES.items():
                tasks.add_metric([name], float(counts.get(status, 0)))
            rows = conn.execute(
                text("SELECT coalesce(hub, ''), online, count(*), count(lease_task_id) FROM device GROUP BY 1, 2")
            ).all()
            serials = conn.execute(text("SELECT coalesce(hub, ''), serial FROM device WHERE online")).all()
            due = conn.execute(
                text("SELECT count(*) FROM task WHERE status = 0 AND dispatched_at IS NULL AND due_at <= now()")
            ).scalar()
        busy_by_hub: dict[str, float] = {}
        for hub, online, count, leased in rows:
            devices.add_metric([hub, "true" if online else "false"], float(count))
            busy_by_hub[hub] = busy_by_hub.get(hub, 0.0) + float(leased)
        for hub, leased in busy_by_hub.items():
            busy.add_metric([hub], leased)
        if serials:
            pipe = get_redis().pipeline(transaction=False)
            for _, serial in serials:
                pipe.llen(device_queue(serial))
            lengths = pipe.execute()
            by_hub: dict[str, float] = {}
            for (hub, _), length in zip(serials, lengths, strict=True):
                by_hub[hub] = by_hub.get(hub, 0.0) + float(length)
            for hub, total in by_hub.items():
                depth.add_metric([hub], total)
        waiting.add_metric([], float(due or 0))
        yield from (tasks, devices, busy, depth, waiting)


def request_histogram(registry: CollectorRegistry) -> Histogram:
    """The api's request timings, registered once per app."""
    return Histogram(
        "phonefleet_http_request_seconds",
        "api requests by method, route and status",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )


class RequestMetrics:
    """ASGI middleware timing every request by method, route template and status."""

    def __init__(self, app: ASGIApp, seconds: Histogram) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.seconds.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - began
            )


def route_template(scope: Scope) -> str:
    """``/api/v1/task/101`` → ``/api/v1/task/{task_id}``; paths no route matched share one label, so
    that scanners cannot grow the series without bound."""
    if scope.get("route") is None:
        return "unmatched"
    segments = str(scope.get("path", "")).split("/")
    for name, value in (scope.get("path_params") or {}).items():
        text = str(value)
        for index in range(len(segments) - 1, -1, -1):
            if segments[index] == text:
                segments[index] = "{" + name + "}"
                break
    return "/".join(segments)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
