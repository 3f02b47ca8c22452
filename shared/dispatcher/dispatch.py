"""The dispatch step: give every idle, online device its oldest due waiting task.

``claim`` runs inside the caller's transaction (so the api can create tasks and claim devices with a
single commit); ``send`` runs after that commit. A device's lease is taken in the same statement
that marks its task dispatched, so a device queue never holds more than one message, and a task that
is deleted or stopped before its turn never reaches the broker.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from shared.broker import get_celery
from shared.queues import RUN_TASK, device_queue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DispatchOrder:
    """One attempt of one task, as the hub receives it."""

    task_id: int
    attempt: int
    serial: str
    script_name: str
    script_config: dict[str, Any]
    platform: str
    username: str | None
    packagename: str | None

    def message(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{{'task_id': {self.task_id}, 'attempt': {self.attempt}, 'serial': {self.serial!r}, "
            f"'script_name': {self.script_name!r}}}"
        )


_CLAIM_SQL = """
WITH idle AS (
    SELECT serial FROM device
    WHERE online AND lease_task_id IS NULL {device_filter}
      -- Lock only phones that have something to take: an idle phone stays unlocked for the api,
      -- which claims it in the transaction that creates its task.
      AND EXISTS (
          SELECT 1 FROM task
          WHERE task.serial = device.serial AND status = 0 AND dispatched_at IS NULL AND due_at <= now()
      )
    ORDER BY serial
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT t.id, t.serial FROM idle
    CROSS JOIN LATERAL (
        SELECT id, serial FROM task
        WHERE task.serial = idle.serial AND status = 0 AND dispatched_at IS NULL AND due_at <= now()
        ORDER BY {order}
        LIMIT 1
        FOR UPDATE
    ) AS t
), dispatched AS (
    UPDATE task SET attempt = task.attempt + 1, dispatched_at = clock_timestamp()
    FROM picked WHERE task.id = picked.id AND task.status = 0 AND task.dispatched_at IS NULL
    RETURNING task.id, task.attempt, task.serial, task.script_name, task.script_config,
              task.platform, task.username, task.packagename
), leased AS (
    UPDATE device SET lease_task_id = d.id, lease_attempt = d.attempt,
                      lease_since = clock_timestamp(), lease_heartbeat_at = clock_timestamp()
    FROM dispatched AS d WHERE device.serial = d.serial
    RETURNING device.serial
)
SELECT d.* FROM dispatched AS d JOIN leased USING (serial)
"""


@functools.cache
def _claim_statement(device_filter: str, random_order: bool) -> TextClause:
    return text(_CLAIM_SQL.format(device_filter=device_filter, order="random()" if random_order else "id"))


def claim(session: Session, serials: Iterable[str] | None = None, *, random_order: bool = False) -> list[DispatchOrder]:
    """Lease idle online devices (all, or those in ``serials``) to their next due task.

    Runs in the caller's transaction; the caller must :func:`send` the orders after it commits.
    """
    params: dict[str, Any] = {}
    device_filter = ""
    if serials is not None:
        wanted = sorted(set(serials))
        if not wanted:
            return []
        device_filter = "AND serial = ANY(:serials)"
        params["serials"] = wanted
    rows = session.execute(_claim_statement(device_filter, random_order), params).mappings().all()
    return [
        DispatchOrder(
            task_id=row["id"],
            attempt=row["attempt"],
            serial=row["serial"],
            script_name=row["script_name"],
            script_config=row["script_config"],
            platform=row["platform"],
            username=row["username"],
            packagename=row["packagename"],
        )
        for row in rows
    ]


def send(orders: Sequence[DispatchOrder]) -> list[DispatchOrder]:
    """Publish each order on its device's queue; returns the orders that could not be sent.

    The messages go out in one Redis round trip (kombu's publish batch, where the installed kombu has
    it). An order that was not sent keeps its lease; the dispatcher's recovery re-sends attempts that
    never started, so a broker outage delays tasks but loses none.
    """
    if not orders:
        return []
    app = get_celery()
    failed: list[DispatchOrder] = []
    buffered: list[DispatchOrder] = []
    try:
        with app.producer_or_acquire() as producer:
            batch = producer.batch() if hasattr(producer, "batch") else contextlib.nullcontext()
            with batch:
                for order in orders:
                    try:
                        # The default exchange ("") routes by queue name alone: no binding table to
                        # lose when Redis restarts empty.
                        app.send_task(
                            RUN_TASK,
                            kwargs=order.message(),
                            queue=device_queue(order.serial),
                            exchange="",
                            routing_key=device_queue(order.serial),
                            producer=producer,
                            retry=False,
                            # What Flower shows; Celery would otherwise repr the whole config.
                            argsrepr="()",
                            kwargsrepr=order.summary(),
                        )
                    except Exception as exc:  # the broker is down or refused; recovery will re-send
                        _send_failed([order], exc)
                        failed.append(order)
                    else:
                        buffered.append(order)
    except Exception as exc:  # the batch could not be flushed: none of it reached the broker
        _send_failed(buffered, exc)
        return [*failed, *buffered]
    for order in buffered:
        log.info("dispatched", task_id=order.task_id, attempt=order.attempt, serial=order.serial)
    return failed


def _send_failed(orders: Sequence[DispatchOrder], exc: Exception) -> None:
    for order in orders:
        log.warning(
            "dispatch_send_failed", task_id=order.task_id, attempt=order.attempt, serial=order.serial, error=str(exc)
        )
