"""webhook_url on tasks: validated, stored, and a delivery queued when the task ends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from shared.db.engine import transaction
from shared.db.models import ApiKey

pytestmark = pytest.mark.usefixtures("db")


def body(**extra: Any) -> dict[str, Any]:
    return {"serials": ["d1"], "script_name": "noop", "script_config": {}, **extra}


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "example.com/hook", "http://", "http://x y", "h" * 2001])
def test_bad_webhook_url_names_the_field(client: TestClient, url: str) -> None:
    payload = client.post("/api/v1/task", json=body(webhook_url=url)).json()
    assert payload["code"] == 40001 and payload["message"].startswith("webhook_url:")


def test_stopping_a_waiting_task_queues_its_delivery(client: TestClient) -> None:
    url = "https://hooks.example.com/phonefleet"
    (task_id,) = client.post("/api/v1/task", json=body(webhook_url=url)).json()["data"]["task_ids"]
    assert client.get(f"/api/v1/task/{task_id}").json()["data"]["webhook_url"] == url
    assert client.get(f"/api/v1/task/{task_id}/webhooks").json()["data"]["deliveries"] == []
    client.post(f"/api/v1/task/{task_id}/stop")
    (delivery,) = client.get(f"/api/v1/task/{task_id}/webhooks").json()["data"]["deliveries"]
    assert (delivery["url"], delivery["event"], delivery["status"], delivery["attempts"]) == (
        url,
        "task.failed",
        "pending",
        0,
    )


def test_without_a_signing_secret_webhooks_are_refused(client: TestClient) -> None:
    with transaction() as session:
        session.execute(update(ApiKey).values(webhook_secret=None))
    payload = client.post("/api/v1/task", json=body(webhook_url="https://hooks.example.com/x")).json()
    assert payload["code"] == 40001 and "PHONEFLEET_WEBHOOK_SECRET" in payload["message"]
    assert client.get("/api/v1/task/stats").json()["data"]["total"] == 0
