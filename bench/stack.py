"""The phonefleet stack under test: the api, the dispatcher and hub workers as separate processes (the
commands an operator runs), each hub with its own real adb server and simulated phones.

Settings are phonefleet's defaults except: JSON logs at INFO (the hubs' log is how the bench sees a
script start and end) and the Prometheus ports of the dispatcher and hubs turned off (several hubs on
one machine would fight over the default port). Nothing else is tightened.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

from api.keys.service import create_key
from bench.hublog import LogFollower
from bench.proc import Proc, phonefleet, python_module, stop_all
from bench.services import Services
from shared.db.engine import transaction
from shared.embedded import free_port, wait_for_port
from shared.settings import Plan
from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet

BENCH_ENV = {
    "PHONEFLEET_LOG_FORMAT": "json",
    "PHONEFLEET_LOG_LEVEL": "INFO",
    "PHONEFLEET_DISPATCHER_METRICS_PORT": "0",
    "PHONEFLEET_HUB_METRICS_PORT": "0",
    # A process that dies of a signal leaves its Python stacks in its log.
    "PYTHONFAULTHANDLER": "1",
}
RESERVED_PORTS = frozenset({50809})  # the tests' api port
ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def http_client(**options: Any) -> httpx.Client:
    """An httpx client sharing one TLS context: httpx otherwise loads the CA bundle for every client
    (~60 ms of CPU each), which would land in the bench's own CPU figures."""
    return httpx.Client(verify=_tls_context(), **options)


def bench_port() -> int:
    while True:
        port = free_port()
        if port not in RESERVED_PORTS:
            return port


@dataclass
class HubHandle:
    name: str
    adb: AdbServer
    fleet: Fleet
    process: Proc

    @property
    def serials(self) -> list[str]:
        """phonefleet's serials of the hub's phones: their ro.serialno (they are TCP transports)."""
        return [phone.props["ro.serialno"] for phone in self.fleet.phones]


@dataclass
class Stack:
    services: Services
    workdir: Path
    cleanup: ExitStack
    progress: Callable[[str], None]
    engine: Engine = field(init=False)
    api: Proc | None = None
    api_url: str = ""
    api_workers: int = 1
    dispatcher: Proc | None = None
    hubs: dict[str, HubHandle] = field(default_factory=dict)
    logs: LogFollower = field(default_factory=LogFollower)
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    fleets: list[Fleet] = field(default_factory=list)
    adb_servers: list[AdbServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = create_engine(self.services.database_url, pool_size=4, max_overflow=4)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.cleanup.callback(self.close)

    def close(self) -> None:
        """Stop everything the stack started: processes (all told at once), phones, adb servers."""
        stop_all(self.procs)
        for fleet in self.fleets:
            with suppress(Exception):
                fleet.stop(detach=False)
        for adb in self.adb_servers:
            with suppress(Exception):
                adb.kill()
        self.engine.dispose()

    def own(self, proc: Proc) -> Proc:
        """Start ``proc`` and stop it with the stack."""
        self.procs.append(proc)
        return proc.start()

    # --- environment -----------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
        env.update(BENCH_ENV)
        env["PHONEFLEET_DATABASE_URL"] = self.services.database_url
        env["PHONEFLEET_BROKER_URL"] = self.services.broker_url
        env.update(self.extra_env)
        env.update(extra)
        # The bench's helpers (python -m bench.…) must import from the repository wherever we run from.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    # --- database --------------------------------------------------------------------------------

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.begin() as conn:
            result = conn.execute(text(query), params)
            return list(result.all()) if result.returns_rows else []

    def scalar(self, query: str, **params: Any) -> Any:
        with self.engine.begin() as conn:
            return conn.execute(text(query), params).scalar()

    def make_key(self, name: str, plan: Plan = Plan.BUSINESS) -> tuple[int, str]:
        """A fresh API key (each figure has its own, so device limits never mix); returns (id, key)."""
        with transaction(self.engine) as session:
            made = create_key(session, name=name, plan=plan)
        return made.id, made.key

    # --- central processes -----------------------------------------------------------------------

    def start_dispatcher(self, concurrency: int | None = None, variant: list[str] | None = None) -> None:
        """``phonefleet dispatcher``; with ``variant`` (``["--loop", "eventloop"]``...), the same dispatcher
        started through ``bench.variants`` to try a change to its Celery worker."""
        options = ["--concurrency", str(concurrency)] if concurrency else []
        log = self.log_path("dispatcher")
        if variant:
            args = ["dispatcher", *variant, *options]
            self.dispatcher = self.own(python_module("dispatcher", "bench.variants", args, self.env(), log))
        else:
            self.dispatcher = self.own(phonefleet("dispatcher", ["dispatcher", *options], self.env(), log))

    def start_api(self, workers: int = 1) -> None:
        """(Re)start ``phonefleet api --workers N`` on a fresh port and wait until it is ready."""
        if self.api is not None:
            self.api.stop()
        port = bench_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.api_workers = workers
        self.api = self.own(
            phonefleet(
                f"api-w{workers}",
                ["api", "--port", str(port), "--workers", str(workers)],
                self.env(),
                self.log_path(f"api-w{workers}"),
            )
        )
        wait_for_port("127.0.0.1", port, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.api_url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not self.api.alive():
                raise RuntimeError(f"api not ready:\n{self.api.tail()}")
            time.sleep(0.1)

    def client(self, key: str, timeout: float = 60.0) -> httpx.Client:
        """A keep-alive client of the api that sends ``key``."""
        return http_client(
            base_url=f"{self.api_url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )

    # --- hubs and phones -------------------------------------------------------------------------

    def start_hub(self, name: str, phones: int, *, concurrency: int = 256) -> HubHandle:
        """An adb server, ``phones`` simulated phones attached to it, and ``phonefleet worker --hub``."""
        adb = AdbServer()
        self.adb_servers.append(adb)
        adb.start()
        fleet = Fleet(adb.port).start()
        self.fleets.append(fleet)
        if phones:
            self._add_phones(fleet, phones)
        env = self.env(
            PHONEFLEET_HUB_NAME=name,
            PHONEFLEET_ADB_PORT=str(adb.port),
            PHONEFLEET_DATA_DIR=str(self.workdir / f"data-{name}"),
        )
        env.pop("PHONEFLEET_DATABASE_URL", None)  # a hub has broker credentials only
        args = ["worker", "--hub", name, "--concurrency", str(concurrency)]
        process = self.own(phonefleet(f"hub-{name}", args, env, self.log_path(f"hub-{name}")))
        hub = HubHandle(name, adb, fleet, process)
        self.hubs[name] = hub
        self.logs.follow(name, process.log)
        return hub

    def _add_phones(self, fleet: Fleet, count: int) -> None:
        # Few at a time through one adb server (the simulator's attach does 4 in parallel).
        done = 0
        while done < count:
            step = min(100, count - done)
            fleet.add_phones(step, attach=True)
            done += step

    def add_phones(self, hub: HubHandle, count: int) -> None:
        self._add_phones(hub.fleet, count)

    def stop_hub(self, name: str) -> None:
        hub = self.hubs.pop(name)
        self.logs.poll()
        self.logs.forget(name)
        hub.process.stop()
        hub.fleet.stop()
        hub.adb.kill()
        self.fleets.remove(hub.fleet)
        self.adb_servers.remove(hub.adb)

    def wait_hub_started(self, hub: HubHandle, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while hub.name not in self.logs.hub_started:
            self.logs.poll()
            if not hub.process.alive():
                raise RuntimeError(f"hub {hub.name} died:\n{hub.process.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"hub {hub.name} did not start:\n{hub.process.tail()}")
            time.sleep(0.1)

    def wait_online(self, serials: list[str], timeout: float = 120) -> float:
        """Wait until the database shows every phone online and idle; returns the seconds it took."""
        began = time.monotonic()
        while True:
            online = int(
                self.scalar(
                    "SELECT count(*) FROM device WHERE online AND lease_task_id IS NULL AND serial = ANY(:s)",
                    s=serials,
                )
                or 0
            )
            if online == len(serials):
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"{online}/{len(serials)} phones online after {timeout}s")
            time.sleep(0.2)

    def wait_done(self, task_ids: list[int], timeout: float, interval: float = 0.1) -> float:
        """Wait until every task is completed or failed in the database; returns the time it happened."""
        deadline = time.monotonic() + timeout
        while True:
            done = int(self.scalar("SELECT count(*) FROM task WHERE id = ANY(:ids) AND status IN (2, 3)", ids=task_ids))
            if done == len(task_ids):
                return time.time()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done}/{len(task_ids)} tasks finished after {timeout}s")
            time.sleep(interval)

    def pids(self) -> dict[str, list[int]]:
        """The processes of the stack by role, for CPU accounting and profiling."""
        groups: dict[str, list[int]] = {}
        if self.api is not None and self.api.alive():
            groups["api"] = [self.api.pid]
        if self.dispatcher is not None and self.dispatcher.alive():
            groups["dispatcher"] = [self.dispatcher.pid]
        hubs = [h.process.pid for h in self.hubs.values() if h.process.alive()]
        if hubs:
            groups["hubs"] = hubs
        return groups
