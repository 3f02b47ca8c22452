"""Sampling profiles of the stack's processes with py-spy (``--profile``): raw collapsed stacks are
kept in the results folder, and summarised as the functions with the most samples on top of the stack
(self), by the package their code lives in, and phonefleet's own functions by the samples under them
(inclusive). py-spy samples without stopping the process (--nonblocking) and
only threads that hold the GIL (--gil), so the samples are where Python spends CPU: a thread waiting on
a socket or a lock is not counted (py-spy's own idle detection counts threads blocked in C reads as
busy, which would mix waiting into the picture)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
STDLIB = re.compile(r"^.*?/lib/python3\.\d+/")
ROOT = str(Path(__file__).resolve().parent.parent) + "/"
OURS = ("api/", "shared/", "workers/", "bench/")


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (to/file.py)``: lines merged, path shortened."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match['func']} ({_short_path(match['file'])})"


def _short_path(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if path.startswith(ROOT):
        return path[len(ROOT) :]
    return STDLIB.sub("", path)


def _package(frame: str) -> str:
    """Where a frame's code lives: phonefleet's own folders, a library, or the standard library."""
    match = FRAME.match(frame)
    if not match:
        return "other"
    path = match["file"]
    if path.startswith(OURS):
        return "phonefleet " + path.split("/", 1)[0]
    if "/" in path:
        return path.split("/", 1)[0]
    return "stdlib " + path.removesuffix(".py")


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Top frames of a py-spy ``--format raw`` file (one ``frame;frame;… count`` line per stack)."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    try:
        lines = raw.read_text(errors="replace").splitlines()
    except OSError:
        return {"samples": 0, "self": [], "inclusive": []}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for name in set(frames):
            if name.split(" (", 1)[-1].startswith(OURS):
                inclusive[name] += count

    def table(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": name, "samples": n, "percent": round(100 * n / total, 1)} for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self": table(self_counts),
        "inclusive": table(inclusive),
        "packages": table(packages),
    }


@dataclass
class Profiler:
    """Starts one ``py-spy record`` per process for the duration of a measurement."""

    folder: Path
    enabled: bool
    rate: int = 100
    running: list[tuple[str, Path, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, figure: str, groups: dict[str, list[int]]) -> None:
        if not self.enabled:
            return
        binary = py_spy()
        if binary is None:
            raise RuntimeError("--profile needs py-spy: pip install -e '.[bench]'")
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pids in groups.items():
            for index, pid in enumerate(pids):
                label = name if len(pids) == 1 else f"{name}{index}"
                out = self.folder / f"{figure}-{label}.txt"
                popen = subprocess.Popen(
                    [
                        binary,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        str(self.rate),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--gil",
                        "--subprocesses",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                self.running.append((label, out, popen))

    def stop(self) -> dict[str, Any]:
        """Stop the recorders; returns each process's summary (and where its raw stacks are)."""
        results: dict[str, Any] = {}
        for _, _, popen in self.running:
            if popen.poll() is None:
                popen.send_signal(signal.SIGINT)
        for label, out, popen in self.running:
            try:
                popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
            results[label] = {**summarise(out), "raw": str(out)}
        self.running = []
        return results
