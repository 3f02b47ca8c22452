"""Hub reports applied to the record: compare-and-set transitions, fencing, leases, recovery.

These call the dispatcher's functions directly against the real database (no worker), the way the
control-queue handlers call them; the end-to-end tests run the same path through Celery.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shared.db.engine import transaction
from shared.db.models import Device, Task, TaskStatus
from shared.dispatcher import recovery
from shared.dispatcher.dispatch import claim
from shared.dispatcher.transitions import (
    apply_devices,
    apply_finished,
    apply_refused,
    apply_started,
)
from shared.messages import DeviceInfo, DevicesReport, FinishedReport, LogLine, RefusedReport, StartedReport
from shared.settings import Settings, get_settings
from tests.api.helpers import create_tasks
from tests.factories import get_task_row, make_device

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime.now(UTC)


def started(task_id: int, attempt: int = 1, serial: str = "dev-1") -> StartedReport:
    return StartedReport(task_id=task_id, attempt=attempt, serial=serial, hub="hub-a", at=datetime.now(UTC))


def finished(task_id: int, attempt: int = 1, serial: str = "dev-1", **fields: Any) -> FinishedReport:
    values: dict[str, Any] = {"outcome": "completed", "remark": "posted", **fields}
    return FinishedReport(task_id=task_id, attempt=attempt, serial=serial, hub="hub-a", at=datetime.now(UTC), **values)


def lease(serial: str) -> tuple[int | None, int | None]:
    with transaction() as session:
        device = session.get(Device, serial)
        assert device is not None
        return device.lease_task_id, device.lease_attempt


def row(task_id: int) -> Task:
    task = get_task_row(task_id)
    assert task is not None
    return task


def test_started_then_finished(client: TestClient) -> None:
    make_device(serial="dev-1")
    first, second = create_tasks(client, ["dev-1"]) + create_tasks(client, ["dev-1"])
    with transaction() as session:
        assert apply_started(session, started(first)).cancel == []
    assert (row(first).status, row(first).hub) == (TaskStatus.RUNNING, "hub-a")
    with transaction() as session:
        effects = apply_finished(session, finished(first, lines=[LogLine(at=NOW, message="done")]), get_settings())
        assert effects.claim_serials == {"dev-1"}
        orders = claim(session, effects.claim_serials)
    assert (row(first).status, row(first).remark) == (TaskStatus.COMPLETED, "posted")
    assert [(o.task_id, o.attempt) for o in orders] == [(second, 1)]
    assert lease("dev-1") == (second, 1)


def test_reports_of_a_stale_attempt_change_nothing(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    with transaction() as session:
        effects = apply_started(session, started(task_id, attempt=7))
        assert effects.cancel == [(task_id, 7)], "the hub holding a stale attempt is told to let go"
        apply_finished(session, finished(task_id, attempt=7), get_settings())
    assert row(task_id).status == TaskStatus.PENDING
    assert lease("dev-1") == (task_id, 1), "a stale report never frees the phone of the current attempt"


def test_duplicate_finished_is_idempotent(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    with transaction() as session:
        apply_started(session, started(task_id))
    for _ in range(2):
        with transaction() as session:
            apply_finished(
                session,
                finished(task_id, outcome="failed", remark="app crashed", failure_kind="app_crash"),
                get_settings(),
            )
    task = row(task_id)
    assert (task.status, task.remark, task.failure_kind) == (TaskStatus.FAILED, "app crashed", "app_crash")
    with transaction() as session:
        counted = session.execute(text("SELECT sum(n) FROM task_count WHERE status = 3")).scalar()
    assert counted == 1


def test_failure_screenshot_is_stored(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    with transaction() as session:
        apply_started(session, started(task_id))
        apply_finished(
            session,
            finished(
                task_id,
                outcome="failed",
                remark="login wall",
                failure_kind="login_wall",
                screenshot_png_b64=base64.b64encode(png).decode(),
            ),
            get_settings(),
        )
    response = client.get(f"/api/v1/task/{task_id}/screenshot")
    assert response.headers["content-type"] == "image/png" and response.content == png


def test_stop_requested_ends_as_stopped_by_user(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    with transaction() as session:
        apply_started(session, started(task_id))
    client.post(f"/api/v1/task/{task_id}/stop")
    with transaction() as session:
        apply_finished(
            session, finished(task_id, outcome="failed", remark="stopped", failure_kind="stopped"), get_settings()
        )
    task = row(task_id)
    assert (task.status, task.remark, task.failure_kind) == (TaskStatus.FAILED, "stopped by user", "stopped")


def test_auto_retry_only_for_retryable_failures(client: TestClient, configure: Any) -> None:
    configure(auto_retry="true", retry_delay_min_seconds=5, retry_delay_max_seconds=5)
    make_device(serial="dev-1")
    make_device(serial="dev-2")
    crash, banned = create_tasks(client, ["dev-1", "dev-2"])
    settings = get_settings()
    with transaction() as session:
        for task_id, serial in ((crash, "dev-1"), (banned, "dev-2")):
            apply_started(session, started(task_id, serial=serial))
        apply_finished(
            session,
            finished(crash, serial="dev-1", outcome="failed", remark="app crashed", failure_kind="app_crash"),
            settings,
        )
        apply_finished(
            session,
            finished(banned, serial="dev-2", outcome="failed", remark="account banned", failure_kind="account_banned"),
            settings,
        )
    retried, final = row(crash), row(banned)
    assert (retried.status, retried.retry_count) == (TaskStatus.PENDING, 1)
    assert retried.remark.startswith("retry #1 in 5s after: app crashed")
    assert retried.due_at is not None and retried.due_at > datetime.now(UTC) + timedelta(seconds=3)
    assert (final.status, final.retry_count) == (TaskStatus.FAILED, 0)


def test_refused_not_attached_puts_the_task_back(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    report = RefusedReport(
        task_id=task_id, attempt=1, serial="dev-1", hub="hub-a", reason="not_attached", at=datetime.now(UTC)
    )
    with transaction() as session:
        effects = apply_refused(session, report)
        orders = claim(session, effects.claim_serials)
    assert [(o.task_id, o.attempt) for o in orders] == [(task_id, 2)], "sent again, with a new attempt number"


def test_devices_report_moves_phones_between_hubs() -> None:
    def report(hub: str, *serials: str) -> None:
        devices = [DeviceInfo(serial=s, state="device", model="Pixel") for s in serials]
        with transaction() as session:
            apply_devices(session, DevicesReport(hub=hub, devices=devices, at=datetime.now(UTC)))

    def where() -> dict[str, tuple[str | None, bool]]:
        with transaction() as session:
            return {d.serial: (d.hub, d.online) for d in session.query(Device).all()}

    report("hub-a", "p1", "p2")
    assert where() == {"p1": ("hub-a", True), "p2": ("hub-a", True)}
    report("hub-b", "p2")
    report("hub-a", "p1")
    assert where() == {"p1": ("hub-a", True), "p2": ("hub-b", True)}
    report("hub-a")
    assert where() == {"p1": ("hub-a", False), "p2": ("hub-b", True)}


def _age_lease(serial: str, seconds: float) -> None:
    with transaction() as session:
        session.execute(
            text(
                "UPDATE device SET lease_since = lease_since - make_interval(secs => :s), "
                "lease_heartbeat_at = lease_heartbeat_at - make_interval(secs => :s) WHERE serial = :serial"
            ),
            {"s": seconds, "serial": serial},
        )


def test_silent_running_attempt_fails_and_frees_the_phone(client: TestClient) -> None:
    make_device(serial="dev-1")
    first, second = create_tasks(client, ["dev-1"]) + create_tasks(client, ["dev-1"])
    with transaction() as session:
        apply_started(session, started(first))
    settings: Settings = get_settings()
    _age_lease("dev-1", settings.heartbeat_timeout_seconds + 1)
    with transaction() as session:
        effects = recovery.expire_silent_attempts(session, settings)
        orders = claim(session, effects.claim_serials)
    task = row(first)
    assert (task.status, task.failure_kind) == (TaskStatus.FAILED, "hub_lost")
    assert task.remark.startswith("hub lost: no heartbeat for")
    assert effects.cancel == [(first, 1)]
    assert [o.task_id for o in orders] == [second]


def test_attempt_never_started_is_sent_again(client: TestClient) -> None:
    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    settings = get_settings()
    _age_lease("dev-1", settings.heartbeat_timeout_seconds + 1)
    with transaction() as session:
        assert recovery.expire_silent_attempts(session, settings).cancel == [], "not yet: dispatch timeout"
    _age_lease("dev-1", settings.dispatch_timeout_seconds)
    with transaction() as session:
        effects = recovery.expire_silent_attempts(session, settings)
        orders = claim(session, effects.claim_serials)
    assert effects.cancel == [(task_id, 1)]
    assert [(o.task_id, o.attempt) for o in orders] == [(task_id, 2)]


def test_concurrent_claims_never_lease_a_phone_twice(client: TestClient) -> None:
    import threading

    serials = [f"p{i}" for i in range(30)]
    for serial in serials:
        make_device(serial=serial)
    with transaction() as session:
        session.execute(text("UPDATE device SET online = false"))
    create_tasks(client, serials)
    create_tasks(client, serials)
    with transaction() as session:
        session.execute(text("UPDATE device SET online = true"))
    results: list[list[int]] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        with transaction() as session:
            results.append([o.task_id for o in claim(session, None)])

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [task_id for batch in results for task_id in batch]
    assert len(claimed) == len(set(claimed)) == 30
    with transaction() as session:
        leased = session.execute(text("SELECT count(*) FROM device WHERE lease_task_id IS NOT NULL")).scalar()
        dispatched = session.execute(text("SELECT count(*) FROM task WHERE dispatched_at IS NOT NULL")).scalar()
    assert leased == dispatched == 30


def test_heartbeat_before_started_is_not_a_stale_start(client: TestClient) -> None:
    from shared.dispatcher.transitions import apply_heartbeat
    from shared.messages import AttemptRef, HeartbeatReport

    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    beat = HeartbeatReport(
        hub="hub-a", running=[AttemptRef(task_id=task_id, attempt=1, serial="dev-1")], at=datetime.now(UTC)
    )
    with transaction() as session:
        assert apply_heartbeat(session, beat).cancel == []
    assert row(task_id).status == TaskStatus.RUNNING, "the heartbeat stands in for a lost start"
    with transaction() as session:
        assert apply_started(session, started(task_id)).cancel == [], "the late start is not stale"
    assert row(task_id).status == TaskStatus.RUNNING


def test_heartbeat_of_a_deleted_task_tells_the_hub_to_stop(client: TestClient) -> None:
    from shared.dispatcher.transitions import apply_heartbeat
    from shared.messages import AttemptRef, HeartbeatReport

    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    client.delete(f"/api/v1/task/{task_id}")
    beat = HeartbeatReport(
        hub="hub-a", running=[AttemptRef(task_id=task_id, attempt=1, serial="dev-1")], at=datetime.now(UTC)
    )
    with transaction() as session:
        assert apply_heartbeat(session, beat).cancel == [(task_id, 1)]


def _silence(serial: str, settings: Settings) -> None:
    _age_lease(serial, max(settings.heartbeat_timeout_seconds, settings.dispatch_timeout_seconds) + 1)


def test_an_end_written_by_the_hub_is_applied_not_re_run(client: TestClient, redis_client: Any) -> None:
    import json

    from shared.queues import ended_key

    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    end = finished(task_id, remark="posted while its reports were stuck").model_dump(mode="json")
    redis_client.set(ended_key(task_id, 1), json.dumps(end))
    settings = get_settings()
    _silence("dev-1", settings)
    with transaction() as session:
        effects = recovery.expire_silent_attempts(session, settings)
    task = row(task_id)
    assert (task.status, task.remark, task.attempt) == (TaskStatus.COMPLETED, "posted while its reports were stuck", 1)
    assert effects.recovered == ["end_read_from_hub"] and effects.cancel == []
    assert lease("dev-1") == (None, None)


def test_an_attempt_its_hub_keeps_alive_is_left_alone(client: TestClient, redis_client: Any) -> None:
    from shared.queues import alive_key

    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    redis_client.set(alive_key(task_id, 1), "hub-a", ex=30)
    settings = get_settings()
    _silence("dev-1", settings)
    with transaction() as session:
        effects = recovery.expire_silent_attempts(session, settings)
    assert effects.recovered == [] and lease("dev-1") == (task_id, 1)
    assert row(task_id).dispatched_at is not None


def test_a_claimed_attempt_whose_hub_died_is_lost_not_re_sent(client: TestClient, redis_client: Any) -> None:
    from shared.queues import CLAIM_KEY_PREFIX

    make_device(serial="dev-1")
    (task_id,) = create_tasks(client, ["dev-1"])
    redis_client.set(f"{CLAIM_KEY_PREFIX}{task_id}:1", "hub-a")
    settings = get_settings()
    _silence("dev-1", settings)
    with transaction() as session:
        effects = recovery.expire_silent_attempts(session, settings)
    assert effects.recovered == ["hub_lost"]
    assert (row(task_id).status, row(task_id).failure_kind) == (TaskStatus.FAILED, "hub_lost")
