"""GET /api/v1/devices."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import create_tasks
from tests.factories import make_device

pytestmark = pytest.mark.usefixtures("db")


def test_lists_known_devices_with_their_state(client: TestClient) -> None:
    make_device(serial="b-2", hub="hub-b", online=False)
    make_device(serial="a-1", hub="hub-a", online=True, model="Pixel 7")
    (task_id,) = create_tasks(client, ["a-1"])
    data = client.get("/api/v1/devices").json()["data"]
    assert data["total"] == 2
    first, second = data["devices"]
    assert (first["serial"], first["hub"], first["online"], first["model"]) == (
        "a-1",
        "hub-a",
        True,
        "Pixel 7",
    )
    assert (first["busy"], first["current_task_id"]) == (True, task_id)
    assert (second["serial"], second["online"], second["busy"]) == ("b-2", False, False)
    assert first["last_seen"] is not None
    assert [
        d["serial"] for d in client.get("/api/v1/devices", params={"online": "false"}).json()["data"]["devices"]
    ] == ["b-2"]
    assert [d["serial"] for d in client.get("/api/v1/devices", params={"hub": "hub-a"}).json()["data"]["devices"]] == [
        "a-1"
    ]


def test_unknown_device(client: TestClient) -> None:
    assert client.get("/api/v1/devices/nope").json()["code"] == 40401


def test_task_for_an_unknown_serial_waits(client: TestClient) -> None:
    (task_id,) = create_tasks(client, ["not-plugged-yet"])
    assert client.get(f"/api/v1/task/{task_id}").json()["data"]["status"] == 0
    assert client.get("/api/v1/devices").json()["data"]["total"] == 0
