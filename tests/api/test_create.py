"""POST /api/v1/task: device mode, usernames mode, multi-account, start_time, all-or-nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.tasks.schemas import SEED_EXAMPLE
from shared.settings import Plan
from tests.factories import get_task_row, make_account, make_key

pytestmark = pytest.mark.usefixtures("db")


def create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/task", json=body)
    payload: dict[str, Any] = response.json()
    assert response.status_code == (200 if payload["code"] == 0 else payload["code"] // 100), payload
    return payload


def post_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"serials": ["dev-1"], "script_name": "post", "script_config": {"captions": "hi"}}
    body.update(overrides)
    return body


def test_seed_example_creates_one_pending_task(client: TestClient) -> None:
    payload = create(client, SEED_EXAMPLE)
    assert payload["code"] == 0 and payload["message"] == "success"
    assert payload["data"]["created_count"] == 1
    (task_id,) = payload["data"]["task_ids"]
    task = client.get(f"/api/v1/task/{task_id}").json()["data"]
    assert task["serial"] == "device_serial_1"
    assert task["status"] == 0
    assert task["source"] == "api"
    assert task["script_config"] == SEED_EXAMPLE["script_config"]
    assert task["username"] is None and task["start_time"] is None and task["scheduled_at"] is None
    assert task["retry_count"] == 0 and task["remark"] == "" and task["hub"] is None
    created = datetime.fromisoformat(task["created_at"])
    assert created.tzinfo is not None and abs(datetime.now(UTC) - created) < timedelta(minutes=1)


def test_one_task_per_distinct_serial_in_request_order(client: TestClient) -> None:
    payload = create(client, post_body(serials=["b", "a", "b", "c"]))
    ids = payload["data"]["task_ids"]
    assert payload["data"]["created_count"] == 3 and ids == sorted(ids)
    serials = [client.get(f"/api/v1/task/{i}").json()["data"]["serial"] for i in ids]
    assert serials == ["b", "a", "c"]


def test_unicode_and_sql_looking_text_is_stored_verbatim(client: TestClient) -> None:
    captions = "Nouvelle vidéo 🎬🔥 {super|génial} ## 日本語 '; DROP TABLE task; --"
    body = post_body(serials=["x'OR'1'='1"], script_config={"captions": captions, "material_list": ["/m/é.mp4"]})
    (task_id,) = create(client, body)["data"]["task_ids"]
    task = client.get(f"/api/v1/task/{task_id}").json()["data"]
    assert task["script_config"]["captions"] == captions
    assert task["serial"] == "x'OR'1'='1"
    assert client.get("/api/v1/task/stats").json()["data"]["total"] == 1


def test_usernames_mode_runs_each_account_on_its_device(client: TestClient) -> None:
    make_account(username="alice", device="dev-a")
    make_account(username="bob", device="dev-b", platform="instagram", packagename="com.instagram.android.clone1")
    payload = create(client, post_body(serials=None, usernames=["alice", "@bob"]))
    tasks = [client.get(f"/api/v1/task/{i}").json()["data"] for i in payload["data"]["task_ids"]]
    assert [(t["serial"], t["username"], t["platform"]) for t in tasks] == [
        ("dev-a", "alice", "tiktok"),
        ("dev-b", "bob", "instagram"),
    ]
    row = get_task_row(payload["data"]["task_ids"][1])
    assert row is not None and row.packagename == "com.instagram.android.clone1"


def test_unknown_username_creates_nothing(client: TestClient) -> None:
    make_account(username="alice", device="dev-a")
    payload = create(client, post_body(serials=None, usernames=["alice", "ghost"]))
    assert payload["code"] == 40004
    assert "ghost" in payload["message"]
    assert client.get("/api/v1/task/stats").json()["data"]["total"] == 0


@pytest.mark.parametrize(
    ("account", "fragment"),
    [
        ({"status": 1}, "disabled"),
        ({"device": None}, "on no device"),
    ],
)
def test_unusable_account_is_refused_by_name(client: TestClient, account: dict[str, Any], fragment: str) -> None:
    make_account(**{"username": "carol", "device": "dev-c", **account})
    payload = create(client, post_body(serials=None, usernames=["carol"]))
    assert payload["code"] == 40001
    assert payload["message"].startswith("usernames[0]:") and fragment in payload["message"]


def test_username_on_two_platforms_needs_a_platform(client: TestClient) -> None:
    make_account(username="dana", device="dev-1", platform="tiktok")
    make_account(username="dana", device="dev-2", platform="instagram")
    ambiguous = create(client, post_body(serials=None, usernames=["dana"]))
    assert ambiguous["code"] == 40001 and "script_config.platform" in ambiguous["message"]
    chosen = create(client, post_body(serials=None, usernames=["dana"], script_config={"platform": "instagram"}))
    task = client.get(f"/api/v1/task/{chosen['data']['task_ids'][0]}").json()["data"]
    assert (task["serial"], task["platform"]) == ("dev-2", "instagram")


def test_multi_account_fans_out_per_enabled_account_in_order(client: TestClient) -> None:
    make_account(username="a1", device="dev-1")
    make_account(username="a2", device="dev-1")
    make_account(username="off", device="dev-1", status=1)
    make_account(username="b1", device="dev-2")
    payload = create(client, post_body(serials=["dev-1", "dev-2"], enable_multi_account=True))
    tasks = [client.get(f"/api/v1/task/{i}").json()["data"] for i in payload["data"]["task_ids"]]
    assert [(t["serial"], t["username"]) for t in tasks] == [
        ("dev-1", "a1"),
        ("dev-1", "a2"),
        ("dev-2", "b1"),
    ]


def test_multi_account_device_without_accounts_fails_the_whole_request(client: TestClient) -> None:
    make_account(username="a1", device="dev-1")
    payload = create(client, post_body(serials=["dev-1", "empty"], enable_multi_account=True))
    assert payload["code"] == 40001 and payload["message"].startswith("serials[1]:")
    assert client.get("/api/v1/task/stats").json()["data"]["total"] == 0


def test_multi_account_is_ignored_in_usernames_mode(client: TestClient) -> None:
    make_account(username="a1", device="dev-1")
    make_account(username="a2", device="dev-1")
    payload = create(client, post_body(serials=None, usernames=["a1"], enable_multi_account=True))
    assert payload["data"]["created_count"] == 1


def test_start_time_resolves_to_the_next_occurrence(client: TestClient, configure: Any) -> None:
    configure(timezone="Asia/Tokyo")
    zone = ZoneInfo("Asia/Tokyo")
    before = datetime.now(zone)
    ahead = (before + timedelta(hours=2)).strftime("%H:%M")
    passed = (before - timedelta(hours=2)).strftime("%H:%M")
    for hhmm, expected_day_offset in ((ahead, 0), (passed, 1)):
        payload = create(client, post_body(start_time=hhmm))
        task = client.get(f"/api/v1/task/{payload['data']['task_ids'][0]}").json()["data"]
        at = datetime.fromisoformat(task["scheduled_at"])
        assert at.utcoffset() == timedelta(hours=9)
        assert at.strftime("%H:%M") == hhmm and task["start_time"] == hhmm
        assert before < at <= before + timedelta(days=1)
        expected = (before + timedelta(hours=2 if expected_day_offset == 0 else 22)).date()
        assert at.date() == expected


def test_source_ui_is_kept(client: TestClient) -> None:
    payload = create(client, post_body(source="ui"))
    assert client.get(f"/api/v1/task/{payload['data']['task_ids'][0]}").json()["data"]["source"] == "ui"


def test_request_larger_than_the_per_request_cap_creates_nothing(client: TestClient, configure: Any) -> None:
    configure(max_tasks_per_request=3)
    payload = create(client, post_body(serials=["a", "b", "c", "d"]))
    assert payload["code"] == 40001 and "at most 3" in payload["message"]
    assert client.get("/api/v1/task/stats").json()["data"]["total"] == 0


def test_batch_of_a_thousand_serials(client: TestClient) -> None:
    client.headers["Authorization"] = f"Bearer {make_key(plan=Plan.BUSINESS)}"
    serials = [f"phone-{i:04d}" for i in range(1000)]
    payload = create(client, post_body(serials=serials))
    assert payload["data"]["created_count"] == 1000
    assert client.get("/api/v1/task", params={"serial": "phone-0999"}).json()["data"]["total"] == 1
