"""Keys, plans, the device limit and the loopback exception."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col

from api.keys.service import hash_key, revoke_key
from shared.db.engine import transaction
from shared.db.models import ApiKey
from shared.settings import Plan
from tests.factories import make_key

pytestmark = pytest.mark.usefixtures("db")

TASK_ENDPOINTS = [
    ("POST", "/api/v1/task", {"serials": ["d"], "script_name": "noop", "script_config": {}}),
    ("GET", "/api/v1/task", None),
    ("GET", "/api/v1/task/1", None),
    ("DELETE", "/api/v1/task/1", None),
    ("DELETE", "/api/v1/task/batch", {"task_ids": [1]}),
    ("POST", "/api/v1/task/1/stop", None),
    ("POST", "/api/v1/task/1/retry", None),
    ("POST", "/api/v1/task/retry-all", None),
    ("GET", "/api/v1/task/stats", None),
    ("GET", "/api/v1/accounts", None),
    ("GET", "/api/v1/devices", None),
]


@pytest.mark.parametrize(("method", "path", "body"), TASK_ENDPOINTS)
def test_every_endpoint_needs_a_key(anonymous: TestClient, method: str, path: str, body: Any) -> None:
    response = anonymous.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json()["code"] == 40101


@pytest.mark.parametrize(("method", "path", "body"), TASK_ENDPOINTS)
def test_starter_plan_has_no_api(anonymous: TestClient, method: str, path: str, body: Any) -> None:
    anonymous.headers["X-API-Key"] = make_key(plan=Plan.STARTER)
    response = anonymous.request(method, path, json=body)
    assert (response.status_code, response.json()["code"]) == (403, 40301)


def test_auth_is_checked_before_the_body(anonymous: TestClient) -> None:
    assert anonymous.post("/api/v1/task", content=b"{broken").json()["code"] == 40101


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_both_headers_carry_a_key(anonymous: TestClient, header: str) -> None:
    key = make_key(plan=Plan.PRO)
    anonymous.headers[header] = f"Bearer {key}" if header == "Authorization" else key
    assert anonymous.get("/api/v1/task/stats").json()["code"] == 0


@pytest.mark.parametrize("value", ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "pf_" + "x" * 43])
def test_wrong_keys_are_refused(anonymous: TestClient, value: str) -> None:
    anonymous.headers["Authorization"] = value
    payload = anonymous.get("/api/v1/task/stats").json()
    assert payload["code"] == 40101


def test_revoked_key_is_refused(anonymous: TestClient) -> None:
    key = make_key(plan=Plan.PRO)
    with transaction() as session:
        row = session.scalars(select(ApiKey).where(col(ApiKey.key_hash) == hash_key(key))).one()
        assert row.id is not None
        assert revoke_key(session, row.id)
    anonymous.headers["X-API-Key"] = key
    assert anonymous.get("/api/v1/task/stats").json()["code"] == 40101


def test_keys_are_stored_hashed(anonymous: TestClient) -> None:
    key = make_key(plan=Plan.TEAM)
    with transaction() as session:
        stored = [(k.key_hash, k.prefix) for k in session.scalars(select(ApiKey))]
    assert all(key not in h and len(p) < 12 for h, p in stored)
    assert (hash_key(key), key[:9]) in stored


@pytest.mark.parametrize(
    ("plan", "enabled", "limit"),
    [(Plan.PRO, True, 20), (Plan.TEAM, True, 100), (Plan.BUSINESS, True, 1000)],
)
def test_license_check_reports_the_plan(anonymous: TestClient, plan: Plan, enabled: bool, limit: int) -> None:
    anonymous.headers["X-API-Key"] = make_key(plan=plan)
    payload = anonymous.get("/api/v1/license/check").json()
    assert payload["code"] == 0
    assert payload["data"] == {
        "plan_name": plan.value.capitalize(),
        "api_enabled": enabled,
        "device_limit": limit,
        "message": "API access enabled",
    }


def test_license_check_of_starter_is_40301_with_its_data(anonymous: TestClient) -> None:
    anonymous.headers["X-API-Key"] = make_key(plan=Plan.STARTER)
    response = anonymous.get("/api/v1/license/check")
    payload = response.json()
    assert (response.status_code, payload["code"]) == (403, 40301)
    assert payload["data"]["plan_name"] == "Starter" and payload["data"]["api_enabled"] is False


def test_device_limit_counts_devices_with_unfinished_tasks(anonymous: TestClient, configure: Any) -> None:
    configure(plan_device_limits='{"pro": 3}')
    anonymous.headers["X-API-Key"] = make_key(plan=Plan.PRO)

    def create(serials: list[str]) -> dict[str, Any]:
        body = {"serials": serials, "script_name": "noop", "script_config": {}}
        result: dict[str, Any] = anonymous.post("/api/v1/task", json=body).json()
        return result

    assert create(["a", "b"])["code"] == 0
    assert create(["a", "b", "c"])["code"] == 0  # a and b are already counted
    refused = create(["d"])
    assert refused["code"] == 40302 and refused["data"] == {"device_limit": 3, "devices": 4}
    assert create(["a", "b", "c", "d"])["code"] == 40302
    # Another key has its own count.
    first_key = anonymous.headers["X-API-Key"]
    anonymous.headers["X-API-Key"] = make_key(plan=Plan.PRO)
    assert create(["x", "y", "z"])["code"] == 0
    # Finished tasks free their device: stop both tasks on "a" (ids 1 and 3), then "d" fits.
    anonymous.headers["X-API-Key"] = first_key
    for task_id in (1, 3):
        assert anonymous.post(f"/api/v1/task/{task_id}/stop").json()["code"] == 0
    assert create(["d"])["code"] == 0


def test_loopback_without_key_only_when_enabled(anonymous: TestClient, configure: Any) -> None:
    # TestClient's peer is not a loopback address; the real-server test covers 127.0.0.1.
    configure(allow_loopback_without_key="true")
    assert anonymous.get("/api/v1/task/stats").json()["code"] == 40101
