"""The hub's report sender: reports leave in order, several to a message when the hub is busy, and
nothing buffered is left behind when the hub stops. Real Celery producer, real Redis."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from shared.broker import get_celery
from shared.messages import AttemptRef
from shared.queues import CONTROL_QUEUE, REPORT_HEARTBEAT, REPORT_STARTED, REPORTS_BATCH
from workers.hub.reporter import Reporter

pytestmark = pytest.mark.usefixtures("db")


def control_messages(client: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    """(task name, kwargs) of every message waiting on ``control``, oldest first."""
    found = []
    for raw in reversed(client.lrange(CONTROL_QUEUE, 0, -1)):
        message = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], kwargs))
    return found


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_an_idle_hubs_report_goes_at_once_and_alone(redis_client: redis.Redis) -> None:
    reporter = Reporter(get_celery(), "hub-a")
    try:
        reporter.started(41, 1, "dev-1")
        wait_for(lambda: len(control_messages(redis_client)) == 1)
        ((name, kwargs),) = control_messages(redis_client)
        assert name == REPORTS_BATCH and kwargs["hub"] == "hub-a"
        assert [(r["kind"], r["report"]["task_id"]) for r in kwargs["reports"]] == [(REPORT_STARTED, 41)]
    finally:
        reporter.close()


def test_a_busy_hub_sends_its_reports_in_order_in_fewer_messages(redis_client: redis.Redis) -> None:
    reporter = Reporter(get_celery(), "hub-a")
    reporter.started(1, 1, "dev-1")
    assert reporter.flush(timeout=10)
    for task_id in range(2, 302):  # right after a send: the hub counts as busy, reports share messages
        reporter.started(task_id, 1, f"dev-{task_id}")
    reporter.heartbeat([AttemptRef(task_id=7, attempt=1, serial="dev-7")], [])
    reporter.close()

    messages = control_messages(redis_client)
    reports = [r for _, kwargs in messages for r in kwargs["reports"]]
    assert [r["report"]["task_id"] for r in reports[:-1]] == list(range(1, 302)), "every report, in order"
    assert reports[-1]["kind"] == REPORT_HEARTBEAT
    assert len(messages) < 20, f"{len(messages)} messages for 302 reports"
    assert max(len(kwargs["reports"]) for _, kwargs in messages) <= 200, "a batch stays one short transaction"


def test_the_devices_report_is_sent_on_its_own_at_once(redis_client: redis.Redis) -> None:
    reporter = Reporter(get_celery(), "hub-a")
    try:
        assert reporter.devices([])
        ((name, kwargs),) = control_messages(redis_client)
        assert name == "phonefleet.devices" and kwargs["devices"] == []
        assert datetime.fromisoformat(kwargs["at"]) <= datetime.now(UTC)
    finally:
        reporter.close()
