"""Reading the hubs' JSON logs: when a script really started and ended on a phone.

The hub logs ``task_started`` right after it has claimed the attempt and sent its start report, just
before the script's first step, and ``task_ended`` as soon as the script returns; both carry the
task id, attempt, serial and a UTC ``timestamp`` taken by the hub itself. They are the closest record
of "the script is running" there is without changing phonefleet, and unlike the task's ``started_at``
they need no round trip through the dispatcher and PostgreSQL to be read.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

EVENTS = ("task_started", "task_ended", "hub_started")


def parse_timestamp(value: str) -> float:
    """A structlog ISO timestamp (``2026-01-02T03:04:05.123456Z``) as seconds since the epoch."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Run:
    """One attempt as a hub saw it."""

    task_id: int
    attempt: int
    serial: str
    hub: str
    started: float | None = None
    ended: float | None = None
    outcome: str | None = None


@dataclass
class LogFollower:
    """Follows the log files of several hubs; ``poll`` reads what was appended since the last call."""

    files: dict[str, Path] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    partial: dict[str, bytes] = field(default_factory=dict)
    runs: dict[int, Run] = field(default_factory=dict)  # task id → its latest attempt
    hub_started: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, hub: str, path: Path) -> None:
        with self.lock:
            self.files[hub] = path
            self.offsets.setdefault(hub, 0)

    def forget(self, hub: str) -> None:
        with self.lock:
            self.files.pop(hub, None)

    def poll(self) -> None:
        with self.lock:
            for hub, path in list(self.files.items()):
                try:
                    with open(path, "rb") as handle:
                        handle.seek(self.offsets[hub])
                        data = handle.read()
                except OSError:
                    continue
                self.offsets[hub] += len(data)
                data = self.partial.pop(hub, b"") + data
                lines = data.split(b"\n")
                if lines and lines[-1]:
                    self.partial[hub] = lines[-1]
                for line in lines[:-1]:
                    self._line(hub, line)

    def _line(self, hub: str, line: bytes) -> None:
        if not any(name.encode() in line for name in EVENTS):
            return
        try:
            event: dict[str, Any] = json.loads(line)
        except ValueError:
            return
        name = event.get("event")
        if name == "hub_started":
            self.hub_started[hub] = parse_timestamp(event["timestamp"])
            return
        if name not in ("task_started", "task_ended") or "task_id" not in event:
            return
        task_id, attempt = int(event["task_id"]), int(event["attempt"])
        run = self.runs.get(task_id)
        if run is None or run.attempt < attempt:
            run = self.runs[task_id] = Run(task_id, attempt, str(event.get("serial")), hub)
        elif run.attempt > attempt:
            return
        stamp = parse_timestamp(event["timestamp"])
        if name == "task_started":
            run.started = stamp
        else:
            run.ended = stamp
            run.outcome = event.get("outcome")

    def run_of(self, task_id: int) -> Run | None:
        """The latest attempt of ``task_id`` seen so far."""
        with self.lock:
            return self.runs.get(task_id)

    def wait(self, task_ids: list[int], what: str, timeout: float, interval: float = 0.01) -> dict[int, Run]:
        """Wait until every task in ``task_ids`` has ``what`` ("started" or "ended")."""
        deadline = time.monotonic() + timeout
        wanted = set(task_ids)
        while True:
            self.poll()
            with self.lock:
                found = {
                    tid: run
                    for tid in wanted
                    if (run := self.runs.get(tid)) is not None and getattr(run, what) is not None
                }
            if len(found) == len(wanted):
                return found
            if time.monotonic() > deadline:
                missing = sorted(wanted - set(found))[:10]
                raise TimeoutError(f"{len(wanted) - len(found)} tasks not {what} after {timeout}s, e.g. {missing}")
            time.sleep(interval)
