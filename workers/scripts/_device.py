"""The phone as a script drives it: shell calls with deadlines, pushes, and adb errors turned into
classified :class:`ScriptFailure` s."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import adbutils

from shared.failures import FailureKind
from workers.adb.shell import ShellResult, shell
from workers.adb.sync import push_file
from workers.scripts.base import ScriptContext, ScriptFailure, TaskStopped


def classify_error(exc: BaseException) -> ScriptFailure:
    """What an exception raised while talking to a phone means for the task."""
    if isinstance(exc, ScriptFailure):
        return exc
    if isinstance(exc, adbutils.AdbTimeout | socket.timeout | TimeoutError):
        return ScriptFailure(FailureKind.TIMEOUT, f"the phone did not answer in time ({exc})")
    if isinstance(exc, adbutils.AdbError | EOFError | ConnectionError | OSError):
        text = str(exc) or type(exc).__name__
        return ScriptFailure(FailureKind.DEVICE_OFFLINE, f"device offline: {text}")
    return ScriptFailure(FailureKind.SCRIPT_ERROR, f"{type(exc).__name__}: {exc}")


class DeviceSession:
    """One task's use of its phone. Every call checks for a stop first and has a deadline."""

    def __init__(self, ctx: ScriptContext, command_timeout: float = 20.0) -> None:
        self.ctx = ctx
        self.device = ctx.device
        self.command_timeout = command_timeout

    def sh(self, command: str | Sequence[str], *, timeout: float | None = None, checkpoint: bool = True) -> ShellResult:
        """Run a shell command; adb trouble becomes a classified failure. ``checkpoint=False`` is for
        clean-up that must run even after a stop."""
        if checkpoint:
            self.ctx.checkpoint()
        try:
            return shell(self.device, command, timeout=timeout or self.command_timeout)
        except (TaskStopped, ScriptFailure):
            raise
        except Exception as exc:
            raise classify_error(exc) from exc

    def check(self, command: str | Sequence[str], *, timeout: float | None = None) -> ShellResult:
        """Like :meth:`sh`, but a non-zero exit status is a script error."""
        result = self.sh(command, timeout=timeout)
        if not result.ok:
            detail = (result.stderr or result.stdout).strip()[:300]
            raise ScriptFailure(
                FailureKind.SCRIPT_ERROR, f"`{result.command[:120]}` failed ({result.returncode}): {detail}"
            )
        return result

    def push(self, local: Path, remote: str, *, timeout: float = 30.0) -> None:
        """Copy a file to the phone; a stop interrupts it between chunks."""
        self.ctx.checkpoint()
        try:
            push_file(self.device, local, remote, timeout=timeout, between_chunks=self.ctx.checkpoint)
        except (TaskStopped, ScriptFailure):
            raise
        except Exception as exc:
            raise classify_error(exc) from exc

    def package_installed(self, package: str) -> bool:
        """True if ``pm path`` knows the package."""
        result = self.sh(["pm", "path", package])
        return result.ok and "package:" in result.stdout

    def tap(self, x: int, y: int) -> None:
        """``input tap``."""
        self.check(["input", "tap", str(x), str(y)])

    def key(self, name: str) -> None:
        """``input keyevent``."""
        self.check(["input", "keyevent", name])
