"""The gateway dispatches a new task for an idle online phone itself, after its commit: one message
on ``device.<serial>``, never two for one phone."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from shared.db.engine import transaction
from shared.db.models import Device
from shared.queues import RUN_TASK, device_queue
from shared.settings import get_settings
from tests.api.helpers import create_tasks, task
from tests.factories import get_task_row, make_account, make_device

pytestmark = pytest.mark.usefixtures("db")


def queued(client: redis.Redis, serial: str) -> list[dict[str, Any]]:
    """The run messages waiting in a device's queue, decoded."""
    messages = []
    for raw in client.lrange(device_queue(serial), 0, -1):
        envelope = json.loads(raw)
        assert envelope["headers"]["task"] == RUN_TASK
        assert envelope["properties"]["body_encoding"] == "base64"
        _, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        messages.append(kwargs)
    return messages


def test_idle_online_phone_gets_its_task_at_once(client: TestClient, redis_client: redis.Redis) -> None:
    make_device(serial="dev-1")
    first, second = create_tasks(client, ["dev-1"]) + create_tasks(client, ["dev-1"])
    (message,) = queued(redis_client, "dev-1")
    assert message["task_id"] == first and message["attempt"] == 1
    assert message["script_name"] == "noop" and message["serial"] == "dev-1"
    row = get_task_row(first)
    assert row is not None and row.dispatched_at is not None and row.attempt == 1
    assert task(client, first)["status"] == 0, "dispatched is still pending until the hub starts it"
    second_row = get_task_row(second)
    assert second_row is not None and second_row.dispatched_at is None and second_row.attempt == 0
    with transaction() as session:
        device = session.get(Device, "dev-1")
        assert device is not None and (device.lease_task_id, device.lease_attempt) == (first, 1)


def test_offline_unknown_and_scheduled_tasks_are_not_sent(client: TestClient, redis_client: redis.Redis) -> None:
    make_device(serial="off", online=False)
    make_device(serial="later")
    create_tasks(client, ["off", "ghost"])
    in_two_hours = (datetime.now(get_settings().zone) + timedelta(hours=2)).strftime("%H:%M")
    create_tasks(client, ["later"], start_time=in_two_hours)
    assert queued(redis_client, "off") == [] and queued(redis_client, "ghost") == []
    assert queued(redis_client, "later") == [], "a scheduled task waits for its time even on an idle phone"


def test_stopped_pending_task_never_reaches_the_broker(client: TestClient, redis_client: redis.Redis) -> None:
    make_device(serial="busy")
    first, second = create_tasks(client, ["busy"]) + create_tasks(client, ["busy"])
    assert client.post(f"/api/v1/task/{second}/stop").json()["code"] == 0
    assert [m["task_id"] for m in queued(redis_client, "busy")] == [first]


def test_retry_dispatches_to_an_idle_phone(client: TestClient, redis_client: redis.Redis) -> None:
    make_device(serial="dev-2", online=False)
    (task_id,) = create_tasks(client, ["dev-2"])
    client.post(f"/api/v1/task/{task_id}/stop")
    make_device(serial="dev-2", online=True)
    assert client.post(f"/api/v1/task/{task_id}/retry").json()["code"] == 0
    (message,) = queued(redis_client, "dev-2")
    assert (message["task_id"], message["attempt"]) == (task_id, 1)


def test_multi_account_order_is_kept_per_phone(client: TestClient, redis_client: redis.Redis) -> None:
    make_device(serial="dev-3")
    make_account(username="first", device="dev-3")
    make_account(username="second", device="dev-3")
    body = {"serials": ["dev-3"], "script_name": "noop", "script_config": {}, "enable_multi_account": True}
    ids = client.post("/api/v1/task", json=body).json()["data"]["task_ids"]
    (message,) = queued(redis_client, "dev-3")
    assert (message["task_id"], message["username"]) == (ids[0], "first")


def test_idle_phone_among_waiting_serials_is_claimed_in_the_same_request(
    client: TestClient, redis_client: redis.Redis
) -> None:
    # "busy" holds a lease, "ghost" is unknown: alone, they take the one-statement path; with the idle
    # "dev-4" among them the request claims dev-4 in its own transaction, and every task is created.
    make_device(serial="busy")
    make_device(serial="dev-4")
    (leased,) = create_tasks(client, ["busy"])
    ids = create_tasks(client, ["ghost", "busy", "dev-4"])
    assert len(ids) == 3 and ids == sorted(ids)
    assert [m["task_id"] for m in queued(redis_client, "busy")] == [leased]
    assert [m["task_id"] for m in queued(redis_client, "dev-4")] == [ids[2]]
    assert queued(redis_client, "ghost") == []
    assert [task(client, i)["serial"] for i in ids] == ["ghost", "busy", "dev-4"]
