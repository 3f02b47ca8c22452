"""Reports from this hub to the dispatcher, over the ``control`` queue."""

from __future__ import annotations

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
)

log = structlog.get_logger(__name__)

# Keep retrying a report through a broker blip; past this the dispatcher's timeouts take over.
RETRY_POLICY = {"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3.0}


def now() -> datetime:
    return datetime.now(UTC)


class Reporter:
    """Typed senders for every report a hub makes."""

    def __init__(self, app: Celery, hub: str) -> None:
        self.app = app
        self.hub = hub

    def _send(self, name: str, report: BaseModel) -> bool:
        return self._send_payload(name, report.model_dump(mode="json"))

    def _send_payload(self, name: str, payload: dict[str, Any]) -> bool:
        try:
            self.app.send_task(
                name,
                kwargs=payload,
                queue=CONTROL_QUEUE,
                exchange="",
                routing_key=CONTROL_QUEUE,
                retry=True,
                retry_policy=RETRY_POLICY,
            )
        except Exception as exc:
            log.error("report_lost", report=name, error=str(exc))
            metrics.HUB_REPORTS_LOST.inc()
            return False
        return True

    def devices(self, devices: list[DeviceInfo]) -> bool:
        return self._send(REPORT_DEVICES, DevicesReport(hub=self.hub, devices=devices, at=now()))

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
        return self._send_payload(REPORT_FINISHED, report)

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
