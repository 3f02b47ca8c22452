"""What every figure gets: the stack, the sizes of this run, progress, CPU meter and profiler."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from bench.cpu import CpuMeter
from bench.proc import Proc, python_module
from bench.profiling import Profiler
from bench.result import FigureResult
from bench.stack import Stack


@dataclass(frozen=True)
class Sizes:
    """How big and how long each figure is; ``full`` is the default run, ``quick`` a ~2 minute smoke."""

    name: str
    reps: int = 3
    warmup_seconds: float = 2.0
    api_workers: tuple[int, ...] = (1, 2)
    # Task creation, one serial per request.
    create_clients: int = 16
    create_seconds: float = 6.0
    create_serials: int = 200
    # Batch creation.
    batch_serials: int = 1000
    batch_requests: int = 15
    # List and stats.
    table_rows: int = 1_000_000
    list_requests: int = 1500
    # Dispatch latency and throughput, stop latency: the farm.
    farm_hubs: int = 2
    farm_phones_per_hub: int = 100
    latency_samples: int = 200
    tasks_per_phone: int = 5
    stop_samples: int = 50
    # Hub memory.
    memory_phones: int = 200
    # Scale.
    scale_hubs: int = 5
    scale_phones_per_hub: int = 200
    scale_rounds: int = 2

    @classmethod
    def full(cls) -> Sizes:
        return cls(name="full")

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            name="quick",
            reps=1,
            warmup_seconds=1.0,
            create_seconds=2.5,
            batch_requests=5,
            table_rows=100_000,
            list_requests=300,
            farm_phones_per_hub=20,
            latency_samples=40,
            tasks_per_phone=4,
            stop_samples=10,
            memory_phones=50,
            scale_phones_per_hub=20,
            scale_rounds=1,
        )

    @classmethod
    def tiny(cls) -> Sizes:
        """For the smoke test: seconds, not minutes."""
        return replace(
            cls.quick(),
            name="tiny",
            warmup_seconds=0.2,
            api_workers=(1,),
            batch_serials=20,
            batch_requests=2,
            farm_hubs=1,
            farm_phones_per_hub=2,
            latency_samples=3,
            create_seconds=0.5,
            create_clients=2,
        )


@dataclass
class Context:
    stack: Stack
    sizes: Sizes
    progress: Callable[[str], None]
    profiler: Profiler
    results_dir: Path
    state: dict[str, Any] = field(default_factory=dict)  # what one figure leaves for the next (the farm)

    @property
    def redis(self) -> redis.Redis:
        client: redis.Redis | None = self.state.get("redis")
        if client is None:
            client = redis.Redis.from_url(self.stack.services.broker_url)
            self.state["redis"] = client
        return client

    def groups(self, extra: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
        """Process groups for CPU accounting: the stack's processes, PostgreSQL's backends serving the
        bench database, the Redis server and the bench process itself (load generator and phones)."""
        groups = dict(self.stack.pids())
        backends = [
            int(pid)
            for (pid,) in self.stack.sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        groups["postgres"] = backends
        if self.stack.services.redis_pid is not None and os.path.exists(f"/proc/{self.stack.services.redis_pid}"):
            groups["redis"] = [self.stack.services.redis_pid]
        groups["bench"] = [os.getpid()]
        if extra:
            groups.update(extra)
        return groups

    @contextmanager
    def measured(
        self,
        result: FigureResult,
        label: str,
        *,
        profile: list[str] | None = None,
        extra: dict[str, list[int]] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Count CPU (and, with --profile, sample the ``profile`` groups) around a measured phase.

        The caller may put ``units`` (work done) and ``unit`` in the yielded dict for per-unit CPU."""
        meter = CpuMeter(lambda: self.groups(extra))
        info: dict[str, Any] = {}
        if profile is not None:
            groups = self.groups(extra)
            self.profiler.start(f"{result.name}-{label}", {k: v for k, v in groups.items() if k in profile})
        meter.start()
        try:
            yield info
        finally:
            result.cpu[label] = meter.stop(per=info.get("units"), per_label=info.get("unit", "task"))
            if profile is not None and self.profiler.enabled:
                result.profiles[label] = self.profiler.stop()

    def start_helper(self, name: str, args: list[str]) -> Proc:
        """A baseline helper process (``python -m bench.celery_baseline ...``), stopped with the stack."""
        helper = python_module(name, "bench.celery_baseline", args, self.stack.env(), self.stack.log_path(name))
        return self.stack.own(helper)

    def wait_ready(self, prefix: str, count: int, procs: list[Proc], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(list(self.redis.scan_iter(f"bench:ready:{prefix}:*"))) < count:
            for proc in procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} died:\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"baseline helpers for {prefix} not ready")
            time.sleep(0.1)
