"""Reports from this hub to the dispatcher, over the ``control`` queue.

Reports about attempts (started, heartbeat, logs, finished, refused) are not sent one message each:
they go into an outgoing buffer that one sender thread empties into ``phonefleet.reports`` messages.
The sender sends as soon as it has something and takes whatever piled up while it was busy, so an
idle hub sends each report at once and a busy hub sends fewer, larger messages (the dispatcher
applies each in one transaction). Order is kept: reports leave in the order they were made.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import Celery
from pydantic import BaseModel

from shared import metrics
from shared.messages import (
    AttemptRef,
    DeviceInfo,
    DevicesReport,
    FinishedReport,
    HeartbeatReport,
    LogLine,
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
    REPORTS_BATCH,
)

log = structlog.get_logger(__name__)

# Keep retrying a report through a broker blip; past this the dispatcher's timeouts take over.
RETRY_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3.0}
BATCH_MAX_REPORTS = 200  # per message: a batch is one transaction on the dispatcher, keep it short
LINGER_SECONDS = 0.02  # when busy, how long a report waits for others to share its message
BUSY_SECONDS = 0.1  # a hub that sent less than this long ago is busy
BUFFER_LIMIT = 100_000  # reports waiting to be sent; past this the oldest are dropped (finished ones are re-sent)


def now() -> datetime:
    return datetime.now(UTC)


class Reporter:
    """Typed senders for every report a hub makes."""

    def __init__(self, app: Celery, hub: str) -> None:
        self.app = app
        self.hub = hub
        self._buffer: deque[tuple[str, dict[str, Any]]] = deque()
        self._ready = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._last_send = 0.0
        self._sender = threading.Thread(target=self._send_loop, name="report-sender", daemon=True)
        self._sender.start()

    # --- the outgoing buffer ----------------------------------------------------------------------

    def _queue(self, name: str, payload: dict[str, Any]) -> bool:
        with self._ready:
            if len(self._buffer) >= BUFFER_LIMIT:
                dropped, _ = self._buffer.popleft()
                log.error("report_dropped_buffer_full", report=dropped, limit=BUFFER_LIMIT)
                metrics.HUB_REPORTS_LOST.inc()
            self._buffer.append((name, payload))
            self._ready.notify()
        return True

    def _send_loop(self) -> None:
        while True:
            with self._ready:
                while not self._buffer and not self._closing:
                    self._ready.wait()
                if not self._buffer:
                    return
                if time.monotonic() - self._last_send < BUSY_SECONDS:
                    # Busy: let more reports join this message (a few ms of delay for far fewer messages
                    # and transactions); an idle hub's report goes at once.
                    deadline = time.monotonic() + LINGER_SECONDS
                    while len(self._buffer) < BATCH_MAX_REPORTS and not self._closing:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._ready.wait(left)
                self._last_send = time.monotonic()
                count = min(len(self._buffer), BATCH_MAX_REPORTS)
                batch = [self._buffer.popleft() for _ in range(count)]
                self._in_flight = count
            try:
                kinds = ", ".join(sorted({n.rpartition(".")[2] for n, _ in batch}))
                self._send_payload(
                    REPORTS_BATCH,
                    {"hub": self.hub, "reports": [{"kind": n, "report": p} for n, p in batch]},
                    summary=f"{{'hub': {self.hub!r}, 'reports': '{count} ({kinds})'}}",
                )
            finally:
                with self._ready:
                    self._in_flight = 0
                    self._ready.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every report made so far has been handed to the broker (or given up on)."""
        with self._ready:
            return self._ready.wait_for(lambda: not self._buffer and not self._in_flight, timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered (up to ``timeout``), then stop the sender."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        self._sender.join(timeout)
        with self._ready:
            if self._buffer:
                log.error("reports_unsent_at_exit", count=len(self._buffer))

    # --- sending --------------------------------------------------------------------------------

    def _send(self, name: str, report: BaseModel) -> bool:
        return self._queue(name, report.model_dump(mode="json"))

    def _send_payload(self, name: str, payload: dict[str, Any], summary: str | None = None) -> bool:
        try:
            self.app.send_task(
                name,
                kwargs=payload,
                queue=CONTROL_QUEUE,
                exchange="",
                routing_key=CONTROL_QUEUE,
                retry=True,
                retry_policy=RETRY_POLICY,
                # What Flower shows of the message (Celery would repr all of it otherwise).
                argsrepr="()",
                kwargsrepr=summary,
            )
        except Exception as exc:
            log.error("report_lost", report=name, error=str(exc))
            metrics.HUB_REPORTS_LOST.inc()
            return False
        return True

    def devices(self, devices: list[DeviceInfo]) -> bool:
        """Sent on its own, at once: it changes many phones' rows, which a batch of attempt reports
        must not lock."""
        report = DevicesReport(hub=self.hub, devices=devices, at=now())
        return self._send_payload(REPORT_DEVICES, report.model_dump(mode="json"))

    def started(self, task_id: int, attempt: int, serial: str) -> bool:
        report = StartedReport(task_id=task_id, attempt=attempt, serial=serial, hub=self.hub, at=now())
        return self._send(REPORT_STARTED, report)

    def heartbeat(self, running: list[AttemptRef], ending: list[AttemptRef]) -> bool:
        report = HeartbeatReport(hub=self.hub, running=running, ending=ending, at=now())
        return self._send(REPORT_HEARTBEAT, report)

    def logs(self, task_id: int, attempt: int, serial: str, lines: list[LogLine]) -> bool:
        report = LogsReport(task_id=task_id, attempt=attempt, serial=serial, lines=lines)
        return self._send(REPORT_LOGS, report)

    def finished_report(self, **fields: Any) -> dict[str, Any]:
        """A finished report, ready to send (and to send again until acknowledged)."""
        return FinishedReport(hub=self.hub, at=now(), **fields).model_dump(mode="json")

    def finished_raw(self, report: dict[str, Any]) -> bool:
        return self._queue(REPORT_FINISHED, report)

    def refused(self, task_id: int, attempt: int, serial: str, reason: str, detail: str = "") -> bool:
        report = RefusedReport(
            task_id=task_id,
            attempt=attempt,
            serial=serial,
            hub=self.hub,
            reason=reason,
            detail=detail,
            at=now(),
        )
        return self._send(REPORT_REFUSED, report)
