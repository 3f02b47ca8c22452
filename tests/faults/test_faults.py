"""The faults a device farm really has, each injected into a running stack.

Settings of these farms: heartbeat every 0.5 s, an attempt is lost after 5 s without one, a sent
attempt that never starts is re-sent after 5 s, the timer ticks every 0.2 s.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text

from shared.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.e2e.farm import Farm


def noop(duration: float = 0.0) -> dict[str, object]:
    return {"script_name": "noop", "script_config": {"duration": duration}}


def test_hub_killed_mid_task(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm(
        {"hub-k": 2},
        env={
            "PHONEFLEET_AUTO_RETRY": "true",
            "PHONEFLEET_RETRY_DELAY_MIN_SECONDS": "0",
            "PHONEFLEET_RETRY_DELAY_MAX_SECONDS": "0.5",
        },
    )
    serial = farm.hubs["hub-k"].serials[0]
    (task_id,) = farm.create(serials=[serial], **noop(3))
    farm.wait(lambda: farm.task(task_id)["status"] == 1, timeout=15, what="running")
    killed_at = time.monotonic()
    farm.kill_hub("hub-k")
    farm.wait(lambda: farm.task(task_id)["status"] != 1, timeout=10, what="task leaves running")
    left_after = time.monotonic() - killed_at
    task = farm.task(task_id)
    assert task["status"] == 0 and task["remark"].startswith("retry #1"), task
    assert "hub lost" in task["remark"] and left_after < 5 + 2
    farm.restart("hub-k")
    (done,) = farm.wait_tasks([task_id], timeout=30)
    assert (done["status"], done["attempt"], done["retry_count"]) == (2, 2, 1)
    assert farm.check_runs()[task_id] == 2


def test_hub_killed_without_auto_retry_fails_the_task(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm({"hub-k": 1})
    (task_id,) = farm.create(serials=farm.hubs["hub-k"].serials, **noop(30))
    farm.wait(lambda: farm.task(task_id)["status"] == 1, timeout=15, what="running")
    farm.kill_hub("hub-k")
    (task,) = farm.wait_tasks([task_id], timeout=10)
    assert (task["status"], task["failure_kind"]) == (3, "hub_lost")


def _load(farm: Farm, per_phone: int, duration: float) -> list[int]:
    serials = [s for hub in farm.hubs.values() for s in hub.serials]
    ids: list[int] = []
    for _ in range(per_phone):
        ids += farm.create(serials=serials, **noop(duration))
    return ids


def _assert_each_ran_once(farm: Farm, ids: list[int]) -> None:
    tasks = farm.wait_tasks(ids, timeout=60)
    assert [t["status"] for t in tasks] == [2] * len(ids), [(t["id"], t["remark"]) for t in tasks if t["status"] != 2]
    started = farm.check_runs()
    assert {task_id: started.get(task_id) for task_id in ids} == dict.fromkeys(ids, 1)


def test_redis_emptied_under_load(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm({"hub-r": 3})
    ids = _load(farm, 4, 0.5)
    farm.wait(lambda: any(farm.task(i)["status"] == 1 for i in ids), timeout=15, what="some running")
    redis.Redis.from_url(farm.broker_url).flushdb()
    _assert_each_ran_once(farm, ids)


def test_redis_restarted_empty(make_farm: Callable[..., Farm], tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    base = server.start().rsplit("/", 1)[0]
    try:
        farm = make_farm({"hub-r": 3}, broker_base_url=base)
        ids = _load(farm, 3, 0.5)
        farm.wait(lambda: any(farm.task(i)["status"] == 1 for i in ids), timeout=15, what="some running")
        server.stop()
        server.start()
        _assert_each_ran_once(farm, ids)
    finally:
        server.stop()


def test_postgres_stopped_for_ten_seconds_under_load(make_farm: Callable[..., Farm], tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg", delete_on_stop=False)
    postgres.start()
    try:
        farm = make_farm({"hub-p": 3}, admin_database_url=postgres.url)
        acknowledged = _load(farm, 2, 1.0)
        farm.wait(lambda: any(farm.task(i)["status"] == 1 for i in acknowledged), timeout=15, what="running")
        farm.engine.dispose()
        postgres.stop()
        codes: list[int] = []
        outage_ends = time.monotonic() + 10
        serial = farm.hubs["hub-p"].serials[0]
        while time.monotonic() < outage_ends:
            response = httpx.post(
                f"{farm.api_url}/api/v1/task",
                json={"serials": [serial], **noop(0)},
                headers={"Authorization": f"Bearer {farm.key}"},
                timeout=10,
            )
            payload = response.json()
            codes.append(payload["code"])
            assert response.status_code in (200, 503), payload
            if payload["code"] == 0:
                acknowledged += payload["data"]["task_ids"]
        postgres.start()
        assert 50301 in codes and 50001 not in codes
        _assert_each_ran_once(farm, acknowledged)
    finally:
        postgres.stop()


def test_phone_unplugged_mid_task(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm({"hub-u": 1})
    hub = farm.hubs["hub-u"]
    serial, phone = hub.serials[0], hub.fleet.phones[0]
    running, waiting = farm.create(serials=[serial], **noop(30)) + farm.create(serials=[serial], **noop(0))
    farm.wait(lambda: farm.task(running)["status"] == 1, timeout=15, what="running")
    unplugged_at = time.monotonic()
    hub.fleet.unplug(phone.serial)
    (task,) = farm.wait_tasks([running], timeout=5)
    assert (task["status"], task["remark"], task["failure_kind"]) == (3, "device offline", "device_offline")
    assert time.monotonic() - unplugged_at < 5
    farm.wait(lambda: not farm.devices()[serial]["online"], timeout=10, what="device offline")
    assert farm.task(waiting)["status"] == 0, "its other tasks wait for it"
    hub.fleet.replug(phone.serial)
    (later,) = farm.wait_tasks([waiting], timeout=30)
    assert later["status"] == 2


def test_dispatcher_killed_and_restarted(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm({"hub-d": 4})
    ids = _load(farm, 5, 0.3)
    farm.wait(lambda: sum(farm.task(i)["status"] == 2 for i in ids) >= 3, timeout=20, what="some done")
    farm.processes["dispatcher"].stop(signal.SIGKILL)
    # Hubs go on reporting; their reports wait in the broker for a dispatcher.
    broker = redis.Redis.from_url(farm.broker_url)
    farm.wait(lambda: broker.llen("control") > 0, timeout=10, what="reports waiting in the broker")
    farm.restart("dispatcher")
    _assert_each_ran_once(farm, ids)


def test_end_lost_with_redis_comes_back_from_the_restarted_hubs_disk(make_farm: Callable[..., Farm]) -> None:
    """A phone finishes its task while no dispatcher runs; Redis then loses the end report and the end
    key, and the hub restarts (its stall watchdog, a deploy). The end comes back from the hub's outbox
    on disk: the task completes once, never judged lost and run again."""
    farm = make_farm({"hub-o": 1})
    farm.processes["dispatcher"].stop()
    (task_id,) = farm.create(serials=farm.hubs["hub-o"].serials, **noop(0.2))
    broker = redis.Redis.from_url(farm.broker_url)
    farm.wait(lambda: broker.keys("phonefleet:ended:*"), timeout=20, what="the hub recorded the end")
    farm.hubs["hub-o"].process.stop()  # warm shutdown: the unacknowledged end is saved
    broker.delete("control", *broker.keys("phonefleet:ended:*"), *broker.keys("phonefleet:alive:*"))
    farm.restart("hub-o")
    farm.restart("dispatcher")
    (task,) = farm.wait_tasks([task_id], timeout=60)
    assert task["status"] == 2, task
    assert farm.sql("SELECT attempt FROM task WHERE id = :id", id=task_id)[0].attempt == 1, "never re-sent"
    assert farm.check_runs() == {task_id: 1}
    outbox = farm.logs / "data-hub-o" / "hubs" / "hub-o-outbox.json"
    farm.wait(lambda: outbox.read_text() == "[]", timeout=30, what="the acknowledged end leaves the saved outbox")


def test_scheduled_task_starts_on_time_across_restarts(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm({"hub-s": 1})
    serial = farm.hubs["hub-s"].serials[0]
    in_two_hours = (datetime.now(UTC) + timedelta(hours=2)).strftime("%H:%M")
    (task_id,) = farm.create(serials=[serial], start_time=in_two_hours, **noop(0))
    due = datetime.now(UTC) + timedelta(seconds=20)
    # Move the instant closer, as the clock would; the schedule lives in PostgreSQL, not in a process.
    with farm.engine.begin() as conn:
        conn.execute(text("UPDATE task SET due_at = :d, scheduled_at = :d WHERE id = :id"), {"d": due, "id": task_id})
    processes = [farm.processes["dispatcher"], farm.processes["api"], farm.hubs["hub-s"].process]
    for process in processes:
        process.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    for process in processes:
        process.stop()
    for name in ("dispatcher", "api", "hub-s"):
        farm.restart(name)
    farm.wait(lambda: farm.task(task_id)["status"] == 0, timeout=10, what="api back")
    assert datetime.now(UTC) < due - timedelta(seconds=3), "the restarts took too long for this test"
    (task,) = farm.wait_tasks([task_id], timeout=40)
    late = datetime.fromisoformat(task["started_at"]) - datetime.fromisoformat(task["scheduled_at"])
    assert timedelta(0) <= late < timedelta(seconds=1), late


def test_sigterm_stops_every_process_cleanly(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm({"hub-t": 1})
    (task_id,) = farm.create(serials=farm.hubs["hub-t"].serials, **noop(60))
    farm.wait(lambda: farm.task(task_id)["status"] == 1, timeout=15, what="running")
    hub = farm.hubs["hub-t"].process
    began = time.monotonic()
    hub.stop(signal.SIGTERM, timeout=15)
    assert hub.popen is not None and hub.popen.returncode == 0
    assert time.monotonic() - began < 2 + 5, "the grace period bounds the shutdown"
    (task,) = farm.wait_tasks([task_id], timeout=10)
    assert (task["status"], task["remark"]) == (3, "interrupted: hub shutting down")
    dispatcher = farm.processes["dispatcher"]
    dispatcher.stop(signal.SIGTERM, timeout=15)
    assert dispatcher.popen is not None and dispatcher.popen.returncode == 0, dispatcher.tail()
    api = farm.processes["api"]
    api.stop(signal.SIGTERM, timeout=15)
    # uvicorn finishes its requests, then exits by the signal it got (status 128+15), as servers do.
    assert api.popen is not None and api.popen.returncode in (0, -signal.SIGTERM), api.tail()
    assert "Application shutdown complete" in api.tail()


@pytest.mark.skipif(not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists(), reason="needs iproute2")
def test_partitioned_hub_late_reports_are_fenced(make_farm: Callable[..., Farm], tmp_path: Path) -> None:
    from tests.faults.netns import Island

    server = EmbeddedRedis(tmp_path / "redis", persistent=False, bind="0.0.0.0")
    server.start()
    try:
        with Island("pfpart") as island:
            farm = make_farm({}, broker_base_url=f"redis://{island.host_ip}:{server.port}")
            island.start_hub(farm, "hub-island", phones=1)
            serial = island.serials[0]
            farm.wait(lambda: farm.devices().get(serial, {}).get("online"), timeout=60, what="island phone online")
            (task_id,) = farm.create(serials=[serial], **noop(8))
            farm.wait(lambda: farm.task(task_id)["status"] == 1, timeout=15, what="running")
            island.cut()
            (decided,) = farm.wait_tasks([task_id], timeout=15)
            assert (decided["status"], decided["failure_kind"]) == (3, "hub_lost")
            island.heal()
            client = redis.Redis.from_url(farm.broker_url)
            farm.wait(lambda: client.exists(f"phonefleet:ack:{task_id}:1"), timeout=60, what="late report handled")
            late = farm.task(task_id)
            assert (late["status"], late["remark"]) == (decided["status"], decided["remark"])
            assert any(e["event"] == "task_ended" and e["task_id"] == task_id for e in island.runs())
    finally:
        server.stop()
