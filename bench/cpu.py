"""Where the CPU goes during a measurement: user+system seconds of each process group, read from
/proc before and after (children such as uvicorn's workers included), plus the PostgreSQL backends
serving the bench's database and the Redis server."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, cpu seconds) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                tree.setdefault(found[0], []).append(int(entry))
    return tree


def tree_pids(roots: list[int]) -> list[int]:
    """``roots`` and all their descendants."""
    tree = _children()
    out: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        found = _stat(pid)
        if found is not None:
            out[pid] = found[1]
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (every process on the machine, ours or not)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


@dataclass
class CpuMeter:
    """``start()`` … ``stop()`` around a measurement; ``groups`` gives pid roots per name at start, and
    ``postgres`` the backends of the bench database (looked up at start and stop)."""

    groups: Callable[[], dict[str, list[int]]]
    trees: frozenset[str] = frozenset({"api"})  # groups whose children count too (uvicorn's workers)
    before: dict[str, dict[int, float]] = field(default_factory=dict)
    wall: float = 0.0
    machine: float = 0.0

    def start(self) -> None:
        self.before = {name: cpu_seconds(self._pids(name, pids)) for name, pids in self.groups().items()}
        self.wall = time.monotonic()
        self.machine = machine_busy_seconds()

    def _pids(self, name: str, pids: list[int]) -> list[int]:
        return tree_pids(pids) if name in self.trees else pids

    def stop(self, per: float | None = None, per_label: str = "task") -> dict[str, Any]:
        """CPU seconds of each group since ``start`` (and per ``per`` units of work, in ms)."""
        wall = time.monotonic() - self.wall
        machine = machine_busy_seconds() - self.machine
        after = {name: cpu_seconds(self._pids(name, pids)) for name, pids in self.groups().items()}
        used: dict[str, float] = {}
        for name, now in after.items():
            then = self.before.get(name, {})
            # Processes that appeared during the window count from zero; those that left are lost.
            used[name] = sum(seconds - then.get(pid, 0.0) for pid, seconds in now.items())
        result: dict[str, Any] = {
            "wall_seconds": round(wall, 2),
            "cpu_seconds": {k: round(v, 2) for k, v in used.items()},
            "cores_busy": {k: round(v / wall, 2) for k, v in used.items()} if wall > 0 else {},
            "total_cores_busy": round(sum(used.values()) / wall, 2) if wall > 0 else 0.0,
            # Everything on the machine, ours or not: the difference is other people's work.
            "machine_cores_busy": round(machine / wall, 2) if wall > 0 else 0.0,
        }
        if per:
            result[f"cpu_ms_per_{per_label}"] = {k: round(v / per * 1000, 3) for k, v in used.items()}
        return result
