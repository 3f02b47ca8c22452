"""Small helpers for api tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def create_tasks(client: TestClient, serials: list[str], **extra: Any) -> list[int]:
    body: dict[str, Any] = {"serials": serials, "script_name": "noop", "script_config": {}, **extra}
    payload = client.post("/api/v1/task", json=body).json()
    assert payload["code"] == 0, payload
    ids: list[int] = payload["data"]["task_ids"]
    return ids


def task(client: TestClient, task_id: int) -> dict[str, Any]:
    payload = client.get(f"/api/v1/task/{task_id}").json()
    assert payload["code"] == 0, payload
    data: dict[str, Any] = payload["data"]
    return data


def stats(client: TestClient) -> dict[str, int]:
    data: dict[str, int] = client.get("/api/v1/task/stats").json()["data"]
    return data
