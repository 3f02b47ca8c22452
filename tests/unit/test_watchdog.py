"""The stall watchdog stops its own process the warm way (SIGTERM) after consecutive stalled checks."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)], capture_output=True, text=True, timeout=30, check=False
    )


def test_a_stalled_consumer_stops_its_process() -> None:
    result = run(
        """
        import signal, sys, threading
        from shared.broker import StallWatchdog
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        checks = []
        StallWatchdog("test", lambda: checks.append(1) or True, interval=0.05, strikes=3).start()
        assert done.wait(10), "no SIGTERM"
        print(len(checks), StallWatchdog.tripped)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["3", "True"]


def test_a_consumer_that_catches_up_is_left_alone() -> None:
    result = run(
        """
        import signal, threading, time
        from shared.broker import StallWatchdog
        hit = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: hit.set())
        answers = iter([True, True, False] * 20)
        StallWatchdog("test", lambda: next(answers, False), interval=0.02, strikes=3).start()
        print(hit.wait(1.5))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
