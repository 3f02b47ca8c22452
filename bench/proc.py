"""Child processes of the bench: started in their own process group, told to die with the bench
(``PR_SET_PDEATHSIG``) so that a bench killed outright leaves nothing behind, and stopped in order
(SIGTERM, then SIGKILL for the whole group) by the normal cleanup."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PHONEFLEET = str(Path(sys.executable).with_name("phonefleet"))
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Proc:
    """One child process whose output goes to ``log``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait, then SIGKILL the process group."""
        popen = self.popen
        if popen is None:
            return
        if popen.poll() is None:
            try:
                popen.send_signal(signal.SIGTERM)
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        if popen.poll() is None:
            popen.wait(timeout=5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all(procs: list[Proc], timeout: float = 20.0) -> None:
    """SIGTERM every live process at once, give them ``timeout`` together, then SIGKILL their groups."""
    live = [p for p in procs if p.popen is not None and p.popen.poll() is None]
    for proc in live:
        assert proc.popen is not None
        with contextlib.suppress(ProcessLookupError):
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in live:
        assert proc.popen is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:
        proc.stop(timeout=0.1)


def phonefleet(name: str, args: list[str], env: dict[str, str], log: Path) -> Proc:
    """``phonefleet ARGS`` as a child process (not started)."""
    return Proc(name, [PHONEFLEET, *args], env, log)


def python_module(name: str, module: str, args: list[str], env: dict[str, str], log: Path) -> Proc:
    """``python -m MODULE ARGS`` with the bench's interpreter (not started)."""
    return Proc(name, [sys.executable, "-m", module, *args], env, log)
