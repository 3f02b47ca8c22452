"""Prometheus metrics of the dispatcher and hub processes (the api computes its own at scrape time,
see api/metrics). Each process serves them on ``metrics_host:<its port>``; names start ``phonefleet_``."""

from __future__ import annotations

import structlog
from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = structlog.get_logger(__name__)

# Seconds: from a tenth of a second (no-op scripts) to an hour (long uploads).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Dispatcher.
REPORTS = Counter("phonefleet_reports", "Hub reports applied, by kind", ["kind"])
REPORTS_REQUEUED = Counter("phonefleet_reports_requeued", "Reports put back while the database was down")
DISPATCHED = Counter("phonefleet_dispatched", "Attempts sent to phones")
START_LATENCY = Histogram(
    "phonefleet_start_latency_seconds",
    "From an attempt's dispatch to its script starting on the phone",
    buckets=LATENCY_BUCKETS,
)
TASK_DURATION = Histogram(
    "phonefleet_task_duration_seconds",
    "From a script's start to its end, by script and outcome",
    ["script", "outcome"],
    buckets=DURATION_BUCKETS,
)
RECOVERED = Counter("phonefleet_recovered_attempts", "Attempts ended or re-sent by the timer", ["reason"])

# Hub worker.
HUB_DEVICES = Gauge("phonefleet_hub_devices", "Phones this hub's adb server lists, by adb state", ["state"])
HUB_RUNNING = Gauge("phonefleet_hub_running_tasks", "Scripts running on this hub now")
HUB_SCRIPT_SECONDS = Histogram(
    "phonefleet_hub_script_seconds",
    "Script run time on this hub, by script and outcome",
    ["script", "outcome"],
    buckets=DURATION_BUCKETS,
)
HUB_REFUSED = Counter("phonefleet_hub_refused", "Dispatched attempts this hub did not run, by reason", ["reason"])
HUB_REPORTS_LOST = Counter("phonefleet_hub_reports_lost", "Reports that could not be sent (broker unreachable)")


def serve(host: str, port: int, process: str) -> None:
    """Expose this process's metrics over HTTP, unless ``port`` is 0; a busy port is logged, not fatal."""
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics_port_unavailable", process=process, port=port, error=str(exc))
        return
    log.info("metrics_serving", process=process, url=f"http://{host}:{port}/metrics")
