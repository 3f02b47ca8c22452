"""The hub worker process: ``phonefleet worker --hub NAME``."""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery
from celery.signals import setup_logging, worker_ready, worker_shutting_down

from shared.broker import get_celery, run_worker
from shared.queues import RUN_TASK, hub_node, hub_queue
from shared.settings import Settings, get_settings
from workers.hub.hub import Hub

log = structlog.get_logger(__name__)


def make_app(hub_name: str, settings: Settings, hostname: str) -> tuple[Celery, Hub]:
    """The hub's Celery app with ``phonefleet.run`` bound to a :class:`Hub`."""
    app = get_celery()
    hub = Hub(hub_name, settings, app, hostname)

    @app.task(name=RUN_TASK, acks_late=True, ignore_result=True)
    def run(**order: Any) -> None:
        hub.run(order)

    @worker_ready.connect(weak=False)
    def _ready(sender: Any = None, **_: Any) -> None:
        # The sender is Celery's consumer: the device tracker adds and drops queues through it.
        hub.start(sender)

    @worker_shutting_down.connect(weak=False)
    def _stopping(**_: Any) -> None:
        hub.stop()

    return app, hub


@setup_logging.connect
def _keep_our_logging(**_: Any) -> None:
    """Connected so that Celery leaves the process's logging (structlog, configured at start) alone."""


def main(hub_name: str, concurrency: int, loglevel: str) -> None:
    """Run the hub worker until SIGTERM/SIGINT (running tasks finish first: warm shutdown)."""
    settings = get_settings()
    hostname = hub_node(hub_name)
    app, hub = make_app(hub_name, settings, hostname)
    try:
        run_worker(app, queues=[hub_queue(hub_name)], concurrency=concurrency, hostname=hostname, loglevel=loglevel)
    finally:
        # The ends of the last attempts are buffered; hand them to the broker before the process goes,
        # and keep those not yet acknowledged on disk for the next start.
        hub.reporter.close(timeout=10.0)
        hub.save_outbox()
