"""Shell calls with a deadline and an exit code (shell protocol v2), for device scripts."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import adbutils


@dataclass(frozen=True)
class ShellResult:
    """Output and exit status of one shell command."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True for exit status 0."""
        return self.returncode == 0


def quote(args: Sequence[str]) -> str:
    """A command line whose words reach the device shell unchanged."""
    return " ".join(shlex.quote(a) for a in args)


def shell(device: adbutils.AdbDevice, command: str | Sequence[str], timeout: float = 30.0) -> ShellResult:
    """Run ``command`` on the device over ``shell,v2:`` and wait at most ``timeout`` seconds.

    Raises ``adbutils.AdbTimeout`` when the phone does not answer in time and ``adbutils.AdbError``
    when it is gone; the caller decides what that means for its task.
    """
    line = command if isinstance(command, str) else quote(command)
    result = device.shell2(line, timeout=timeout, v2=True)
    return ShellResult(line, int(result.returncode), str(result.stdout), str(result.stderr))
