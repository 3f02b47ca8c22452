"""Soak: thousands of tasks on hundreds of simulated phones for several minutes, with random faults for
the first four minutes, then recovery, then an invariant check. Not part of the fast suite; run it with

    ./tests/run -m soak -s            # defaults: 300 phones on 3 hubs, 3,000 tasks, faults every ~15 s
    PHONEFLEET_SOAK_TASKS=6000 PHONEFLEET_SOAK_PHONES=100 ./tests/run -m soak -s

It prints the figures it checked. Faults drawn at random: a hub SIGKILLed and restarted, Redis
emptied, Redis restarted empty, PostgreSQL stopped for 5 s, the dispatcher SIGKILLed and restarted,
phones unplugged and plugged back. Meanwhile a "user" stops, deletes and retries tasks.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from shared.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.e2e.farm import Farm, start_farm
from tests.services import ServiceUrls

pytestmark = [pytest.mark.soak, pytest.mark.timeout(3600)]

TASKS = int(os.environ.get("PHONEFLEET_SOAK_TASKS", "3000"))
PHONES = int(os.environ.get("PHONEFLEET_SOAK_PHONES", "300"))
HUBS = int(os.environ.get("PHONEFLEET_SOAK_HUBS", "3"))
FAULT_EVERY = float(os.environ.get("PHONEFLEET_SOAK_FAULT_SECONDS", "15"))
FAULT_WINDOW = float(os.environ.get("PHONEFLEET_SOAK_FAULT_WINDOW", "240"))
SEED = int(os.environ.get("PHONEFLEET_SOAK_SEED", str(int(time.time()))))


class Soak:
    def __init__(self, farm: Farm, postgres: EmbeddedPostgres, broker: EmbeddedRedis) -> None:
        self.farm = farm
        self.postgres = postgres
        self.broker = broker
        self.rng = random.Random(SEED)
        self.acknowledged: list[int] = []
        self.deleted: set[int] = set()
        self.faults: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            response = httpx.request(
                method,
                f"{self.farm.api_url}/api/v1{path}",
                timeout=15,
                headers={"Authorization": f"Bearer {self.farm.key}"},
                **kwargs,
            )
        except httpx.HTTPError:
            return None  # the api restarts or its database is down; the client tries again later
        assert response.status_code < 500 or response.json()["code"] == 50301, response.text
        payload: dict[str, Any] = response.json()
        return payload

    def create_load(self) -> None:
        serials = [s for hub in self.farm.hubs.values() for s in hub.serials]
        while len(self.acknowledged) < TASKS:
            batch = self.rng.sample(serials, k=min(len(serials), self.rng.randint(1, 40)))
            duration = round(self.rng.uniform(0.05, 1.5), 2)
            payload = self.request(
                "POST", "/task", json={"serials": batch, "script_name": "noop", "script_config": {"duration": duration}}
            )
            if payload and payload["code"] == 0:
                with self.lock:
                    self.acknowledged += payload["data"]["task_ids"]
            time.sleep(self.rng.uniform(0.05, 0.3))

    def act_as_user(self) -> None:
        while not self.done.wait(self.rng.uniform(0.5, 2.0)):
            with self.lock:
                if not self.acknowledged:
                    continue
                task_id = self.rng.choice(self.acknowledged)
            action = self.rng.choice(["stop", "delete", "retry", "retry-all"])
            if action == "stop":
                self.request("POST", f"/task/{task_id}/stop")
            elif action == "delete":
                payload = self.request("DELETE", f"/task/{task_id}")
                if payload and payload["code"] == 0:
                    with self.lock:
                        self.deleted.add(task_id)
            elif action == "retry":
                self.request("POST", f"/task/{task_id}/retry")
            else:
                self.request("POST", "/task/retry-all")

    def inject_faults(self) -> None:
        """Random faults for FAULT_WINDOW seconds; then the farm must recover from the last one."""
        window_ends = time.monotonic() + FAULT_WINDOW
        while not self.done.wait(self.rng.uniform(0.5, 1.5) * FAULT_EVERY) and time.monotonic() < window_ends:
            fault = self.rng.choice(
                ["kill_hub", "flush_redis", "restart_redis", "stop_postgres", "kill_dispatcher", "unplug"]
            )
            self.faults.append(fault)
            print(f"  fault: {fault}", flush=True)
            if fault == "kill_hub":
                name = self.rng.choice(list(self.farm.hubs))
                self.farm.kill_hub(name)
                time.sleep(3)
                self.farm.restart(name)
            elif fault == "flush_redis":
                redis.Redis.from_url(self.farm.broker_url).flushdb()
            elif fault == "restart_redis":
                self.broker.stop()
                self.broker.start()
            elif fault == "stop_postgres":
                self.postgres.stop()
                time.sleep(5)
                self.postgres.start()
            elif fault == "kill_dispatcher":
                self.farm.processes["dispatcher"].stop(signal.SIGKILL)
                time.sleep(2)
                self.farm.restart("dispatcher")
            else:
                hub = self.rng.choice(list(self.farm.hubs.values()))
                phones = self.rng.sample(hub.fleet.phones, k=min(3, len(hub.fleet.phones)))
                for phone in phones:
                    hub.fleet.unplug(phone.serial)
                time.sleep(2)
                for phone in phones:
                    hub.fleet.replug(phone.serial)


def test_soak(services: ServiceUrls, tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    postgres.start()
    broker = EmbeddedRedis(tmp_path / "redis", persistent=False)
    broker_base = broker.start().rsplit("/", 1)[0]
    per_hub = PHONES // HUBS
    farm = start_farm(
        services,
        tmp_path / "farm",
        0,
        {f"hub-{i}": per_hub for i in range(HUBS)},
        admin_database_url=postgres.url,
        broker_base_url=broker_base,
        env={
            "PHONEFLEET_AUTO_RETRY": "true",
            "PHONEFLEET_MAX_RETRY_COUNT": "10",
            "PHONEFLEET_RETRY_DELAY_MIN_SECONDS": "0",
            "PHONEFLEET_RETRY_DELAY_MAX_SECONDS": "2",
        },
    )
    soak = Soak(farm, postgres, broker)
    began = time.monotonic()
    print(f"\nsoak: seed {SEED}, {TASKS} tasks on {per_hub * HUBS} phones on {HUBS} hubs", flush=True)
    try:
        threads = [threading.Thread(target=t, daemon=True) for t in (soak.act_as_user, soak.inject_faults)]
        for thread in threads:
            thread.start()
        soak.create_load()
        print(f"  {len(soak.acknowledged)} tasks acknowledged after {time.monotonic() - began:.0f}s", flush=True)
        farm.engine.dispose()

        def unfinished() -> int:
            try:
                rows = farm.sql("SELECT count(*) FROM task WHERE status IN (0, 1)")
            except Exception:
                return -1
            return int(rows[0][0])

        deadline = time.monotonic() + 600
        while (left := unfinished()) != 0:
            assert time.monotonic() < deadline, f"{left} tasks still unfinished\n{farm.diagnostics()}"
            time.sleep(1)
        soak.done.set()
        for thread in threads:
            thread.join(timeout=60)
        # The last fault may have just ended: let everything settle and the user's last retries finish.
        farm.wait(lambda: unfinished() == 0, timeout=300, what="all tasks finished after the last fault")
        check(soak, time.monotonic() - began)
    finally:
        soak.done.set()
        farm.stop()
        broker.stop()
        postgres.stop()


def check(soak: Soak, seconds: float) -> None:
    farm = soak.farm
    rows = {int(r.id): r for r in farm.sql("SELECT id, serial, status, retry_count FROM task")}
    acknowledged = set(soak.acknowledged)
    missing = acknowledged - soak.deleted - set(rows)
    assert not missing, f"acknowledged tasks lost: {sorted(missing)[:20]}"
    by_status: dict[int, int] = defaultdict(int)
    for row in rows.values():
        by_status[row.status] += 1
    assert set(by_status) <= {2, 3}, f"not all terminal: {dict(by_status)}"
    stats = soak.request("GET", "/task/stats")
    assert stats is not None and stats["code"] == 0
    assert stats["data"] == {
        "total": len(rows),
        "pending": 0,
        "running": 0,
        "completed": by_status[2],
        "failed": by_status[3],
    }, stats["data"]
    started = farm.check_runs()  # raises if a phone ran two attempts at once
    completions: dict[int, int] = defaultdict(int)
    first_start: dict[int, str] = {}
    for event in farm.runs():
        if event["event"] == "task_ended" and event["outcome"] == "completed":
            completions[event["task_id"]] += 1
        if event["event"] == "task_started":
            first_start.setdefault(event["task_id"], event["timestamp"])
    twice = sorted(t for t, n in completions.items() if n > 1)
    # Per-device order: tasks that were never retried start in the order they were created.
    order_breaks = 0
    by_phone: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for task_id, row in rows.items():
        if row.retry_count == 0 and task_id in first_start:
            by_phone[row.serial].append((first_start[task_id], task_id))
    for runs in by_phone.values():
        ids = [task_id for _, task_id in sorted(runs)]
        order_breaks += sum(1 for a, b in pairwise(ids) if a > b)
    print(
        f"\nsoak figures after {seconds:.0f}s (seed {SEED}):\n"
        f"  tasks acknowledged {len(acknowledged)}, deleted by the user {len(soak.deleted)}, "
        f"in the table {len(rows)}\n"
        f"  completed {by_status[2]}, failed {by_status[3]}, pending 0, running 0 (stats agree)\n"
        f"  attempts run on phones {sum(started.values())}, phones that ran two at once 0\n"
        f"  tasks completed twice {len(twice)}, per-device order breaks {order_breaks}\n"
        f"  processes restarted by their stall watchdog {len(farm.restarts)}: {sorted(farm.restarts)}\n"
        f"  faults injected {len(soak.faults)}: { {f: soak.faults.count(f) for f in sorted(set(soak.faults))} }",
        flush=True,
    )
    assert not twice, f"tasks whose script completed twice: {twice[:20]}"
    assert order_breaks == 0
