"""GET/POST/PATCH/DELETE /api/v1/accounts."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import make_account, make_device

pytestmark = pytest.mark.usefixtures("db")


def add(client: TestClient, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = client.post("/api/v1/accounts", json=fields).json()
    return payload


def test_create_returns_every_field_but_the_password(client: TestClient) -> None:
    make_device(serial="R58M41", model="SM-A515F")
    payload = add(
        client,
        username="@alice",
        platform="tiktok",
        password="s3cret",
        device="R58M41",
        email="a@example.com",
        logined=1,
        tags=["fr", "food"],
    )
    assert payload["code"] == 0
    account = payload["data"]
    assert "password" not in account and "s3cret" not in str(payload)
    assert {
        k: account[k]
        for k in (
            "username",
            "platform",
            "device",
            "device_online",
            "device_name",
            "logined",
            "status",
            "tags",
            "packagename",
            "email",
        )
    } == {
        "username": "alice",
        "platform": "tiktok",
        "device": "R58M41",
        "device_online": True,
        "device_name": "SM-A515F",
        "logined": 1,
        "status": 0,
        "tags": ["fr", "food"],
        "packagename": None,
        "email": "a@example.com",
    }


def test_duplicate_account_is_a_conflict(client: TestClient) -> None:
    assert add(client, username="bob", platform="tiktok")["code"] == 0
    assert add(client, username="bob", platform="tiktok")["code"] == 40901
    assert add(client, username="bob", platform="instagram")["code"] == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"platform": "tiktok"}, "username"),
        ({"username": "x"}, "platform"),
        ({"username": "x", "platform": "vine"}, "platform"),
        ({"username": "x", "platform": "tiktok", "logined": 2}, "logined"),
        ({"username": "x", "platform": "tiktok", "status": "0"}, "status"),
        ({"username": "x", "platform": "tiktok", "tags": "a,b"}, "tags"),
        ({"username": "x", "platform": "tiktok", "packagename": "not a package"}, "packagename"),
        ({"username": "x", "platform": "tiktok", "device": "has space"}, "device"),
    ],
)
def test_bad_account_names_the_field(client: TestClient, fields: dict[str, Any], field: str) -> None:
    payload = add(client, **fields)
    assert payload["code"] == 40001 and payload["message"].startswith(field), payload


def test_filters_and_pagination(client: TestClient) -> None:
    make_device(serial="d1", online=True)
    make_device(serial="d2", online=False)
    make_account(username="a", device="d1", tags=["x"])
    make_account(username="b", device="d1", platform="instagram", logined=0)
    make_account(username="c", device="d2", status=1, tags=["x", "y"])

    def names(**params: Any) -> list[str]:
        data = client.get("/api/v1/accounts", params=params).json()["data"]
        return [a["username"] for a in data["accounts"]]

    assert names() == ["a", "b", "c"]
    assert names(platform="instagram") == ["b"]
    assert names(device="d1") == ["a", "b"]
    assert names(logined=0) == ["b"]
    assert names(status=1) == ["c"]
    assert names(tag="x") == ["a", "c"]
    assert names(tag="y") == ["c"]
    assert names(page=2, page_size=2) == ["c"]
    data = client.get("/api/v1/accounts", params={"page_size": 2}).json()["data"]
    assert (data["total"], data["page"], data["page_size"]) == (3, 1, 2)
    assert [a["device_online"] for a in data["accounts"]] == [True, True]


def test_update_and_delete(client: TestClient) -> None:
    account_id = add(client, username="eve", platform="tiktok")["data"]["id"]
    updated = client.patch(f"/api/v1/accounts/{account_id}", json={"device": "d9", "status": 1}).json()["data"]
    assert (updated["device"], updated["status"], updated["username"]) == ("d9", 1, "eve")
    cleared = client.patch(f"/api/v1/accounts/{account_id}", json={"device": None}).json()["data"]
    assert cleared["device"] is None and cleared["status"] == 1
    assert client.delete(f"/api/v1/accounts/{account_id}").json()["code"] == 0
    assert client.get(f"/api/v1/accounts/{account_id}").json()["code"] == 40401
    assert client.delete(f"/api/v1/accounts/{account_id}").json()["code"] == 40401
