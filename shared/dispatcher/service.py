"""The dispatcher process: a Celery worker on the ``control`` queue that writes hub reports to
PostgreSQL and hands each freed phone its next task, plus the timer of ``recovery``.

Reports are acknowledged only after their transaction commits (acks late). While PostgreSQL is
down a report is put back on the queue after a pause, so hubs' reports wait in the broker and are
applied once the database is back; nothing is lost and nothing is applied twice (compare-and-set).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from celery import Celery
from celery.exceptions import Reject
from celery.signals import setup_logging
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from shared import metrics
from shared.broker import StallWatchdog, get_celery, get_redis, run_worker
from shared.db.engine import transaction
from shared.dispatcher import dispatch, recovery
from shared.dispatcher.cancel import request_cancel
from shared.dispatcher.transitions import (
    Effects,
    apply_devices,
    apply_finished,
    apply_heartbeat,
    apply_logs,
    apply_refused,
    apply_started,
)
from shared.dispatcher.webhooks import Deliverer
from shared.messages import (
    DevicesReport,
    FinishedReport,
    HeartbeatReport,
    LogsReport,
    RefusedReport,
    StartedReport,
)
from shared.queues import (
    CONTROL_QUEUE,
    REPORT_DEVICES,
    REPORT_FINISHED,
    REPORT_HEARTBEAT,
    REPORT_LOGS,
    REPORT_REFUSED,
    REPORT_STARTED,
    ack_key,
    dispatcher_node,
)
from shared.settings import Settings, get_settings

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)

DEVICE_REPORT_SECONDS = 10.0  # hubs send their device list at least this often
DB_RETRY_PAUSE_SECONDS = 1.0
STALL_SECONDS = 10.0
_last_report_at = time.monotonic()


def _consumer_stalled() -> bool:
    """True if reports wait in the broker and none was taken for a while."""
    waiting = int(get_redis().llen(CONTROL_QUEUE))
    return waiting > 0 and time.monotonic() - _last_report_at > STALL_SECONDS


ACK_TTL_SECONDS = 24 * 3600


def after_commit(effects: Effects, orders: list[dispatch.DispatchOrder]) -> None:
    """Send what a committed transaction decided: dispatch orders, stop signals, acknowledgements."""
    failed = dispatch.send(orders)
    metrics.DISPATCHED.inc(len(orders) - len(failed))
    for seconds in effects.start_latencies:
        metrics.START_LATENCY.observe(seconds)
    for script, outcome, seconds in effects.durations:
        metrics.TASK_DURATION.labels(script, outcome).observe(seconds)
    for reason in effects.recovered:
        metrics.RECOVERED.labels(reason).inc()
    if not effects.cancel and not effects.acks:
        return
    try:
        client = get_redis()
        if effects.cancel:
            request_cancel(client, effects.cancel)
        if effects.acks:
            pipe = client.pipeline(transaction=False)
            for task_id, attempt in effects.acks:
                pipe.set(ack_key(task_id, attempt), 1, ex=ACK_TTL_SECONDS)
            pipe.execute()
    except Exception as exc:  # Redis down: stop signals are repeated by the timer, reports re-sent by hubs
        log.warning("broker_write_failed", error=str(exc), cancel=effects.cancel, acks=len(effects.acks))


def apply_report(apply: Callable[[Session, M], Effects], report: M, settings: Settings) -> None:
    """Apply one report in one transaction, claim the phones it freed, then send."""
    with transaction() as session:
        effects = apply(session, report)
        orders = (
            dispatch.claim(session, effects.claim_serials, random_order=settings.random_order)
            if effects.claim_serials
            else []
        )
    after_commit(effects, orders)


def tick(settings: Settings, *, judge_silence: bool = True) -> None:
    """One round of the timer (see ``recovery``); a no-op on replicas that are not leading.

    ``judge_silence`` is False while this dispatcher may not have seen the latest heartbeats (just
    started, or just back from a database outage, with reports still waiting in the broker): silence
    in the record then says nothing about the hubs."""
    with transaction() as session:
        if not recovery.try_lead(session):
            return
        effects = Effects()
        if judge_silence:
            effects = recovery.expire_silent_attempts(session, settings)
            recovery.mark_silent_hubs_offline(session, settings, DEVICE_REPORT_SECONDS)
        orders = dispatch.claim(session, None, random_order=settings.random_order)
        effects.cancel.extend(recovery.pending_stop_signals(session))
    after_commit(effects, orders)


def _reports_caught_up(settings: Settings) -> bool:
    """False while reports wait in the broker by the hundreds: the record is behind what hubs said."""
    try:
        return int(get_redis().llen(CONTROL_QUEUE)) < settings.report_backlog_limit
    except Exception:
        return False


def run_timer(settings: Settings, stop: threading.Event) -> None:
    """Tick every ``scheduler_tick_seconds`` until ``stop``; survive a database outage.

    Attempts are judged silent only once the record has had a full heartbeat timeout to catch up
    (after this process starts, and after every outage it sees)."""
    sighted_from = time.monotonic() + settings.heartbeat_timeout_seconds
    while not stop.is_set():
        started = time.monotonic()
        try:
            tick(settings, judge_silence=started >= sighted_from and _reports_caught_up(settings))
        except (OperationalError, DBAPIError) as exc:
            log.warning("timer_database_unavailable", error=str(exc).splitlines()[0])
            sighted_from = time.monotonic() + settings.heartbeat_timeout_seconds
            stop.wait(DB_RETRY_PAUSE_SECONDS)
        except Exception:
            log.exception("timer_failed")
            stop.wait(DB_RETRY_PAUSE_SECONDS)
        stop.wait(max(0.0, settings.scheduler_tick_seconds - (time.monotonic() - started)))


def _handler(model: type[M], apply: Callable[[Session, M], Effects]) -> Callable[..., None]:
    kind = model.__name__.removesuffix("Report").lower()

    def handle(**payload: Any) -> None:
        global _last_report_at
        _last_report_at = time.monotonic()
        try:
            report = model.model_validate(payload)
        except ValidationError as exc:
            log.error("report_invalid", model=model.__name__, error=str(exc))
            return  # acknowledged: a malformed message would fail the same way forever
        try:
            apply_report(apply, report, get_settings())
            metrics.REPORTS.labels(kind).inc()
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError) and not exc.connection_invalidated:
                raise
            log.warning("report_requeued_database_unavailable", model=model.__name__, error=str(exc).splitlines()[0])
            metrics.REPORTS_REQUEUED.inc()
            time.sleep(DB_RETRY_PAUSE_SECONDS)
            raise Reject(str(exc), requeue=True) from exc

    return handle


def make_app(settings: Settings | None = None) -> Celery:
    """The dispatcher's Celery app with the report handlers registered."""
    settings = settings or get_settings()
    app = get_celery()

    def finished(session: Session, report: FinishedReport) -> Effects:
        return apply_finished(session, report, get_settings())

    handlers: list[tuple[str, Callable[..., None]]] = [
        (REPORT_DEVICES, _handler(DevicesReport, apply_devices)),
        (REPORT_STARTED, _handler(StartedReport, apply_started)),
        (REPORT_HEARTBEAT, _handler(HeartbeatReport, apply_heartbeat)),
        (REPORT_LOGS, _handler(LogsReport, apply_logs)),
        (REPORT_FINISHED, _handler(FinishedReport, finished)),
        (REPORT_REFUSED, _handler(RefusedReport, apply_refused)),
    ]
    for name, handler in handlers:
        app.task(name=name, acks_late=True, ignore_result=True)(handler)
    return app


@setup_logging.connect
def _keep_our_logging(**_: Any) -> None:
    """Connected so that Celery leaves the process's logging (structlog, configured at start) alone."""


def main(concurrency: int, loglevel: str) -> None:
    """Run the dispatcher until SIGTERM/SIGINT."""
    settings = get_settings()
    app = make_app(settings)
    metrics.serve(settings.metrics_host, settings.dispatcher_metrics_port, "dispatcher")
    stop = threading.Event()
    timer = threading.Thread(target=run_timer, args=(settings, stop), name="dispatcher-timer", daemon=True)
    timer.start()
    webhooks = threading.Thread(target=Deliverer(settings).run, args=(stop,), name="webhooks", daemon=True)
    webhooks.start()
    StallWatchdog("dispatcher", _consumer_stalled).start()
    try:
        run_worker(
            app,
            queues=[CONTROL_QUEUE],
            concurrency=concurrency,
            hostname=dispatcher_node(),
            loglevel=loglevel,
        )
    finally:
        stop.set()
        timer.join(timeout=5)
        webhooks.join(timeout=10)
