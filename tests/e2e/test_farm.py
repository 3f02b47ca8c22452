"""Tasks run on phones: dispatch, exclusivity, order, stop/delete/retry, phones moving between hubs."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from typing import Any

from tests.e2e.farm import Farm


def noop(duration: float = 0.0, **extra: object) -> dict[str, object]:
    return {"script_name": "noop", "script_config": {"duration": duration, **extra}}


def test_tasks_on_many_phones_complete(farm: Farm) -> None:
    serials = [s for hub in farm.hubs.values() for s in hub.serials]
    ids = farm.create(serials=serials, **noop(0.05))
    tasks = farm.wait_tasks(ids, timeout=30)
    assert [t["status"] for t in tasks] == [2] * len(serials), [
        (t["serial"], t["remark"]) for t in tasks if t["status"] != 2
    ]
    hubs = {t["serial"]: t["hub"] for t in tasks}
    for name, hub in farm.hubs.items():
        assert {hubs[s] for s in hub.serials} == {name}


def test_one_phone_one_task_at_a_time_in_order(farm: Farm) -> None:
    serials = farm.hubs["hub-a"].serials[:3] + farm.hubs["hub-b"].serials[:3]
    ids: list[int] = []
    for _ in range(4):
        ids += farm.create(serials=serials, **noop(0.2))
    tasks = farm.wait_tasks(ids, timeout=60)
    assert all(t["status"] == 2 for t in tasks)
    by_phone: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in tasks:
        by_phone[t["serial"]].append(t)
    for serial, runs in by_phone.items():
        runs.sort(key=lambda t: str(t["started_at"]))
        assert [t["id"] for t in runs] == sorted(t["id"] for t in runs), f"{serial} ran out of order"
        for before, after in pairwise(runs):
            ended = datetime.fromisoformat(str(before["end_time"]))
            began = datetime.fromisoformat(str(after["started_at"]))
            assert ended <= began, f"{serial} ran {before['id']} and {after['id']} at once"


def test_stop_running_task(farm: Farm) -> None:
    serial = farm.hubs["hub-a"].serials[3]
    first, second = farm.create(serials=[serial], **noop(60)) + farm.create(serials=[serial], **noop(0))
    farm.wait(lambda: farm.task(first)["status"] == 1, timeout=15, what="task running")
    assert farm.call("POST", f"/task/{first}/stop")["data"]["stop_requested"] is True
    stopped, after = farm.wait_tasks([first, second], timeout=10)
    assert (stopped["status"], stopped["remark"], stopped["failure_kind"]) == (3, "stopped by user", "stopped")
    assert after["status"] == 2, "the phone is free for its next task"


def test_delete_running_task_frees_the_phone(farm: Farm) -> None:
    serial = farm.hubs["hub-b"].serials[3]
    first, second = farm.create(serials=[serial], **noop(60)) + farm.create(serials=[serial], **noop(0))
    farm.wait(lambda: farm.task(first)["status"] == 1, timeout=15, what="task running")
    assert farm.call("DELETE", f"/task/{first}")["code"] == 0
    assert farm.call("GET", f"/task/{first}")["code"] == 40401
    (after,) = farm.wait_tasks([second], timeout=10)
    assert after["status"] == 2


def test_retry_and_retry_all_of_failed_tasks(farm: Farm) -> None:
    serials = farm.hubs["hub-a"].serials[4:6]
    ids = farm.create(serials=serials, **noop(0, fail_with="boom"))
    failed = farm.wait_tasks(ids, timeout=15)
    assert [(t["status"], t["failure_kind"]) for t in failed] == [(3, "script_error")] * 2
    assert "boom" in failed[0]["remark"]
    retried = farm.call("POST", f"/task/{ids[0]}/retry")["data"]
    assert (retried["status"], retried["retry_count"]) == (0, 1)
    again = farm.wait_tasks([ids[0]], timeout=15)[0]
    assert (again["status"], again["retry_count"], again["attempt"]) == (3, 1, 2)
    assert farm.call("POST", "/task/retry-all")["data"]["retried_count"] >= 2
    final = farm.wait_tasks(ids, timeout=15)
    assert [t["retry_count"] for t in final] == [2, 1]
    logs = farm.call("GET", f"/task/{ids[0]}/logs")["data"]["logs"]
    assert any("retry #1" in line["message"] for line in logs)


def test_phone_moving_to_another_hub_keeps_receiving_tasks(farm: Farm) -> None:
    source, target = farm.hubs["hub-a"], farm.hubs["hub-b"]
    phone = source.fleet.phones[5]
    serial = phone.props["ro.serialno"]
    (first,) = farm.create(serials=[serial], **noop(0))
    assert farm.wait_tasks([first])[0]["hub"] == "hub-a"
    source.fleet.detach(phone)
    target.adb.client().connect(phone.serial, timeout=10)
    farm.wait(lambda: farm.devices()[serial]["hub"] == "hub-b", timeout=30, what="phone reported by hub-b")
    (second,) = farm.create(serials=[serial], **noop(0))
    moved = farm.wait_tasks([second], timeout=30)[0]
    assert (moved["status"], moved["hub"]) == (2, "hub-b")
    # Give it back so the other tests keep their layout.
    target.adb.client().disconnect(phone.serial)
    source.adb.client().connect(phone.serial, timeout=10)
    farm.wait(lambda: farm.devices()[serial]["hub"] == "hub-a", timeout=30, what="phone back on hub-a")
