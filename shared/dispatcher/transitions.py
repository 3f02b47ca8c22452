"""How hub reports change the record. Every change is a compare-and-set on ``(id, attempt, status)``
so that a report of an attempt that is no longer current changes nothing (fencing), and a report
delivered twice changes nothing the second time (idempotence).

Each function runs inside the caller's transaction and returns what the caller must do after the
commit: the phones that may take their next task, and the attempts that must be told to stop.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db.models import TaskLog, TaskScreenshot
from shared.dispatcher.webhooks import enqueue_task_end
from shared.failures import FailureKind, is_retryable
from shared.messages import (
    DevicesReport,
    FinishedReport,
    HeartbeatReport,
    LogLine,
    LogsReport,
    RefusedReport,
    StartedReport,
)
from shared.settings import Settings

log = structlog.get_logger(__name__)

STOPPED_REMARK = "stopped by user"


@dataclass
class Effects:
    """What to do once the transaction has committed."""

    claim_serials: set[str] = field(default_factory=set)
    cancel: list[tuple[int, int]] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)
    # For the metrics: seconds from dispatch to start, and (script, outcome, seconds) of ended runs.
    start_latencies: list[float] = field(default_factory=list)
    durations: list[tuple[str, str, float]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)

    def merge(self, other: Effects) -> None:
        self.claim_serials |= other.claim_serials
        self.cancel.extend(other.cancel)
        self.acks.extend(other.acks)
        self.start_latencies.extend(other.start_latencies)
        self.durations.extend(other.durations)
        self.recovered.extend(other.recovered)


_LOCK_DEVICES = text("SELECT serial FROM device WHERE serial = ANY(:serials) ORDER BY serial FOR UPDATE")


def lock_devices(session: Session, serials: list[str]) -> None:
    """Lock these phones' rows, in serial order, before touching any task row.

    Every transaction that changes both a phone and a task takes the phone first (the dispatch step
    does too), so two reports can never wait on each other's rows.
    """
    if serials:
        session.execute(_LOCK_DEVICES, {"serials": sorted(set(serials))})


def _release_lease(session: Session, serial: str, task_id: int, attempt: int) -> bool:
    """Free the phone if this attempt still holds it."""
    result = session.execute(
        text(
            "UPDATE device SET lease_task_id = NULL, lease_attempt = NULL, lease_since = NULL, "
            "lease_heartbeat_at = NULL WHERE serial = :serial AND lease_task_id = :task_id "
            "AND lease_attempt = :attempt RETURNING serial"
        ),
        {"serial": serial, "task_id": task_id, "attempt": attempt},
    )
    return result.first() is not None


def apply_devices(session: Session, report: DevicesReport) -> Effects:
    """Record the phones a hub has; phones it had before and no longer lists go offline (unless
    another hub has reported them since: a phone moved between hubs belongs to the last reporter)."""
    effects = Effects()
    seen: list[str] = []
    for device in report.devices:
        online = device.state == "device"
        session.execute(
            text(
                "INSERT INTO device (serial, hub, online, state, model, properties, last_seen) "
                "VALUES (:serial, :hub, :online, :state, :model, CAST(:props AS jsonb), :at) "
                "ON CONFLICT (serial) DO UPDATE SET hub = excluded.hub, online = excluded.online, "
                "state = excluded.state, model = COALESCE(excluded.model, device.model), "
                "properties = device.properties || excluded.properties, last_seen = excluded.last_seen "
                "WHERE device.hub IS DISTINCT FROM excluded.hub OR device.online <> excluded.online "
                "OR device.state <> excluded.state OR device.last_seen < excluded.last_seen - interval '5 seconds'"
            ),
            {
                "serial": device.serial,
                "hub": report.hub,
                "online": online,
                "state": device.state,
                "model": device.model,
                "props": _json(device.properties),
                "at": report.at,
            },
        )
        seen.append(device.serial)
        if online:
            effects.claim_serials.add(device.serial)
    gone = session.execute(
        text(
            "UPDATE device SET online = false, state = 'gone', last_seen = :at "
            "WHERE hub = :hub AND online AND NOT (serial = ANY(:seen)) RETURNING serial"
        ),
        {"hub": report.hub, "seen": seen, "at": report.at},
    ).all()
    for (serial,) in gone:
        log.info("device_offline", serial=serial, hub=report.hub)
    return effects


def apply_started(session: Session, report: StartedReport) -> Effects:
    """Mark the attempt running (idempotent: a heartbeat may have done it first); a start of an attempt
    that is stopped, deleted or superseded tells its hub to let go."""
    lock_devices(session, [report.serial])
    return apply_started_many(session, [report])


def apply_heartbeat(session: Session, report: HeartbeatReport) -> Effects:
    """Keep the leases of running attempts alive. A heartbeat also stands in for a lost "started"
    report, and names attempts the record no longer wants (deleted, fenced off): those are told to stop."""
    effects = Effects()
    lock_devices(session, [r.serial for r in (*report.running, *report.ending)])
    if report.ending:
        # The end of these is on its way: keep their phones leased until it arrives.
        session.execute(
            text(
                "UPDATE device SET lease_heartbeat_at = greatest(lease_heartbeat_at, :at) "
                "FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[])) AS r(task_id, attempt) "
                "WHERE device.lease_task_id = r.task_id AND device.lease_attempt = r.attempt"
            ),
            {
                "ids": [r.task_id for r in report.ending],
                "attempts": [r.attempt for r in report.ending],
                "at": datetime.now(UTC),
            },
        )
    if not report.running:
        return effects
    params = {
        "ids": [r.task_id for r in report.running],
        "attempts": [r.attempt for r in report.running],
        "at": datetime.now(UTC),
        "hub": report.hub,
    }
    session.execute(
        text(
            "UPDATE task SET status = 1, started_at = COALESCE(started_at, :at), hub = :hub "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[])) AS r(task_id, attempt) "
            "WHERE task.id = r.task_id AND task.attempt = r.attempt AND task.status = 0 "
            "AND task.dispatched_at IS NOT NULL"
        ),
        params,
    )
    session.execute(
        text(
            "UPDATE device SET lease_heartbeat_at = greatest(lease_heartbeat_at, :at) "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[])) AS r(task_id, attempt) "
            "WHERE device.lease_task_id = r.task_id AND device.lease_attempt = r.attempt"
        ),
        params,
    )
    wanted = session.execute(
        text(
            "SELECT r.task_id, r.attempt "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[])) AS r(task_id, attempt) "
            "JOIN task ON task.id = r.task_id "
            "AND task.attempt = r.attempt AND task.status IN (0, 1) AND task.stop_requested_at IS NULL"
        ),
        params,
    ).all()
    keep = {(int(a), int(b)) for a, b in wanted}
    effects.cancel.extend((r.task_id, r.attempt) for r in report.running if (r.task_id, r.attempt) not in keep)
    return effects


def insert_logs(session: Session, task_id: int, attempt: int, lines: list[LogLine]) -> None:
    """Append lines to a task's log; lines of a deleted task are dropped."""
    if not lines:
        return
    exists = session.execute(text("SELECT 1 FROM task WHERE id = :id"), {"id": task_id}).first()
    if exists is None:
        return
    session.execute(
        insert(TaskLog),
        [
            {
                "task_id": task_id,
                "attempt": attempt,
                "at": ln.at,
                "level": ln.level,
                "message": ln.message,
                "fields": ln.fields,
            }
            for ln in lines
        ],
    )


def apply_logs(session: Session, report: LogsReport) -> Effects:
    insert_logs(session, report.task_id, report.attempt, report.lines)
    return Effects()


def apply_finished(session: Session, report: FinishedReport, settings: Settings) -> Effects:
    """End the attempt: completed, failed, or (auto-retry) back to waiting after a random delay."""
    effects = Effects()
    lock_devices(session, [report.serial])
    insert_logs(session, report.task_id, report.attempt, report.lines)
    current = session.execute(
        text(
            "SELECT status, retry_count, stop_requested_at FROM task "
            "WHERE id = :id AND attempt = :attempt AND status IN (0, 1) FOR UPDATE"
        ),
        {"id": report.task_id, "attempt": report.attempt},
    ).first()
    if current is not None:
        known = {k.value for k in FailureKind}
        kind = FailureKind(report.failure_kind) if report.failure_kind in known else FailureKind.SCRIPT_ERROR
        if report.outcome == "failed" and (kind is FailureKind.STOPPED or current.stop_requested_at is not None):
            _end(session, report, status=3, remark=STOPPED_REMARK, kind=FailureKind.STOPPED.value, effects=effects)
        elif report.outcome == "completed":
            _end(session, report, status=2, remark=report.remark, kind=None, effects=effects)
        elif settings.auto_retry and is_retryable(kind) and current.retry_count < settings.max_retry_count:
            delay = random.uniform(settings.retry_delay_min_seconds, settings.retry_delay_max_seconds)
            session.execute(
                text(
                    "UPDATE task SET status = 0, retry_count = retry_count + 1, dispatched_at = NULL, "
                    "started_at = NULL, end_time = NULL, hub = NULL, failure_kind = :kind, due_at = :due, "
                    "remark = :remark WHERE id = :id"
                ),
                {
                    "id": report.task_id,
                    "kind": kind.value,
                    "due": datetime.now(UTC) + timedelta(seconds=delay),
                    "remark": f"retry #{current.retry_count + 1} in {delay:.0f}s after: {report.remark}",
                },
            )
        else:
            _end(session, report, status=3, remark=report.remark, kind=kind.value, effects=effects)
        if report.screenshot_png_b64:
            png = base64.b64decode(report.screenshot_png_b64)
            stmt = insert(TaskScreenshot).values(task_id=report.task_id, attempt=report.attempt, png=png)
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["task_id"],
                    set_={"attempt": stmt.excluded.attempt, "png": stmt.excluded.png, "taken_at": text("now()")},
                )
            )
    if _release_lease(session, report.serial, report.task_id, report.attempt):
        effects.claim_serials.add(report.serial)
    # Recorded or refused as stale, the hub may forget this report now.
    effects.acks.append((report.task_id, report.attempt))
    return effects


def _end(
    session: Session, report: FinishedReport, *, status: int, remark: str, kind: str | None, effects: Effects
) -> None:
    row = session.execute(
        text(
            "UPDATE task SET status = :status, end_time = :at, remark = :remark, failure_kind = :kind, "
            "hub = COALESCE(hub, :hub), started_at = COALESCE(started_at, :at) WHERE id = :id "
            "RETURNING script_name, started_at"
        ),
        {
            "status": status,
            "at": report.at,
            "remark": remark[:2000],
            "kind": kind,
            "hub": report.hub,
            "id": report.task_id,
        },
    ).first()
    if row is not None:
        enqueue_task_end(session, report.task_id)
        outcome = "completed" if status == 2 else "failed"
        effects.durations.append((row.script_name, outcome, max(0.0, (report.at - row.started_at).total_seconds())))


def apply_refused(session: Session, report: RefusedReport) -> Effects:
    """The hub did not run the attempt. Unless it was cancelled or a duplicate, the task waits again
    (a phone that moved to another hub gets it there)."""
    effects = Effects()
    lock_devices(session, [report.serial])
    if report.reason in ("not_attached", "busy"):
        session.execute(
            text(
                "UPDATE task SET dispatched_at = NULL WHERE id = :id AND attempt = :attempt "
                "AND status = 0 AND dispatched_at IS NOT NULL"
            ),
            {"id": report.task_id, "attempt": report.attempt},
        )
    if report.reason == "invalid":
        session.execute(
            text(
                "UPDATE task SET status = 3, end_time = :at, remark = :remark, failure_kind = 'bad_config' "
                "WHERE id = :id AND attempt = :attempt AND status IN (0, 1)"
            ),
            {"id": report.task_id, "attempt": report.attempt, "at": report.at, "remark": report.detail[:2000]},
        )
    if report.reason != "duplicate" and _release_lease(session, report.serial, report.task_id, report.attempt):
        effects.claim_serials.add(report.serial)
    return effects


def _json(value: object) -> str:
    import json

    return json.dumps(value)


# --- many reports at once ----------------------------------------------------------------------
# A busy hub's batch holds dozens of "started" and "completed" reports; each kind is applied in a
# few statements for the whole batch instead of a few per report. Same compare-and-set conditions as
# the one-report functions above; the caller has locked the phones.


_ARRAY_OF = {
    "ids": "task_id",
    "attempts": "attempt",
    "ats": "at",
    "hubs": "hub",
    "serials": "serial",
    "remarks": "remark",
}


def _arrays(reports: Sequence[BaseModel], *names: str) -> dict[str, list[Any]]:
    """Parameters for ``unnest``: one array per field, in report order."""
    return {name: [getattr(r, _ARRAY_OF[name]) for r in reports] for name in names}


_STARTED_MANY = text(
    "WITH r AS (SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[]), "
    "CAST(:ats AS timestamptz[]), CAST(:hubs AS text[]), CAST(:serials AS text[])) "
    "AS r(task_id, attempt, at, hub, serial)), "
    "started AS (UPDATE task SET status = 1, "
    "started_at = LEAST(COALESCE(task.started_at, r.at), r.at), hub = r.hub FROM r "
    "WHERE task.id = r.task_id AND task.attempt = r.attempt "
    "AND (task.status = 1 OR (task.status = 0 AND task.dispatched_at IS NOT NULL)) "
    "RETURNING task.id, task.attempt, task.stop_requested_at, task.dispatched_at, task.started_at), "
    "leased AS (UPDATE device SET lease_heartbeat_at = now() FROM r WHERE device.serial = r.serial "
    "AND device.lease_task_id = r.task_id AND device.lease_attempt = r.attempt) "
    "SELECT r.task_id, r.attempt, r.at, r.serial, s.id IS NOT NULL AS current, s.stop_requested_at, "
    "s.dispatched_at, s.started_at FROM r LEFT JOIN started s ON s.id = r.task_id AND s.attempt = r.attempt"
)


def apply_started_many(session: Session, reports: list[StartedReport]) -> Effects:
    """``apply_started`` for many reports."""
    effects = Effects()
    if not reports:
        return effects
    rows = session.execute(
        _STARTED_MANY,
        _arrays(reports, "ids", "attempts", "ats", "hubs", "serials"),
    ).all()
    for row in rows:
        if not row.current:
            log.info("stale_start", task_id=row.task_id, attempt=row.attempt, serial=row.serial)
            effects.cancel.append((row.task_id, row.attempt))
            continue
        if row.dispatched_at is not None and row.started_at == row.at:
            effects.start_latencies.append(max(0.0, (row.at - row.dispatched_at).total_seconds()))
        if row.stop_requested_at is not None:
            effects.cancel.append((row.task_id, row.attempt))
    return effects


def bulk_completable(report: FinishedReport) -> bool:
    """Reports ``apply_completed_many`` takes: completed, no screenshot, no log lines."""
    return report.outcome == "completed" and not report.screenshot_png_b64 and not report.lines


_COMPLETED_MANY = text(
    "WITH r AS (SELECT DISTINCT ON (task_id, attempt) * FROM unnest(CAST(:ids AS bigint[]), "
    "CAST(:attempts AS int[]), CAST(:ats AS timestamptz[]), CAST(:remarks AS text[]), "
    "CAST(:hubs AS text[]), CAST(:serials AS text[])) AS r(task_id, attempt, at, remark, hub, serial)), "
    "ended AS (UPDATE task SET status = 2, end_time = r.at, remark = left(r.remark, 2000), "
    "failure_kind = NULL, hub = COALESCE(task.hub, r.hub), started_at = COALESCE(task.started_at, r.at) "
    "FROM r WHERE task.id = r.task_id AND task.attempt = r.attempt AND task.status IN (0, 1) "
    "RETURNING task.id, task.script_name, task.started_at, r.at, "
    "(task.webhook_url IS NOT NULL OR EXISTS (SELECT 1 FROM api_key k WHERE k.id = task.api_key_id "
    "AND k.webhook_url IS NOT NULL)) AS maybe_webhook), "
    "released AS (UPDATE device SET lease_task_id = NULL, lease_attempt = NULL, lease_since = NULL, "
    "lease_heartbeat_at = NULL FROM r WHERE device.serial = r.serial AND device.lease_task_id = r.task_id "
    "AND device.lease_attempt = r.attempt RETURNING device.serial) "
    "SELECT 'ended' AS what, e.id, e.script_name, e.started_at, e.at, e.maybe_webhook, NULL AS serial "
    "FROM ended e UNION ALL "
    "SELECT 'released', NULL, NULL, NULL, NULL, NULL, serial FROM released"
)


def apply_completed_many(session: Session, reports: list[FinishedReport]) -> Effects:
    """``apply_finished`` for many reports of completed attempts (see ``bulk_completable``)."""
    effects = Effects()
    if not reports:
        return effects
    rows = session.execute(
        _COMPLETED_MANY,
        _arrays(reports, "ids", "attempts", "ats", "remarks", "hubs", "serials"),
    ).all()
    for row in rows:
        if row.what == "released":
            effects.claim_serials.add(row.serial)
            continue
        if row.maybe_webhook:
            enqueue_task_end(session, row.id)
        effects.durations.append((row.script_name, "completed", max(0.0, (row.at - row.started_at).total_seconds())))
    effects.acks.extend((r.task_id, r.attempt) for r in reports)
    return effects
