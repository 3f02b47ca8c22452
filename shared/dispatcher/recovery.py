"""The dispatcher's timer: what no report will ever trigger.

- due scheduled tasks, and any idle phone with waiting work (the dispatch step over every device);
- attempts whose hub went silent (no heartbeat within ``heartbeat_timeout``): failed, or back to
  waiting when auto-retry is on;
- attempts sent but never started within ``dispatch_timeout`` (the broker lost the message, or the
  hub died before starting): back to waiting, to be sent again with a new attempt number;
- phones whose hub stopped reporting: offline;
- stop requests whose signal may have been lost (Redis was down): signalled again.

Only one dispatcher replica runs a tick at a time (a transaction-scoped advisory lock); the others
skip it. Each step is a compare-and-set, so a tick that overlaps a report is harmless.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.broker import get_redis
from shared.dispatcher.transitions import Effects, apply_finished
from shared.dispatcher.webhooks import enqueue_task_end
from shared.failures import FailureKind
from shared.messages import FinishedReport
from shared.queues import CLAIM_KEY_PREFIX, alive_key, ended_key
from shared.settings import Settings

log = structlog.get_logger(__name__)

TICK_LOCK = 7254100918
HUB_SILENCE_FACTOR = 3  # a hub that misses this many device reports in a row is gone


def try_lead(session: Session) -> bool:
    """True if this transaction may run the tick (no other replica is running one)."""
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": TICK_LOCK}).scalar())


def expire_silent_attempts(session: Session, settings: Settings) -> Effects:
    """End attempts whose phone lease has had no heartbeat for ``heartbeat_timeout``."""
    effects = Effects()
    now = datetime.now(UTC)
    expired = session.execute(
        text(
            "SELECT serial, lease_task_id, lease_attempt, lease_since, lease_heartbeat_at FROM device "
            "WHERE lease_task_id IS NOT NULL AND lease_heartbeat_at < :cutoff FOR UPDATE SKIP LOCKED"
        ),
        {"cutoff": now - timedelta(seconds=settings.heartbeat_timeout_seconds)},
    ).all()
    evidence = _hub_evidence(expired)
    for lease in expired:
        seen = evidence.get((lease.lease_task_id, lease.lease_attempt), HubEvidence())
        if seen.ended is not None:
            # The hub wrote how it ended; the report itself is stuck behind others. Apply it now.
            report = FinishedReport.model_validate(seen.ended)
            effects.merge(apply_finished(session, report, settings))
            effects.recovered.append("end_read_from_hub")
            continue
        if seen.alive:
            # Its hub says so directly; its reports are only late (a backlog in the broker).
            session.execute(
                text("UPDATE device SET lease_heartbeat_at = :now WHERE serial = :serial"),
                {"now": now, "serial": lease.serial},
            )
            continue
        task = session.execute(
            text(
                "SELECT status, dispatched_at, started_at, retry_count, stop_requested_at FROM task "
                "WHERE id = :id AND attempt = :attempt AND status IN (0, 1) FOR UPDATE"
            ),
            {"id": lease.lease_task_id, "attempt": lease.lease_attempt},
        ).first()
        if task is not None and task.status == 0 and not seen.claimed:
            # Sent but not started: wait for the dispatch timeout, counted from the send.
            if lease.lease_since > now - timedelta(seconds=settings.dispatch_timeout_seconds):
                continue
            session.execute(text("UPDATE task SET dispatched_at = NULL WHERE id = :id"), {"id": lease.lease_task_id})
            effects.recovered.append("never_started")
            log.warning(
                "attempt_never_started", task_id=lease.lease_task_id, attempt=lease.lease_attempt, serial=lease.serial
            )
        elif task is not None:
            silent = (now - lease.lease_heartbeat_at).total_seconds()
            remark = f"hub lost: no heartbeat for {silent:.0f}s"
            if task.stop_requested_at is not None:
                _fail(session, lease.lease_task_id, "stopped by user", FailureKind.STOPPED, now)
            elif settings.auto_retry and task.retry_count < settings.max_retry_count:
                delay = random.uniform(settings.retry_delay_min_seconds, settings.retry_delay_max_seconds)
                session.execute(
                    text(
                        "UPDATE task SET status = 0, retry_count = retry_count + 1, dispatched_at = NULL, "
                        "started_at = NULL, hub = NULL, failure_kind = :kind, due_at = :due, remark = :remark "
                        "WHERE id = :id"
                    ),
                    {
                        "id": lease.lease_task_id,
                        "kind": FailureKind.HUB_LOST.value,
                        "due": now + timedelta(seconds=delay),
                        "remark": f"retry #{task.retry_count + 1} in {delay:.0f}s after: {remark}",
                    },
                )
            else:
                _fail(session, lease.lease_task_id, remark, FailureKind.HUB_LOST, now)
            effects.recovered.append("hub_lost")
            log.warning(
                "attempt_lost",
                task_id=lease.lease_task_id,
                attempt=lease.lease_attempt,
                serial=lease.serial,
                silent_seconds=round(silent, 1),
            )
        # The old attempt is fenced off: if its hub comes back, the signal tells it to let go.
        effects.cancel.append((lease.lease_task_id, lease.lease_attempt))
        session.execute(
            text(
                "UPDATE device SET lease_task_id = NULL, lease_attempt = NULL, lease_since = NULL, "
                "lease_heartbeat_at = NULL WHERE serial = :serial"
            ),
            {"serial": lease.serial},
        )
        effects.claim_serials.add(lease.serial)
    return effects


@dataclass(frozen=True)
class HubEvidence:
    """What a hub wrote straight to Redis about an attempt (see shared.queues)."""

    alive: bool = False
    claimed: bool = False
    ended: dict[str, Any] | None = None


def _hub_evidence(leases: Sequence[Any]) -> dict[tuple[int, int], HubEvidence]:
    """The hubs' own word on these attempts; nothing if Redis is down (then heartbeats alone decide)."""
    if not leases:
        return {}
    refs = [(int(lease.lease_task_id), int(lease.lease_attempt)) for lease in leases]
    try:
        pipe = get_redis().pipeline(transaction=False)
        for task_id, attempt in refs:
            pipe.get(alive_key(task_id, attempt))
            pipe.exists(f"{CLAIM_KEY_PREFIX}{task_id}:{attempt}")
            pipe.get(ended_key(task_id, attempt))
        values = pipe.execute()
    except Exception:
        return {}
    found: dict[tuple[int, int], HubEvidence] = {}
    for index, ref in enumerate(refs):
        alive, claimed, ended = values[3 * index : 3 * index + 3]
        found[ref] = HubEvidence(
            alive=alive is not None, claimed=bool(claimed), ended=json.loads(ended) if ended else None
        )
    return found


def _fail(session: Session, task_id: int, remark: str, kind: FailureKind, now: datetime) -> None:
    session.execute(
        text(
            "UPDATE task SET status = 3, end_time = :now, remark = :remark, failure_kind = :kind, "
            "dispatched_at = NULL WHERE id = :id"
        ),
        {"id": task_id, "now": now, "remark": remark, "kind": kind.value},
    )
    enqueue_task_end(session, task_id)


def mark_silent_hubs_offline(session: Session, settings: Settings, device_report_seconds: float) -> None:
    cutoff = datetime.now(UTC) - timedelta(seconds=device_report_seconds * HUB_SILENCE_FACTOR)
    rows = session.execute(
        text(
            "UPDATE device SET online = false, state = 'hub_silent' WHERE online AND last_seen < :cutoff "
            "RETURNING serial, hub"
        ),
        {"cutoff": cutoff},
    ).all()
    for serial, hub in rows:
        log.warning("device_offline_hub_silent", serial=serial, hub=hub)


def pending_stop_signals(session: Session) -> list[tuple[int, int]]:
    """Running attempts that were asked to stop: their signal is repeated every tick until they end."""
    rows = session.execute(
        text("SELECT id, attempt FROM task WHERE status = 1 AND stop_requested_at IS NOT NULL")
    ).all()
    return [(int(r.id), int(r.attempt)) for r in rows]
