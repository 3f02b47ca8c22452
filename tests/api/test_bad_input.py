"""Bad input gets the envelope with the right code and a message naming the field; never a 500,
never a stack trace, never a half-written batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("db")

GOOD: dict[str, Any] = {"serials": ["dev-1"], "script_name": "post", "script_config": {}}


def with_(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


def assert_refused(response: Any, code: int, field: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = response.json()
    assert payload["code"] == code, payload
    assert response.status_code == code // 100
    assert set(payload) == {"code", "message", "data"}
    assert "Traceback" not in response.text and 'File "' not in response.text
    if field is not None:
        assert payload["message"].startswith(f"{field}:"), payload["message"]
    return payload


def total(client: TestClient) -> int:
    return int(client.get("/api/v1/task/stats").json()["data"]["total"])


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (with_(script_name=...), 40002, "script_name"),
        (with_(script_name=None), 40002, "script_name"),
        (with_(script_name=""), 40002, "script_name"),
        (with_(script_name="   "), 40002, "script_name"),
        (with_(script_name=..., serials="oops"), 40002, "script_name"),
        (with_(script_name=7), 40001, "script_name"),
        (with_(script_name="warp_drive"), 40003, "script_name"),
        (with_(script_config=...), 40001, "script_config"),
        (with_(script_config=[1, 2]), 40001, "script_config"),
        (with_(script_config="{}"), 40001, "script_config"),
        (with_(serials=...), 40001, "serials"),
        (with_(serials=[]), 40001, "serials"),
        (with_(serials="dev-1"), 40001, "serials"),
        (with_(serials=[1]), 40001, "serials[0]"),
        (with_(serials=["ok", ""]), 40001, "serials[1]"),
        (with_(serials=["has space"]), 40001, "serials[0]"),
        (with_(serials=["x" * 129]), 40001, "serials[0]"),
        (with_(usernames=["a"]), 40001, "serials"),
        (with_(serials=..., usernames=[]), 40001, "usernames"),
        (with_(serials=..., usernames=[""]), 40001, "usernames[0]"),
        (with_(enable_multi_account="yes"), 40001, "enable_multi_account"),
        (with_(enable_multi_account=1), 40001, "enable_multi_account"),
        (with_(start_time="25:00"), 40001, "start_time"),
        (with_(start_time="9h"), 40001, "start_time"),
        (with_(start_time="9:30"), 40001, "start_time"),
        (with_(start_time="09:60"), 40001, "start_time"),
        (with_(start_time="09:30:00"), 40001, "start_time"),
        (with_(start_time=930), 40001, "start_time"),
        (with_(source="cli"), 40001, "source"),
        (with_(script_config={"content_type": 2}), 40001, "script_config.content_type"),
        (with_(script_config={"content_type": "0"}), 40001, "script_config.content_type"),
        (with_(script_config={"upload_wait_time": -1}), 40001, "script_config.upload_wait_time"),
        (with_(script_config={"upload_wait_time": "60"}), 40001, "script_config.upload_wait_time"),
        (with_(script_config={"upload_wait_time": True}), 40001, "script_config.upload_wait_time"),
        (with_(script_config={"upload_wait_time": 1.5}), 40001, "script_config.upload_wait_time"),
        (with_(script_config={"material_list": "a.mp4"}), 40001, "script_config.material_list"),
        (with_(script_config={"material_list": ["a.mp4", 3]}), 40001, "script_config.material_list[1]"),
        (with_(script_config={"post_way": "fax"}), 40001, "script_config.post_way"),
        (with_(script_config={"placement": "feed"}), 40001, "script_config.placement"),
        (with_(script_config={"add_sound": "loud"}), 40001, "script_config.add_sound"),
        (with_(script_config={"origin_sound_volume": 101}), 40001, "script_config.origin_sound_volume"),
        (with_(script_config={"platform": "myspace"}), 40001, "script_config.platform"),
        (with_(script_config={"material_source": "localFolder"}), 40001, "script_config"),
        (with_(script_config={"captions": "x" * 4001}), 40001, "script_config.captions"),
    ],
)
def test_bad_create_body(client: TestClient, body: dict[str, Any], code: int, field: str) -> None:
    assert_refused(client.post("/api/v1/task", json=body), code, field)
    assert total(client) == 0


def test_add_sound_accepts_the_documented_string_and_an_integer(client: TestClient) -> None:
    for value in ("-1", -1, "custom", 1):
        response = client.post("/api/v1/task", json=with_(script_config={"add_sound": value}))
        assert response.json()["code"] == 0, value


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"", "application/json", ""),
        (b"[1, 2]", "application/json", "JSON object"),
        (b"null", "application/json", ""),
        (b"\xff\xfe\x00", "application/json", ""),
        (b"serials=a&script_name=post", "application/x-www-form-urlencoded", ""),
    ],
)
def test_body_that_is_not_a_json_object(client: TestClient, content: bytes, content_type: str, fragment: str) -> None:
    response = client.post("/api/v1/task", content=content, headers={"Content-Type": content_type})
    payload = assert_refused(response, 40001)
    assert fragment in payload["message"]
    assert total(client) == 0


def test_huge_body_is_refused_before_it_is_read(client: TestClient) -> None:
    body = json.dumps(with_(script_config={"captions": "x" * 2_000_000})).encode()
    response = client.post("/api/v1/task", content=body, headers={"Content-Type": "application/json"})
    payload = assert_refused(response, 40001, "body")
    assert "bytes" in payload["message"]
    assert total(client) == 0


def test_huge_body_without_content_length_is_refused(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(300):
            yield b"x" * 10_000

    response = client.post("/api/v1/task", content=chunks(), headers={"Content-Type": "application/json"})
    assert_refused(response, 40001)


@pytest.mark.parametrize(
    ("path", "code", "field"),
    [
        ("/api/v1/task/0", 40001, "task_id"),
        ("/api/v1/task/-5", 40001, "task_id"),
        ("/api/v1/task/9223372036854775808", 40001, "task_id"),
        ("/api/v1/task/99999999999999999999999999", 40001, "task_id"),
        ("/api/v1/task/abc", 40001, "task_id"),
        ("/api/v1/task/1.5", 40001, "task_id"),
        ("/api/v1/task/9223372036854775807", 40401, None),
        ("/api/v1/task?page_size=0", 40001, "page_size"),
        ("/api/v1/task?page_size=101", 40001, "page_size"),
        ("/api/v1/task?page=0", 40001, "page"),
        ("/api/v1/task?page=x", 40001, "page"),
        ("/api/v1/task?status=4", 40001, "status"),
        ("/api/v1/task?status=-1", 40001, "status"),
        ("/api/v1/task?source=desktop", 40001, "source"),
        ("/api/v1/task/1/logs?limit=0", 40001, "limit"),
        ("/api/v1/accounts?page_size=101", 40001, "page_size"),
        ("/api/v1/accounts?platform=myspace", 40001, "platform"),
        ("/api/v1/nowhere", 40401, None),
    ],
)
def test_bad_paths_and_queries(client: TestClient, path: str, code: int, field: str | None) -> None:
    assert client.post("/api/v1/task", json=GOOD).json()["data"]["task_ids"] == [1]
    assert_refused(client.get(path), code, field)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"task_ids": []},
        {"task_ids": "1,2"},
        {"task_ids": [1, "2"]},
        {"task_ids": [0]},
        {"task_ids": [-1]},
        {"task_ids": [2**63]},
        {"task_ids": [True]},
    ],
)
def test_bad_batch_delete(client: TestClient, body: dict[str, Any]) -> None:
    payload = assert_refused(client.request("DELETE", "/api/v1/task/batch", json=body), 40001)
    assert payload["message"].startswith("task_ids")


def test_wrong_method_is_an_envelope(client: TestClient) -> None:
    payload = assert_refused(client.put("/api/v1/task/stats"), 40001)
    assert "PUT" in payload["message"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
create_fields = st.fixed_dictionaries(
    {},
    optional={
        "serials": st.one_of(json_values, st.lists(st.text(max_size=12), max_size=4)),
        "usernames": st.one_of(json_values, st.lists(st.text(max_size=12), max_size=4)),
        "script_name": st.one_of(json_values, st.sampled_from(["post", "noop", "follow"])),
        "script_config": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "content_type": json_values,
                    "captions": json_values,
                    "material_list": json_values,
                    "upload_wait_time": json_values,
                    "add_sound": json_values,
                    "platform": json_values,
                },
            ),
        ),
        "enable_multi_account": json_values,
        "start_time": st.one_of(json_values, st.from_regex(r"\A[0-9]{1,2}:[0-9]{1,2}\Z")),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=create_fields)
def test_no_create_body_makes_the_server_fail(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/api/v1/task", json=body)
    payload = response.json()
    assert response.status_code < 500, payload
    assert payload["code"] in (0, 40001, 40002, 40003, 40004, 40302), payload
    if payload["code"] != 0:
        assert payload["message"] and "Traceback" not in response.text
