"""A backing service that does not answer: 50301 (safe to retry), never 500, nothing half-done."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.broker import reset_clients
from shared.db.models import TaskStatus
from shared.embedded import free_port
from tests.api.helpers import create_tasks, task
from tests.factories import get_task_row, make_device, set_task

pytestmark = pytest.mark.usefixtures("db")


def test_database_down_is_50301(client: TestClient, configure: Any) -> None:
    configure(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    for method, path in (("GET", "/api/v1/task/stats"), ("POST", "/api/v1/task")):
        response = client.request(method, path, json={"serials": ["d"], "script_name": "noop", "script_config": {}})
        payload = response.json()
        assert (response.status_code, payload["code"]) == (503, 50301), payload
        assert "retry" in payload["message"] and "Traceback" not in response.text


def test_broker_down_still_creates_and_keeps_the_lease(client: TestClient, configure: Any) -> None:
    make_device(serial="dev-1")
    configure(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    reset_clients()
    (task_id,) = create_tasks(client, ["dev-1"])
    row = get_task_row(task_id)
    # Committed and leased; the dispatcher re-sends attempts that never started.
    assert row is not None and row.status == TaskStatus.PENDING and row.dispatched_at is not None


def test_broker_down_still_records_a_stop(client: TestClient, configure: Any) -> None:
    (task_id,) = create_tasks(client, ["dev-1"])
    set_task(task_id, status=TaskStatus.RUNNING, attempt=1, started_at=datetime.now(UTC))
    configure(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    reset_clients()
    payload = client.post(f"/api/v1/task/{task_id}/stop").json()
    assert payload["code"] == 0 and payload["data"]["stop_requested"] is True
    assert task(client, task_id)["stop_requested"] is True


def test_health_and_readiness(anonymous: TestClient, configure: Any) -> None:
    assert anonymous.get("/healthz").json()["message"] == "alive"
    ready = anonymous.get("/readyz")
    assert (ready.status_code, ready.json()["data"]) == (200, {"database": "ok", "broker": "ok"})
    configure(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    reset_clients()
    not_ready = anonymous.get("/readyz")
    assert (not_ready.status_code, not_ready.json()["code"]) == (503, 50301)
    assert not_ready.json()["data"]["broker"].startswith("unreachable")
    assert not_ready.json()["data"]["database"] == "ok"
