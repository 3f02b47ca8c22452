"""GET /api/v1/task: every filter, pagination, newest first, totals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from shared.db.models import TaskStatus
from tests.api.helpers import create_tasks
from tests.factories import set_task

pytestmark = pytest.mark.usefixtures("db")


def listing(client: TestClient, **params: object) -> dict[str, object]:
    payload = client.get("/api/v1/task", params=params).json()
    assert payload["code"] == 0, payload
    data: dict[str, object] = payload["data"]
    return data


def ids_of(data: dict[str, object]) -> list[int]:
    tasks = data["tasks"]
    assert isinstance(tasks, list)
    return [t["id"] for t in tasks]


def test_defaults_newest_first(client: TestClient) -> None:
    ids = create_tasks(client, [f"d{i}" for i in range(25)])
    data = listing(client)
    assert (data["total"], data["page"], data["page_size"]) == (25, 1, 20)
    assert ids_of(data) == sorted(ids, reverse=True)[:20]


def test_pages_cover_everything_once(client: TestClient) -> None:
    ids = create_tasks(client, [f"d{i}" for i in range(23)])
    seen = [i for page in (1, 2, 3) for i in ids_of(listing(client, page=page, page_size=10))]
    assert seen == sorted(ids, reverse=True)
    assert ids_of(listing(client, page=4, page_size=10)) == []
    assert listing(client, page=4, page_size=10)["total"] == 23


def test_each_filter_and_their_combination(client: TestClient) -> None:
    a = create_tasks(client, ["s1", "s2"])
    b = create_tasks(client, ["s1"], source="ui")
    c = client.post("/api/v1/task", json={"serials": ["s2"], "script_name": "post", "script_config": {}}).json()[
        "data"
    ]["task_ids"]
    set_task(a[0], status=TaskStatus.COMPLETED)
    set_task(c[0], status=TaskStatus.FAILED)

    def check(expected: list[int], **params: object) -> None:
        data = listing(client, **params)
        assert ids_of(data) == sorted(expected, reverse=True), params
        assert data["total"] == len(expected), params

    check([a[0]], status=2)
    check([a[1], b[0]], status=0)
    check([a[0], b[0]], serial="s1")
    check([c[0]], script_name="post")
    check([b[0]], source="ui")
    check([a[0], a[1], c[0]], source="api")
    check([a[1]], status=0, source="api")
    check([b[0]], serial="s1", status=0)
    check([], serial="nobody")
    check([], script_name="post", status=0)
