"""A whole phone farm for end-to-end tests: real PostgreSQL and Redis, the api, a dispatcher and hub
workers as separate processes, each hub with its own real adb server and simulated phones.

The farm has its own database and Redis database, so the api tests' per-test cleanup never touches
the long-running processes here; tests on the farm assert on the tasks they create themselves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, create_engine, text

from api.keys.service import create_key
from shared.broker import STALLED_EXIT_STATUS
from shared.db.engine import transaction
from shared.db.migrate import upgrade
from shared.embedded import free_port, wait_for_port
from shared.settings import Plan
from tests.process import PHONEFLEET
from tests.services import ServiceUrls, create_database, drop_database
from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone

FAST = {
    "PHONEFLEET_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "PHONEFLEET_HEARTBEAT_TIMEOUT_SECONDS": "5",
    "PHONEFLEET_DISPATCH_TIMEOUT_SECONDS": "5",
    "PHONEFLEET_SCHEDULER_TICK_SECONDS": "0.2",
    "PHONEFLEET_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "PHONEFLEET_LOG_FORMAT": "json",
    "PHONEFLEET_LOG_LEVEL": "INFO",
}


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", "island"]

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.popen = subprocess.Popen(
            [*self.prefix, PHONEFLEET, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        popen = self.popen
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(sig)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Hub:
    name: str
    adb: AdbServer
    fleet: Fleet
    process: Process
    metrics_port: int = 0

    @property
    def serials(self) -> list[str]:
        """phonefleet's serials of this hub's phones: their ro.serialno (they are network transports)."""
        return [phone.props["ro.serialno"] for phone in self.fleet.phones]


@dataclass
class Farm:
    database_url: str
    broker_url: str
    api_url: str
    key: str
    webhook_secret: str
    media_root: Path
    logs: Path
    engine: Engine
    hubs: dict[str, Hub] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    killed: dict[str, str] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    base_env: dict[str, str] = field(default_factory=dict)

    # --- the api, as a client sees it ------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(
            method,
            f"{self.api_url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
            **kwargs,
        )
        payload: dict[str, Any] = response.json()
        return payload

    def create(self, **body: Any) -> list[int]:
        payload = self.call("POST", "/task", json=body)
        assert payload["code"] == 0, payload
        ids: list[int] = payload["data"]["task_ids"]
        return ids

    def task(self, task_id: int) -> dict[str, Any]:
        payload = self.call("GET", f"/task/{task_id}")
        assert payload["code"] == 0, payload
        data: dict[str, Any] = payload["data"]
        return data

    def wait_tasks(
        self, ids: list[int], statuses: tuple[int, ...] = (2, 3), timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Wait until every task is in one of ``statuses``; returns them in ``ids`` order."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = [self.task(i) for i in ids]
            if all(t["status"] in statuses for t in tasks):
                return tasks
            if time.monotonic() > deadline:
                waiting = [(t["id"], t["status"], t["remark"]) for t in tasks if t["status"] not in statuses][:10]
                raise AssertionError(f"tasks not in {statuses} after {timeout}s: {waiting}\n{self.diagnostics()}")
            time.sleep(0.1)

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.diagnostics()}")
            time.sleep(0.05)

    def devices(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            data = self.call("GET", "/devices", params={"page_size": 100, "page": page})["data"]
            found.update({d["serial"]: d for d in data["devices"]})
            if page * 100 >= data["total"]:
                return found
            page += 1

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def runs(self) -> list[dict[str, Any]]:
        """Every attempt the hubs started and ended, from their own logs (what really ran on a phone)."""
        events: list[dict[str, Any]] = []
        for hub in self.hubs.values():
            for line in hub.process.log.read_text(errors="replace").splitlines():
                if '"task_started"' in line or '"task_ended"' in line:
                    try:
                        events.append({**json.loads(line), "hub": hub.name})
                    except json.JSONDecodeError:
                        continue
        return events

    def kill_hub(self, name: str) -> None:
        """SIGKILL a hub worker; its unfinished runs end at this instant (for :meth:`check_runs`)."""
        self.hubs[name].process.stop(signal.SIGKILL)
        self.killed[name] = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def restart(self, name: str) -> None:
        """Start a stopped process (a hub or a central one) again with the same settings."""
        process = self.hubs[name].process if name in self.hubs else self.processes[name]
        process.start()
        if name == "api":
            wait_for_port("127.0.0.1", int(self.api_url.rsplit(":", 1)[1]), timeout=30)

    def check_runs(self) -> dict[int, int]:
        """Assert no phone ever ran two attempts at once; returns how many times each task started.

        A run is the span between a hub's ``task_started`` and ``task_ended`` log lines; a run on a hub
        that was killed before it ended lasts until the kill."""
        spans: dict[tuple[str, int, int], dict[str, str]] = {}
        for event in self.runs():
            span = spans.setdefault((event["serial"], event["task_id"], event["attempt"]), {"hub": event["hub"]})
            span["begin" if event["event"] == "task_started" else "end"] = event["timestamp"]
        by_phone: dict[str, list[tuple[str, str, int]]] = {}
        started: dict[int, int] = {}
        for (serial, task_id, _attempt), span in spans.items():
            if "begin" not in span:
                continue
            started[task_id] = started.get(task_id, 0) + 1
            killed = self.killed.get(span["hub"])
            end = span.get("end") or (killed if killed and killed > span["begin"] else "9999")
            by_phone.setdefault(serial, []).append((span["begin"], end, task_id))
        for serial, intervals in by_phone.items():
            intervals.sort()
            for (_, end, first), (begin, _, second) in pairwise(intervals):
                assert end <= begin, f"{serial} ran tasks {first} and {second} at the same time"
        return started

    def diagnostics(self) -> str:
        parts = []
        for name, process in {**self.processes, **{h.name: h.process for h in self.hubs.values()}}.items():
            parts.append(f"--- {name} ({'alive' if process.alive() else 'dead'}) ---\n{process.tail(15)}")
        return "\n".join(parts)

    # --- processes -------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(extra)
        return env

    def start_hub(self, name: str, phones: int, *, accounts_per_app: int = 2) -> Hub:
        adb = AdbServer().start()
        fleet = Fleet(adb.port).start()
        made = fleet.add_phones(phones, upload_seconds=0.2)
        # Usernames unique across the farm ("a3ttb": hub a, phone 3, TikTok, second account).
        for index, phone in enumerate(made):
            for k in range(accounts_per_app):
                for platform, tag in (("tiktok", "tt"), ("instagram", "ig")):
                    phone.add_account(f"{name[-1]}{index}{tag}{chr(97 + k)}", platform=platform)
        # A hub holds broker credentials only: no database URL in its environment.
        metrics_port = free_port()
        env = self.env(
            PHONEFLEET_HUB_METRICS_PORT=str(metrics_port),
            PHONEFLEET_HUB_NAME=name,
            PHONEFLEET_ADB_PORT=str(adb.port),
            PHONEFLEET_MEDIA_ROOTS=str(self.media_root),
            PHONEFLEET_MEDIA_CACHE_DIR=str(self.logs / f"cache-{name}"),
            PHONEFLEET_DATA_DIR=str(self.logs / f"data-{name}"),
        )
        env.pop("PHONEFLEET_DATABASE_URL", None)
        process = Process(
            name, ["worker", "--hub", name, "--concurrency", "64"], env, self.logs / f"{name}.log"
        ).start()
        hub = Hub(name, adb, fleet, process, metrics_port)
        self.hubs[name] = hub
        return hub

    def register_accounts(self, hub: Hub) -> None:
        """Tell phonefleet about the accounts logged in on the hub's phones (POST /accounts)."""
        for phone in hub.fleet.phones:
            for app in phone.app_infos():
                for username in app.accounts:
                    body = {
                        "username": username,
                        "platform": app.platform,
                        "device": phone.props["ro.serialno"],
                        "logined": 1,
                    }
                    payload = self.call("POST", "/accounts", json=body)
                    assert payload["code"] in (0, 40901), payload

    def phone(self, serial: str) -> SimulatedPhone:
        """The simulated phone behind a phonefleet serial."""
        for hub in self.hubs.values():
            for phone in hub.fleet.phones:
                if phone.props["ro.serialno"] == serial:
                    return phone
        raise KeyError(serial)

    def supervise(self) -> None:
        """Start again any process that asked for it (exit status 75, see StallWatchdog), as systemd,
        Docker or `phonefleet up` would."""

        def watch() -> None:
            while not self.stopping.wait(0.5):
                for process in [*self.processes.values(), *(h.process for h in self.hubs.values())]:
                    popen = process.popen
                    if popen is not None and popen.poll() == STALLED_EXIT_STATUS:
                        process.start()
                        self.restarts.append(process.name)

        threading.Thread(target=watch, name="farm-supervisor", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        for hub in self.hubs.values():
            hub.process.stop()
        for process in self.processes.values():
            process.stop()
        for hub in self.hubs.values():
            hub.fleet.stop()
            hub.adb.kill()
        self.engine.dispose()


def start_farm(
    services: ServiceUrls,
    tmp: Path,
    redis_db: int,
    hubs: dict[str, int],
    *,
    admin_database_url: str | None = None,
    broker_base_url: str | None = None,
    broker_query: str = "",
    env: dict[str, str] | None = None,
) -> Farm:
    """Start a farm with ``hubs`` (name → number of phones) and wait until every phone is online.
    Fault tests pass their own PostgreSQL/Redis (``admin_database_url``, ``broker_base_url``) to stop
    them at will, and settings in ``env``."""
    database_url = create_database(admin_database_url or services.admin_database_url, "phonefleet_e2e")
    upgrade(database_url)
    broker_url = f"{broker_base_url or services.broker_base_url}/{redis_db}" + (
        f"?{broker_query}" if broker_query else ""
    )
    redis.Redis.from_url(broker_url).flushdb()
    engine = create_engine(database_url, pool_size=2)
    with transaction(engine) as session:
        new_key = create_key(session, name="e2e", plan=Plan.BUSINESS)
    media = tmp / "media"
    media.mkdir(parents=True)
    logs = tmp / "logs"
    logs.mkdir(parents=True)
    api_port = free_port()
    farm = Farm(
        database_url=database_url,
        broker_url=broker_url,
        api_url=f"http://127.0.0.1:{api_port}",
        key=new_key.key,
        webhook_secret=new_key.webhook_secret,
        media_root=media,
        logs=logs,
        engine=engine,
    )
    farm.base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")},
        **FAST,
        "PHONEFLEET_DATABASE_URL": database_url,
        "PHONEFLEET_BROKER_URL": broker_url,
        "PHONEFLEET_DISPATCHER_METRICS_PORT": str(free_port()),
        **(env or {}),
    }
    try:
        farm.processes["dispatcher"] = Process(
            "dispatcher", ["dispatcher"], farm.env(), logs / "dispatcher.log"
        ).start()
        farm.processes["api"] = Process("api", ["api", "--port", str(api_port)], farm.env(), logs / "api.log").start()
        for name, phones in hubs.items():
            farm.start_hub(name, phones)
        wait_for_port("127.0.0.1", api_port, timeout=30)
        expected = {s for hub in farm.hubs.values() for s in hub.serials}
        farm.wait(
            lambda: expected <= {s for s, d in farm.devices().items() if d["online"]},
            timeout=60,
            what=f"{len(expected)} phones online",
        )
        for hub in farm.hubs.values():
            farm.register_accounts(hub)
        farm.supervise()
    except BaseException:
        farm.stop()
        drop_database(services.admin_database_url, database_url)
        raise
    return farm
