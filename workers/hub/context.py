"""The hub's side of a running task: what a script sees as its ``ScriptContext``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import adbutils
import structlog

from shared.failures import FailureKind
from shared.messages import AttemptRef, LogLine
from workers.scripts.base import HubEnvironment, ScriptFailure, TaskSpec, TaskStopped

log = structlog.get_logger(__name__)

OFFLINE_REMARK = "device offline"


@dataclass
class ShutdownInterrupt(TaskStopped):
    """The hub is shutting down and the grace period is over (a stop the user did not ask for)."""


@dataclass
class RunningTask:
    """One attempt on one phone, while it runs. ``interrupt`` wakes the script's waits."""

    spec: TaskSpec
    interrupt: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None  # "stopped", "offline" or "shutdown", set before ``interrupt``
    lines: list[LogLine] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ref(self) -> AttemptRef:
        return AttemptRef(task_id=self.spec.task_id, attempt=self.spec.attempt, serial=self.spec.serial)

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.interrupt.set()

    def take_lines(self) -> list[LogLine]:
        with self.lock:
            lines, self.lines = self.lines, []
        return lines


class HubContext:
    """Implements ``workers.scripts.base.ScriptContext`` for one running task."""

    def __init__(self, running: RunningTask, device: adbutils.AdbDevice, env: HubEnvironment) -> None:
        self._running = running
        self._device = device
        self._env = env
        self._log = log.bind(task_id=running.spec.task_id, attempt=running.spec.attempt, serial=running.spec.serial)

    @property
    def device(self) -> adbutils.AdbDevice:
        return self._device

    @property
    def spec(self) -> TaskSpec:
        return self._running.spec

    @property
    def env(self) -> HubEnvironment:
        return self._env

    def log(self, message: str, **fields: Any) -> None:
        level = str(fields.pop("level", "info"))
        line = LogLine(at=datetime.now(UTC), level=level, message=message, fields=_plain(fields))
        with self._running.lock:
            self._running.lines.append(line)
        self._log.info("script_log", message=message, **fields)

    def checkpoint(self) -> None:
        if self._running.interrupt.is_set():
            self._raise()

    def sleep(self, seconds: float) -> None:
        if self._running.interrupt.wait(max(0.0, seconds)):
            self._raise()

    def _raise(self) -> None:
        if self._running.reason == "offline":
            raise ScriptFailure(FailureKind.DEVICE_OFFLINE, OFFLINE_REMARK)
        if self._running.reason == "shutdown":
            raise ShutdownInterrupt
        raise TaskStopped


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Log fields as JSON-safe values."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        out[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return out
