"""What hubs report to the dispatcher, message by message. Both ends validate with these models;
every report about an attempt carries ``(task_id, attempt)``, the fencing token."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class DeviceInfo(BaseModel):
    serial: str
    state: str = Field(description="adb's state: device, offline, unauthorized...")
    model: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)


class DevicesReport(BaseModel):
    """The complete list of phones a hub sees; phones it no longer lists are offline for it."""

    hub: str
    devices: list[DeviceInfo]
    at: datetime


class AttemptRef(BaseModel):
    task_id: int
    attempt: int
    serial: str


class StartedReport(AttemptRef):
    hub: str
    at: datetime


class HeartbeatReport(BaseModel):
    hub: str
    running: list[AttemptRef]
    # Attempts that ended but whose end report is not acknowledged yet: their phones stay leased (the
    # end is on its way) instead of being judged lost.
    ending: list[AttemptRef] = Field(default_factory=list)
    at: datetime


class LogLine(BaseModel):
    at: datetime
    level: str = "info"
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


class LogsReport(AttemptRef):
    lines: list[LogLine]


class FinishedReport(AttemptRef):
    hub: str
    outcome: Literal["completed", "failed"]
    remark: str
    failure_kind: str | None = None
    screenshot_png_b64: str | None = None
    lines: list[LogLine] = Field(default_factory=list)
    at: datetime


class RefusedReport(AttemptRef):
    hub: str
    reason: Literal["cancelled", "not_attached", "duplicate", "busy", "invalid"]
    detail: str = ""
    at: datetime
