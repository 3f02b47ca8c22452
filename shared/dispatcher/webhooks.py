"""Webhooks: when a task ends (completed or failed), its end is pushed to the task's URL and to its
key's URL, signed, retried with backoff, and logged in ``webhook_delivery``.

The signature is ``X-Phonefleet-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with
the key's webhook secret (``PHONEFLEET_WEBHOOK_SECRET`` for callers without a key). Receivers check
it with :func:`verify` (or the same few lines) and use ``X-Phonefleet-Delivery`` to drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.db.engine import transaction
from shared.settings import Settings

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Phonefleet-Signature"
BATCH = 50
LEASE_SECONDS = 60  # a delivery being attempted is hidden this long from other dispatchers


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: int = 300) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` and is recent (what a receiver checks)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def enqueue_task_end(session: Session, task_id: int) -> int:
    """Queue deliveries for a task that just reached completed or failed; returns how many."""
    row = session.execute(
        text(
            "SELECT t.id, t.serial, t.username, t.platform, t.script_name, t.status, t.remark, t.failure_kind, "
            "t.retry_count, t.attempt, t.source, t.hub, t.started_at, t.end_time, t.created_at, "
            "t.webhook_url, t.api_key_id, k.webhook_url AS key_url "
            "FROM task t LEFT JOIN api_key k ON k.id = t.api_key_id WHERE t.id = :id"
        ),
        {"id": task_id},
    ).first()
    if row is None or row.status not in (2, 3):
        return 0
    urls = list(dict.fromkeys(u for u in (row.webhook_url, row.key_url) if u))
    if not urls:
        return 0
    event = "task.completed" if row.status == 2 else "task.failed"
    payload = {
        "event": event,
        "task": {
            "id": row.id,
            "serial": row.serial,
            "username": row.username,
            "platform": row.platform,
            "script_name": row.script_name,
            "status": row.status,
            "remark": row.remark,
            "failure_kind": row.failure_kind,
            "retry_count": row.retry_count,
            "attempt": row.attempt,
            "source": row.source,
            "hub": row.hub,
            "created_at": _iso(row.created_at),
            "started_at": _iso(row.started_at),
            "end_time": _iso(row.end_time),
        },
    }
    for url in urls:
        session.execute(
            text(
                "INSERT INTO webhook_delivery (task_id, api_key_id, url, event, payload) "
                "VALUES (:task_id, :key, :url, :event, CAST(:payload AS jsonb))"
            ),
            {"task_id": task_id, "key": row.api_key_id, "url": url, "event": event, "payload": json.dumps(payload)},
        )
    return len(urls)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """After ``attempts`` failures: base × 4^(attempts-1), at most an hour, with ±20 % jitter."""
    delay: float = min(3600.0, settings.webhook_retry_base_seconds * 4.0 ** (attempts - 1))
    return delay * random.uniform(0.8, 1.2)


class Deliverer:
    """Claims due deliveries (SKIP LOCKED, so replicas share the work), posts them, records the result."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                claimed = self.deliver_due()
            except Exception as exc:  # database down: try again shortly
                log.warning("webhook_round_failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
                claimed = 0
            stop.wait(0.05 if claimed == BATCH else 0.5)
        self.pool.shutdown(wait=True)
        self.client.close()

    def deliver_due(self) -> int:
        with transaction() as session:
            rows = session.execute(
                text(
                    "UPDATE webhook_delivery d SET attempts = d.attempts + 1, "
                    "next_attempt_at = now() + make_interval(secs => :lease) "
                    "FROM (SELECT id FROM webhook_delivery WHERE status = 'pending' AND next_attempt_at <= now() "
                    "      ORDER BY next_attempt_at LIMIT :batch FOR UPDATE SKIP LOCKED) due "
                    "WHERE d.id = due.id "
                    "RETURNING d.id, d.url, d.event, d.payload, d.attempts, d.api_key_id"
                ),
                {"lease": LEASE_SECONDS, "batch": BATCH},
            ).all()
            # A comprehension, not dict(): dict() would take the Result for a mapping (it has keys()).
            secrets: dict[int, str | None] = {  # noqa: C416
                key_id: secret
                for key_id, secret in session.execute(
                    text("SELECT id, webhook_secret FROM api_key WHERE id = ANY(:ids)"),
                    {"ids": sorted({r.api_key_id for r in rows if r.api_key_id is not None})},
                )
            }
        if not rows:
            return 0
        futures = [self.pool.submit(self._attempt, row, secrets.get(row.api_key_id)) for row in rows]
        for future in futures:
            future.result()
        return len(rows)

    def _attempt(self, row: Any, key_secret: str | None) -> None:
        secret = key_secret or self.settings.webhook_secret
        body = json.dumps(row.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "phonefleet-webhooks",
            "X-Phonefleet-Event": row.event,
            "X-Phonefleet-Delivery": str(row.id),
        }
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body, int(time.time()))
        status_code: int | None = None
        error: str | None = None
        try:
            response = self.client.post(row.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        self._record(row, status_code, error)

    def _record(self, row: Any, status_code: int | None, error: str | None) -> None:
        now = datetime.now(UTC)
        if error is None:
            status, next_at = "delivered", now
        elif row.attempts >= self.settings.webhook_max_attempts:
            status, next_at = "failed", now
        else:
            status, next_at = "pending", now + timedelta(seconds=backoff_seconds(row.attempts, self.settings))
        with transaction() as session:
            session.execute(
                text(
                    "UPDATE webhook_delivery SET status = :status, next_attempt_at = :next, "
                    "last_status_code = :code, last_error = :error, "
                    "delivered_at = CASE WHEN :status = 'delivered' THEN :now ELSE delivered_at END WHERE id = :id"
                ),
                {"status": status, "next": next_at, "code": status_code, "error": error, "now": now, "id": row.id},
            )
        log.info(
            "webhook_attempt",
            delivery=row.id,
            task_id=row.payload["task"]["id"],
            url=row.url,
            attempt=row.attempts,
            outcome=status,
            status_code=status_code,
            error=error,
        )
