"""What a device script sees of the hub worker that runs it.

A script is a module in ``workers/scripts/`` with ``SCRIPT_NAME`` (a name of ``shared.scripts.SCRIPTS``)
and ``run(ctx) -> str``; it returns a one-line summary (the task's remark) or raises. The hub worker
supplies the context: the adbutils device, the task, an interruptible ``sleep`` and ``checkpoint``
that raise :class:`TaskStopped` once the user stops the task, and a logger whose lines reach the
task's log. Scripts never touch the database or the broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import adbutils

from shared.failures import FailureKind

WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")


class TaskStopped(Exception):
    """The user stopped (or deleted) the task; the script must unwind now."""


class ScriptFailure(Exception):
    """A script could not do its job; ``kind`` says whether a retry could help."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class TaskSpec:
    """The task as the hub receives it in the dispatch message."""

    task_id: int
    attempt: int
    serial: str
    script_name: str
    script_config: dict[str, Any]
    platform: str
    username: str | None = None
    packagename: str | None = None


@dataclass(frozen=True)
class HubEnvironment:
    """Hub-local resources a script may use."""

    media_roots: tuple[Path, ...] = ()
    media_cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "phonefleet" / "media")
    download_max_bytes: int = 512 * 1024 * 1024
    # Downloads are kept by content hash; beyond this total the least recently used are evicted.
    media_cache_max_bytes: int = 4 * 1024 * 1024 * 1024
    # Client path prefix → hub folder, for paths written for another machine ("C:/Videos" → /srv/media).
    path_map: tuple[tuple[str, Path], ...] = ()

    def local_path(self, raw: str) -> str:
        """``raw`` with the longest matching ``path_map`` prefix replaced by its hub folder.

        Client prefixes compare with ``/`` for ``\\`` and, for Windows drive paths, ignoring case.
        """
        given = raw.replace("\\", "/")
        best: tuple[int, str] | None = None
        for prefix, folder in self.path_map:
            norm = prefix.replace("\\", "/").rstrip("/")
            windows = bool(WINDOWS_DRIVE.match(norm))
            head = given[: len(norm)]
            same = head.lower() == norm.lower() if windows else head == norm
            rest = given[len(norm) :]
            if same and (rest == "" or rest.startswith("/")) and (best is None or len(norm) > best[0]):
                best = (len(norm), str(folder) + rest)
        return best[1] if best else raw


class ScriptContext(Protocol):
    """The hub worker's side of a running task."""

    @property
    def device(self) -> adbutils.AdbDevice: ...

    @property
    def spec(self) -> TaskSpec: ...

    @property
    def env(self) -> HubEnvironment: ...

    def log(self, message: str, **fields: Any) -> None:
        """A line for the task's log (``GET /task/{id}/logs``)."""

    def checkpoint(self) -> None:
        """Raise :class:`TaskStopped` if the task was stopped; call it between steps."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, waking within ~0.2 s of a stop to raise :class:`TaskStopped`."""
