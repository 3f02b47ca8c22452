"""Running phonefleet's own processes in tests, the way an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.embedded import wait_for_port

PHONEFLEET = str(Path(sys.executable).with_name("phonefleet"))


def phonefleet_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"PHONEFLEET_{k.upper()}": v for k, v in overrides.items()})
    env.setdefault("PHONEFLEET_LOG_FORMAT", "json")
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PHONEFLEET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or phonefleet_env(),
        check=False,
    )


@contextmanager
def running(
    args: list[str], *, env: dict[str, str], port: int | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``phonefleet ARGS``, wait for its port, and stop it (SIGTERM, then SIGKILL) afterwards."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen([PHONEFLEET, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        if port is not None:
            wait_for_port("127.0.0.1", port, timeout=30)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def wait_until(
    condition: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
