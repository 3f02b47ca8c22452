"""A closed-loop load generator: N threads, each with its own keep-alive client, each sending its next
request as soon as the previous one is answered, for a fixed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

C = TypeVar("C")


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ClosedLoop(Generic[C]):
    """``request(client, thread_index, n)`` returns True when the request succeeded."""

    make_client: Callable[[], C]
    close_client: Callable[[C], None]
    request: Callable[[C, int, int], bool]
    threads: int
    clients: list[C] = field(default_factory=list)

    def close(self) -> None:
        for client in self.clients:
            self.close_client(client)
        self.clients = []

    def run(self, seconds: float) -> LoadResult:
        """Run for ``seconds``; the clients are made on the first run and kept (keep-alive) until ``close``."""
        result = LoadResult()
        lock = threading.Lock()
        if not self.clients:
            self.clients = [self.make_client() for _ in range(self.threads)]
        clients = self.clients
        barrier = threading.Barrier(self.threads + 1)
        deadline = [0.0]

        def worker(index: int) -> None:
            client = clients[index]
            ok = errors = 0
            latencies: list[float] = []
            error: str | None = None
            barrier.wait()
            n = 0
            while time.monotonic() < deadline[0]:
                began = time.monotonic()
                try:
                    good = self.request(client, index, n)
                except Exception as exc:
                    good = False
                    error = error or f"{type(exc).__name__}: {exc}"
                latencies.append(time.monotonic() - began)
                n += 1
                if good:
                    ok += 1
                else:
                    errors += 1
            with lock:
                result.ok += ok
                result.errors += errors
                result.latencies.extend(latencies)
                result.first_error = result.first_error or error

        workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.threads)]
        for thread in workers:
            thread.start()
        began = time.monotonic()
        deadline[0] = began + seconds
        barrier.wait()
        for thread in workers:
            thread.join()
        result.seconds = time.monotonic() - began
        return result
