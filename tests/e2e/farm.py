"""A whole phone farm for end-to-end tests: real PostgreSQL and Redis, the api, a dispatcher and hub
workers as separate processes, each hub with its own real adb server and simulated phones.

The farm has its own database and Redis database, so the api tests' per-test cleanup never touches
the long-running processes here; tests on the farm assert on the tasks they create themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, create_engine, text

from api.keys.service import create_key
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

    def start(self) -> Process:
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.popen = subprocess.Popen([PHONEFLEET, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT)
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
    media_root: Path
    logs: Path
    engine: Engine
    hubs: dict[str, Hub] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
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
        payload = self.call("GET", "/devices", params={"page_size": 100})
        return {d["serial"]: d for d in payload["data"]["devices"]}

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

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
        env = self.env(
            PHONEFLEET_HUB_NAME=name,
            PHONEFLEET_ADB_PORT=str(adb.port),
            PHONEFLEET_MEDIA_ROOTS=str(self.media_root),
            PHONEFLEET_MEDIA_CACHE_DIR=str(self.logs / f"cache-{name}"),
        )
        env.pop("PHONEFLEET_DATABASE_URL", None)
        process = Process(
            name, ["worker", "--hub", name, "--concurrency", "64"], env, self.logs / f"{name}.log"
        ).start()
        hub = Hub(name, adb, fleet, process)
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

    def stop(self) -> None:
        for hub in self.hubs.values():
            hub.process.stop()
        for process in self.processes.values():
            process.stop()
        for hub in self.hubs.values():
            hub.fleet.stop()
            hub.adb.kill()
        self.engine.dispose()


def start_farm(services: ServiceUrls, tmp: Path, redis_db: int, hubs: dict[str, int]) -> Farm:
    """Start a farm with ``hubs`` (name → number of phones) and wait until every phone is online."""
    database_url = create_database(services.admin_database_url, "phonefleet_e2e")
    upgrade(database_url)
    broker_url = f"{services.broker_base_url}/{redis_db}"
    redis.Redis.from_url(broker_url).flushdb()
    engine = create_engine(database_url, pool_size=2)
    with transaction(engine) as session:
        key = create_key(session, name="e2e", plan=Plan.BUSINESS).key
    media = tmp / "media"
    media.mkdir()
    logs = tmp / "logs"
    logs.mkdir()
    api_port = free_port()
    farm = Farm(
        database_url=database_url,
        broker_url=broker_url,
        api_url=f"http://127.0.0.1:{api_port}",
        key=key,
        media_root=media,
        logs=logs,
        engine=engine,
    )
    farm.base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")},
        **FAST,
        "PHONEFLEET_DATABASE_URL": database_url,
        "PHONEFLEET_BROKER_URL": broker_url,
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
    except BaseException:
        farm.stop()
        drop_database(services.admin_database_url, database_url)
        raise
    return farm
