"""GET /metrics on the api: the farm's figures from the record, and this process's requests."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import create_tasks
from tests.factories import make_device

pytestmark = pytest.mark.usefixtures("db")


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_show_the_farm_and_the_requests(client: TestClient) -> None:
    make_device(serial="p1", hub="hub-x")
    make_device(serial="p2", hub="hub-x", online=False)
    for serial in ("p1", "p1", "ghost"):
        create_tasks(client, [serial])
    client.get("/api/v1/task/1")
    client.get("/api/v1/no/such/thing")
    found = samples(client)
    one_task = (
        "phonefleet_http_request_seconds_count",
        (("method", "GET"), ("route", "/api/v1/task/{task_id}"), ("status", "200")),
    )
    assert found[one_task] == 1, "path parameters collapse into the route's template"
    assert (
        "phonefleet_http_request_seconds_count",
        (("method", "GET"), ("route", "unmatched"), ("status", "404")),
    ) in found
    assert found[("phonefleet_tasks", (("status", "pending"),))] == 3
    assert found[("phonefleet_devices", (("hub", "hub-x"), ("online", "true")))] == 1
    assert found[("phonefleet_devices", (("hub", "hub-x"), ("online", "false")))] == 1
    assert found[("phonefleet_devices_busy", (("hub", "hub-x"),))] == 1
    assert found[("phonefleet_queue_depth", (("hub", "hub-x"),))] == 1, "one message in p1's queue"
    assert found[("phonefleet_tasks_due", ())] == 2
    created = (
        "phonefleet_http_request_seconds_count",
        (("method", "POST"), ("route", "/api/v1/task"), ("status", "200")),
    )
    assert found[created] == 3


def test_metrics_need_no_key(anonymous: TestClient) -> None:
    assert samples(anonymous)[("phonefleet_tasks", (("status", "failed"),))] == 0
