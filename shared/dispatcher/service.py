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
    apply_completed_many,
    apply_devices,
    apply_finished,
    apply_heartbeat,
    apply_logs,
    apply_refused,
    apply_started,
    apply_started_many,
    bulk_completable,
    lock_devices,
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
    MEMORY_KEY,
    REPORT_DEVICES,
    REPORT_FINISHED,
    REPORT_HEARTBEAT,
    REPORT_LOGS,
    REPORT_REFUSED,
    REPORT_STARTED,
    REPORTS_BATCH,
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
        orders = dispatch.claim(session, effects.claim_serials, random_order=settings.random_order)
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


def _redis_remembers(settings: Settings) -> bool:
    """False until Redis has kept its data for a full heartbeat timeout.

    The hubs' alive, claim and end keys are the evidence recovery reads before it declares an attempt
    lost or never started. After Redis lost its data (emptied, restarted without persistence) that
    evidence is gone until the hubs' next heartbeats write it again, and silence means nothing. A key
    holding the time Redis was first seen with it tells every replica how long Redis has remembered."""
    try:
        client = get_redis()
        now = time.time()
        client.set(MEMORY_KEY, repr(now), nx=True)
        since = client.get(MEMORY_KEY)
        return since is not None and now - float(since) >= settings.heartbeat_timeout_seconds
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
            judge = started >= sighted_from and _reports_caught_up(settings) and _redis_remembers(settings)
            tick(settings, judge_silence=judge)
        except (OperationalError, DBAPIError) as exc:
            log.warning("timer_database_unavailable", error=str(exc).splitlines()[0])
            sighted_from = time.monotonic() + settings.heartbeat_timeout_seconds
            stop.wait(DB_RETRY_PAUSE_SECONDS)
        except Exception:
            log.exception("timer_failed")
            stop.wait(DB_RETRY_PAUSE_SECONDS)
        stop.wait(max(0.0, settings.scheduler_tick_seconds - (time.monotonic() - started)))


def _database_unavailable(exc: DBAPIError) -> bool:
    """True for errors that say the database is down or busy (retry later), not that the report is bad."""
    return isinstance(exc, OperationalError) or exc.connection_invalidated


def _requeue(what: str, exc: DBAPIError) -> Reject:
    log.warning("report_requeued_database_unavailable", model=what, error=str(exc).splitlines()[0])
    metrics.REPORTS_REQUEUED.inc()
    time.sleep(DB_RETRY_PAUSE_SECONDS)
    return Reject(str(exc), requeue=True)


def _kind(model: type[BaseModel]) -> str:
    return model.__name__.removesuffix("Report").lower()


def _handler(model: type[M], apply: Callable[[Session, M], Effects]) -> Callable[..., None]:
    kind = _kind(model)

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
        except DBAPIError as exc:
            if not _database_unavailable(exc):
                raise
            raise _requeue(model.__name__, exc) from exc

    return handle


def _finished(session: Session, report: FinishedReport) -> Effects:
    return apply_finished(session, report, get_settings())


# The reports a batch may carry: each about attempts on phones, none about the phone list.
ATTEMPT_REPORTS: dict[str, tuple[type[BaseModel], Callable[[Session, Any], Effects]]] = {
    REPORT_STARTED: (StartedReport, apply_started),
    REPORT_HEARTBEAT: (HeartbeatReport, apply_heartbeat),
    REPORT_LOGS: (LogsReport, apply_logs),
    REPORT_FINISHED: (FinishedReport, _finished),
    REPORT_REFUSED: (RefusedReport, apply_refused),
}


def _serials(report: BaseModel) -> list[str]:
    if isinstance(report, HeartbeatReport):
        return [r.serial for r in (*report.running, *report.ending)]
    return [str(getattr(report, "serial", ""))]


def apply_batch(reports: list[tuple[str, BaseModel]], settings: Settings) -> None:
    """Apply a hub's reports in order, in one transaction: every phone they name is locked first (in
    serial order, like everywhere), the phones they freed are claimed once, orders sent after commit."""
    with transaction() as session:
        lock_devices(session, [serial for _, report in reports for serial in _serials(report)])
        # Starts first, then the common completions in bulk, then the rest in the hub's order (a
        # heartbeat or log line that overtakes the end of its attempt changes nothing).
        started = [r for _, r in reports if isinstance(r, StartedReport)]
        completed = [r for _, r in reports if isinstance(r, FinishedReport) and bulk_completable(r)]
        effects = apply_started_many(session, started)
        effects.merge(apply_completed_many(session, completed))
        bulk = {id(r) for r in (*started, *completed)}
        for name, report in reports:
            if id(report) not in bulk:
                effects.merge(ATTEMPT_REPORTS[name][1](session, report))
        orders = dispatch.claim(session, effects.claim_serials, random_order=settings.random_order)
    after_commit(effects, orders)


def handle_batch(hub: str = "", reports: list[dict[str, Any]] | None = None, **_: Any) -> None:
    """The ``phonefleet.reports`` handler. A report that cannot be parsed is logged and left out; if
    applying the batch fails for another reason than the database, each report is applied on its own so
    that one bad report does not hold back the others."""
    global _last_report_at
    _last_report_at = time.monotonic()
    parsed: list[tuple[str, BaseModel]] = []
    for item in reports or []:
        name = item.get("kind") if isinstance(item, dict) else None
        entry = ATTEMPT_REPORTS.get(name) if isinstance(name, str) else None
        if entry is None or name is None:
            log.error("report_invalid", hub=hub, kind=name, error="unknown report kind in batch")
            continue
        try:
            parsed.append((name, entry[0].model_validate(item.get("report"))))
        except ValidationError as exc:
            log.error("report_invalid", hub=hub, model=entry[0].__name__, error=str(exc))
    if not parsed:
        return
    settings = get_settings()
    try:
        apply_batch(parsed, settings)
    except DBAPIError as exc:
        if _database_unavailable(exc):
            raise _requeue(f"batch of {len(parsed)}", exc) from exc
        log.exception("report_batch_failed_applying_one_by_one", hub=hub, reports=len(parsed))
        _apply_one_by_one(parsed, settings)
    except Exception:
        log.exception("report_batch_failed_applying_one_by_one", hub=hub, reports=len(parsed))
        _apply_one_by_one(parsed, settings)
    for _name, applied in parsed:
        metrics.REPORTS.labels(_kind(type(applied))).inc()


def _apply_one_by_one(parsed: list[tuple[str, BaseModel]], settings: Settings) -> None:
    for name, report in parsed:
        try:
            apply_report(ATTEMPT_REPORTS[name][1], report, settings)
        except DBAPIError as exc:
            if _database_unavailable(exc):
                raise _requeue(f"batch of {len(parsed)}", exc) from exc
            log.exception("report_failed", report=name)
        except Exception:
            log.exception("report_failed", report=name)


def make_app(settings: Settings | None = None) -> Celery:
    """The dispatcher's Celery app with the report handlers registered."""
    settings = settings or get_settings()
    app = get_celery()

    # One report a message is what hubs of earlier versions send, and what tests may send by hand.
    handlers: list[tuple[str, Callable[..., None]]] = [
        (REPORT_DEVICES, _handler(DevicesReport, apply_devices)),
        *((name, _handler(model, apply)) for name, (model, apply) in ATTEMPT_REPORTS.items()),
        (REPORTS_BATCH, handle_batch),
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
            pool="solo" if concurrency == 1 else "threads",
            loglevel=loglevel,
        )
    finally:
        stop.set()
        timer.join(timeout=5)
        webhooks.join(timeout=10)
