"""Detail, delete, batch delete, stop, retry, retry-all and stats, and the route-order traps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from shared.db.models import TaskStatus
from shared.dispatcher.cancel import cancel_key
from tests.api.helpers import create_tasks, stats, task
from tests.factories import get_task_row, set_task

pytestmark = pytest.mark.usefixtures("db")


def running(task_id: int, attempt: int = 1) -> None:
    set_task(
        task_id,
        status=TaskStatus.RUNNING,
        attempt=attempt,
        dispatched_at=datetime.now(UTC),
        started_at=datetime.now(UTC),
        hub="hub-1",
    )


def failed(task_id: int, remark: str = "app crashed", retry_count: int = 0) -> None:
    set_task(
        task_id,
        status=TaskStatus.FAILED,
        remark=remark,
        end_time=datetime.now(UTC),
        failure_kind="app_crash",
        retry_count=retry_count,
        attempt=1,
    )


def test_route_order_traps_are_not_task_ids(client: TestClient) -> None:
    create_tasks(client, ["d1"])
    assert client.get("/api/v1/task/stats").json()["data"]["total"] == 1
    assert client.post("/api/v1/task/retry-all").json() == {
        "code": 0,
        "message": "success",
        "data": {"retried_count": 0},
    }
    batch = client.request("DELETE", "/api/v1/task/batch", json={"task_ids": [1]}).json()
    assert batch["data"] == {"deleted_count": 1}
    # The same words under other methods read as ids, and get a clear 40001, never a 500.
    for method, path in (("GET", "/api/v1/task/batch"), ("DELETE", "/api/v1/task/stats")):
        payload = client.request(method, path).json()
        assert payload["code"] == 40001 and payload["message"] == "task_id: must be an integer"


def test_get_unknown_task_is_40401(client: TestClient) -> None:
    payload = client.get("/api/v1/task/12345").json()
    assert payload == {"code": 40401, "message": "task 12345 not found", "data": None}


def test_delete_pending_task(client: TestClient) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    assert client.delete(f"/api/v1/task/{task_id}").json()["data"] == {"deleted_count": 1}
    assert client.get(f"/api/v1/task/{task_id}").json()["code"] == 40401
    assert client.delete(f"/api/v1/task/{task_id}").json()["code"] == 40401
    assert stats(client)["total"] == 0


def test_delete_running_task_signals_the_hub(client: TestClient, redis_client: redis.Redis) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    running(task_id, attempt=3)
    assert client.delete(f"/api/v1/task/{task_id}").json()["code"] == 0
    assert redis_client.get(cancel_key(task_id)) == b"3"
    assert get_task_row(task_id) is None


def test_batch_delete_counts_only_existing_and_stops_running(client: TestClient, redis_client: redis.Redis) -> None:
    ids = create_tasks(client, ["d1", "d2", "d3"])
    running(ids[1])
    payload = client.request("DELETE", "/api/v1/task/batch", json={"task_ids": [ids[0], ids[1], 999, ids[0]]}).json()
    assert payload["data"] == {"deleted_count": 2}
    assert redis_client.get(cancel_key(ids[1])) == b"1"
    assert redis_client.get(cancel_key(ids[0])) is None
    assert stats(client) == {"total": 1, "pending": 1, "running": 0, "completed": 0, "failed": 0}


def test_stop_pending_task_fails_it_now(client: TestClient, redis_client: redis.Redis) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    payload = client.post(f"/api/v1/task/{task_id}/stop").json()
    assert payload["code"] == 0
    data = payload["data"]
    assert (data["status"], data["remark"], data["failure_kind"]) == (3, "stopped by user", "stopped")
    assert data["end_time"] is not None
    assert redis_client.get(cancel_key(task_id)) is None, "a task never handed to a phone needs no signal"
    # Stopping it again is harmless; retrying it is allowed.
    assert client.post(f"/api/v1/task/{task_id}/stop").json()["code"] == 0
    assert client.post(f"/api/v1/task/{task_id}/retry").json()["data"]["status"] == 0


def test_stop_running_task_asks_the_hub_and_waits_for_it(client: TestClient, redis_client: redis.Redis) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    running(task_id, attempt=2)
    data = client.post(f"/api/v1/task/{task_id}/stop").json()["data"]
    assert (data["status"], data["stop_requested"]) == (1, True)
    assert redis_client.get(cancel_key(task_id)) == b"2"
    logs = client.get(f"/api/v1/task/{task_id}/logs").json()["data"]["logs"]
    assert [line["message"] for line in logs] == ["stop requested by user"]


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.FAILED])
def test_stop_finished_task_is_a_conflict(client: TestClient, status: TaskStatus) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    set_task(task_id, status=status, failure_kind=None)
    payload = client.post(f"/api/v1/task/{task_id}/stop").json()
    assert payload["code"] == 40901 and status.name.lower() in payload["message"]


def test_retry_failed_task(client: TestClient) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    failed(task_id)
    data = client.post(f"/api/v1/task/{task_id}/retry").json()["data"]
    assert (data["status"], data["retry_count"], data["remark"], data["end_time"]) == (0, 1, "", None)


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED])
def test_retry_of_unfailed_task_is_a_conflict(client: TestClient, status: TaskStatus) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    set_task(task_id, status=status)
    payload = client.post(f"/api/v1/task/{task_id}/retry").json()
    assert payload["code"] == 40901 and "only failed tasks" in payload["message"]
    assert task(client, task_id)["retry_count"] == 0


def test_retry_refused_at_the_maximum(client: TestClient, configure: Any) -> None:
    configure(max_retry_count=2)
    (task_id,) = create_tasks(client, ["d1"])
    for expected in (1, 2):
        failed(task_id, retry_count=expected - 1)
        assert client.post(f"/api/v1/task/{task_id}/retry").json()["data"]["retry_count"] == expected
    failed(task_id, retry_count=2)
    payload = client.post(f"/api/v1/task/{task_id}/retry").json()
    assert payload["code"] == 40901 and "max_retry_count 2" in payload["message"]


def test_retry_unknown_task_is_40401(client: TestClient) -> None:
    assert client.post("/api/v1/task/77/retry").json()["code"] == 40401
    assert client.post("/api/v1/task/77/stop").json()["code"] == 40401


def test_retry_all_moves_failed_tasks_with_retries_left(client: TestClient, configure: Any) -> None:
    configure(max_retry_count=3)
    ids = create_tasks(client, ["d1", "d2", "d3", "d4"])
    failed(ids[0])
    failed(ids[1], retry_count=3)  # at the maximum: stays failed
    failed(ids[2], retry_count=1)
    set_task(ids[3], status=TaskStatus.COMPLETED)
    assert client.post("/api/v1/task/retry-all").json()["data"] == {"retried_count": 2}
    assert [task(client, i)["status"] for i in ids] == [0, 3, 0, 2]
    assert [task(client, i)["retry_count"] for i in ids] == [1, 3, 2, 0]


def test_stats_follow_every_transition(client: TestClient) -> None:
    ids = create_tasks(client, [f"d{i}" for i in range(6)])
    running(ids[0])
    set_task(ids[1], status=TaskStatus.COMPLETED)
    failed(ids[2])
    client.post(f"/api/v1/task/{ids[3]}/stop")
    client.delete(f"/api/v1/task/{ids[4]}")
    assert stats(client) == {"total": 5, "pending": 1, "running": 1, "completed": 1, "failed": 2}
    client.post("/api/v1/task/retry-all")
    assert stats(client) == {"total": 5, "pending": 3, "running": 1, "completed": 1, "failed": 0}


def test_task_logs_page_forward(client: TestClient) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    running(task_id)
    client.post(f"/api/v1/task/{task_id}/stop")
    set_task(task_id, status=TaskStatus.FAILED, stop_requested_at=None)
    client.post(f"/api/v1/task/{task_id}/retry")
    logs = client.get(f"/api/v1/task/{task_id}/logs").json()["data"]["logs"]
    assert [line["message"] for line in logs] == ["stop requested by user", "retry #1 requested by user"]
    after = client.get(f"/api/v1/task/{task_id}/logs", params={"after_id": logs[0]["id"]}).json()["data"]["logs"]
    assert [line["message"] for line in after] == ["retry #1 requested by user"]


def test_screenshot_missing_is_40401(client: TestClient) -> None:
    (task_id,) = create_tasks(client, ["d1"])
    payload = client.get(f"/api/v1/task/{task_id}/screenshot").json()
    assert payload["code"] == 40401 and "no screenshot" in payload["message"]
