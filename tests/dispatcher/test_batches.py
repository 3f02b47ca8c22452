"""Batches of hub reports (``phonefleet.reports``): applied in one transaction with the same outcome
as the same reports one by one, a bad report left out without holding back the others.

These call the handler directly against the real database and Redis; the end-to-end tests send
batches through Celery from real hub workers.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.db.models import TaskStatus
from shared.dispatcher.service import _redis_remembers, handle_batch
from shared.messages import FinishedReport, HeartbeatReport, LogLine, StartedReport
from shared.queues import MEMORY_KEY, REPORT_FINISHED, REPORT_HEARTBEAT, REPORT_STARTED, ack_key
from shared.settings import get_settings
from tests.api.helpers import create_tasks
from tests.dispatcher.test_transitions import finished, lease, row, started
from tests.factories import make_device

pytestmark = pytest.mark.usefixtures("db")


def item(kind: str, report: BaseModel) -> dict[str, Any]:
    return {"kind": kind, "report": report.model_dump(mode="json")}


def test_a_batch_ends_attempts_and_hands_the_phones_their_next_tasks(client: TestClient, redis_client: Any) -> None:
    make_device(serial="dev-1")
    make_device(serial="dev-2")
    first, second = create_tasks(client, ["dev-1"]) + create_tasks(client, ["dev-1"])
    (third,) = create_tasks(client, ["dev-2"])
    assert lease("dev-1") == (first, 1) and lease("dev-2") == (third, 1)

    handle_batch(
        hub="hub-a",
        reports=[
            item(REPORT_STARTED, started(first)),
            item(REPORT_STARTED, started(third, serial="dev-2")),
            item(REPORT_FINISHED, finished(first, remark="posted")),
            item(REPORT_FINISHED, finished(third, serial="dev-2", outcome="failed", remark="login wall")),
        ],
    )

    assert (row(first).status, row(first).remark, row(first).hub) == (TaskStatus.COMPLETED, "posted", "hub-a")
    assert row(first).started_at is not None and row(first).end_time is not None
    assert (row(third).status, row(third).remark) == (TaskStatus.FAILED, "login wall")
    assert lease("dev-1") == (second, 1), "the freed phone got its next task in the same batch"
    assert lease("dev-2") == (None, None)
    assert redis_client.get(ack_key(first, 1)) is not None and redis_client.get(ack_key(third, 1)) is not None


def test_stale_and_repeated_reports_in_a_batch_change_nothing(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    handle_batch(hub="hub-a", reports=[item(REPORT_STARTED, started(task_id, attempt=9))])
    assert row(task_id).status == TaskStatus.PENDING, "a start of an attempt that is not current is fenced off"

    done = finished(task_id, remark="first end")
    handle_batch(hub="hub-a", reports=[item(REPORT_STARTED, started(task_id)), item(REPORT_FINISHED, done)])
    ended_at = row(task_id).end_time
    handle_batch(
        hub="hub-a",
        reports=[item(REPORT_FINISHED, done), item(REPORT_FINISHED, finished(task_id, remark="second end"))],
    )
    assert (row(task_id).status, row(task_id).remark, row(task_id).end_time) == (
        TaskStatus.COMPLETED,
        "first end",
        ended_at,
    )


def test_a_bad_report_is_left_out_and_the_rest_applied(client: TestClient) -> None:
    make_device(serial="dev-1")
    make_device(serial="dev-2")
    (first,) = create_tasks(client, ["dev-1"])
    (second,) = create_tasks(client, ["dev-2"])
    broken = finished(second, serial="dev-2", outcome="failed", remark="crashed", screenshot_png_b64="abc")
    heartbeat = HeartbeatReport(hub="hub-a", running=[started(first)], at=datetime.now(UTC))
    with_lines = finished(first, lines=[LogLine(at=datetime.now(UTC), message="caption set ✓")])

    handle_batch(
        hub="hub-a",
        reports=[
            {"kind": "phonefleet.unknown", "report": {}},
            {"kind": REPORT_STARTED, "report": {"task_id": "not a number"}},
            item(REPORT_HEARTBEAT, heartbeat),
            item(REPORT_FINISHED, broken),  # its screenshot is not base64: applying it raises
            item(REPORT_FINISHED, with_lines),
        ],
    )

    assert row(first).status == TaskStatus.COMPLETED
    assert lease("dev-1") == (None, None)
    assert row(second).status == TaskStatus.PENDING, "the report that could not be applied changed nothing"
    assert lease("dev-2") == (second, 1)
    logs = client.get(f"/api/v1/task/{first}/logs").json()["data"]
    assert "caption set ✓" in str(logs)


def test_the_started_report_of_a_deleted_task_tells_the_hub_to_stop(client: TestClient, redis_client: Any) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    assert client.delete(f"/api/v1/task/{task_id}").json()["code"] == 0
    handle_batch(hub="hub-a", reports=[item(REPORT_STARTED, StartedReport(**started(task_id).model_dump()))])
    assert redis_client.get(f"phonefleet:cancel:{task_id}") is not None


def test_finished_reports_that_match_the_bulk_path_still_fire_webhooks(client: TestClient) -> None:
    make_device(serial="dev-1")
    created = client.post(
        "/api/v1/task",
        json={
            "serials": ["dev-1"],
            "script_name": "noop",
            "script_config": {},
            "webhook_url": "http://127.0.0.1:9/hook",
        },
    ).json()
    (task_id,) = created["data"]["task_ids"]
    report: FinishedReport = finished(task_id)
    handle_batch(hub="hub-a", reports=[item(REPORT_STARTED, started(task_id)), item(REPORT_FINISHED, report)])
    deliveries = client.get(f"/api/v1/task/{task_id}/webhooks").json()
    assert deliveries["code"] == 0
    assert [d["event"] for d in deliveries["data"]["deliveries"]] == ["task.completed"]


def test_silence_is_judged_only_once_redis_has_kept_its_data_a_heartbeat_timeout(redis_client: Any) -> None:
    settings = get_settings()
    assert not _redis_remembers(settings), "a Redis seen for the first time has just been emptied, as far as we know"
    redis_client.set(MEMORY_KEY, repr(time.time() - settings.heartbeat_timeout_seconds - 1))
    assert _redis_remembers(settings)
    redis_client.flushdb()  # emptied: the hubs' evidence is gone until their next heartbeats
    assert not _redis_remembers(settings)
