"""Tasks in the dashboard: created from the form, watched live, stopped, retried, deleted."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from shared.scripts import PostConfig
from tests.dashboard.conftest import BROWSER_TEST, Session
from tests.e2e.farm import Farm

pytestmark = BROWSER_TEST

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(4096)


def row(page: Page, task_id: int) -> Locator:
    return page.locator(f'#tasks-table tr[data-task-id="{task_id}"]')


def status_of(page: Page, task_id: int) -> Locator:
    return row(page, task_id).locator("td.status .badge")


def created_id(page: Page) -> int:
    message = page.locator("#messages .message", has_text="Created 1 task")
    expect(message).to_be_visible()
    found = re.search(r"#(\d+)", message.inner_text())
    assert found, message.inner_text()
    return int(found.group(1))


def test_a_post_from_the_form_goes_pending_running_completed_live(
    dashboard: Session, farm: Farm, serials: list[str]
) -> None:
    page = dashboard.page
    serial = serials[0]
    video = farm.media_root / "dashboard-clip.mp4"
    video.write_bytes(VIDEO)
    # The phone is busy for a moment, so that the new task is seen waiting before it runs.
    (blocker,) = farm.create(serials=[serial], script_name="noop", script_config={"duration": 1.5})
    farm.wait_tasks([blocker], statuses=(1,), timeout=20)
    page.evaluate("window.__sameDocument = true")

    page.locator("#new-task").click()
    form = page.locator("#new-task-form")
    form.locator(f'[data-list="serials"] input[value="{serial}"]').check()
    form.locator('select[name="script_name"]').select_option("post")
    form.locator('textarea[name="captions"]').fill("Depuis le tableau de bord {ok|super} #fyp")
    form.locator('textarea[name="material_list"]').fill(str(video))
    form.locator('input[name="upload_wait_time"]').fill("2")
    form.locator('select[name="placement"]').select_option("reel")
    form.locator("#create-tasks").click()
    task_id = created_id(page)

    expect(status_of(page, task_id)).to_have_text("pending")
    expect(status_of(page, task_id)).to_have_text("running")
    expect(status_of(page, task_id)).to_have_text("completed", timeout=40_000)
    expect(row(page, task_id).locator("td.remark")).to_contain_text("posted video to tiktok")
    assert page.evaluate("window.__sameDocument") is True, "the table updated without a reload"

    task = farm.task(task_id)
    assert task["source"] == "ui" and task["serial"] == serial
    assert set(PostConfig.model_fields) - {"platform"} <= set(task["script_config"]), "every field of the form"
    assert task["script_config"]["upload_wait_time"] == 2
    assert task["script_config"]["material_list"] == [str(video)]
    (post,) = [p for p in farm.phone(serial).posts() if p.caption.startswith("Depuis le tableau de bord")]
    assert post.kind == "video"
    dashboard.shot("tasks")

    row(page, task_id).locator("td a", has_text=f"#{task_id}").click()
    expect(page.locator(".task-head h1")).to_have_text(f"Task #{task_id}")
    expect(page.locator("#task-logs")).to_contain_text("posting")
    expect(page.locator("#task-remark")).to_contain_text("posted video")
    expect(page.locator("#task-config")).to_contain_text('"upload_wait_time": 2')
    dashboard.shot("task-completed")


def test_stop_a_running_task(dashboard: Session, farm: Farm, serials: list[str]) -> None:
    page = dashboard.page
    (task_id,) = farm.create(serials=[serials[1]], script_name="noop", script_config={"duration": 120})
    expect(status_of(page, task_id)).to_have_text("running")
    row(page, task_id).locator('button[data-action="stop"]').click()
    expect(page.locator("#messages")).to_contain_text(f"Task {task_id}: stop requested")
    expect(status_of(page, task_id)).to_have_text("failed")
    expect(row(page, task_id).locator("td.remark")).to_have_text("stopped by user")
    assert farm.task(task_id)["failure_kind"] == "stopped"
    # A later "retry all" would run it for two minutes.
    assert farm.call("DELETE", f"/task/{task_id}")["code"] == 0


def test_retry_a_failed_task_then_retry_all(dashboard: Session, farm: Farm, serials: list[str]) -> None:
    page = dashboard.page
    (task_id,) = farm.create(serials=[serials[2]], script_name="noop", script_config={"fail_with": "boom"})
    expect(status_of(page, task_id)).to_have_text("failed")
    expect(row(page, task_id).locator("td.remark")).to_contain_text("boom")

    row(page, task_id).locator('button[data-action="retry"]').click()
    expect(page.locator("#messages")).to_contain_text(f"Task {task_id} is pending again (retry 1)")
    farm.wait(lambda: farm.task(task_id)["retry_count"] == 1 and farm.task(task_id)["status"] == 3, 20, "retry ran")
    expect(status_of(page, task_id)).to_have_text("failed")

    page.locator("#retry-all").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#messages")).to_contain_text("retried")
    farm.wait(lambda: farm.task(task_id)["retry_count"] == 2, 20, "retry-all reached the task")

    # Only failed tasks, through the filter bar; the failure screenshot is on the task's page.
    page.locator('#task-filters select[name="status"]').select_option("3")
    expect(page).to_have_url(re.compile(r"status=3"))
    expect(status_of(page, task_id)).to_have_text("failed")
    expect(page.locator('#tasks-table tbody tr[data-status]:not([data-status="3"])')).to_have_count(0)
    row(page, task_id).locator("td a", has_text=f"#{task_id}").click()
    expect(page.locator("#task-screenshot img")).to_be_visible()
    dashboard.shot("task-failed")


def test_delete_asks_first(dashboard: Session, farm: Farm, serials: list[str]) -> None:
    page = dashboard.page
    (task_id,) = farm.create(serials=[serials[3]], script_name="noop", script_config={})
    expect(status_of(page, task_id)).to_have_text("completed")
    row(page, task_id).locator('button[data-action="delete"]').click()
    expect(page.locator("#confirm-text")).to_contain_text(f"Delete task {task_id}?")
    page.locator("#confirm-dialog button[value=cancel]").click()
    expect(row(page, task_id)).to_be_visible()

    row(page, task_id).locator('button[data-action="delete"]').click()
    page.locator("#confirm-ok").click()
    expect(row(page, task_id)).to_have_count(0)
    assert farm.call("GET", f"/task/{task_id}")["code"] == 40401


def test_the_api_error_message_is_shown(dashboard: Session, farm: Farm, serials: list[str]) -> None:
    page = dashboard.page
    before = farm.call("GET", "/task/stats")["data"]["total"]
    page.locator("#new-task").click()
    form = page.locator("#new-task-form")
    expect(form.locator('[data-list="serials"]')).to_be_visible()
    form.locator("#create-tasks").click()
    error = page.locator("#messages .message.error")
    expect(error.last).to_contain_text("40001")
    expect(error.last).to_contain_text("serials: must not be empty")

    form.locator(f'[data-list="serials"] input[value="{serials[0]}"]').check()
    form.locator('input[name="upload_wait_time"]').fill("-5")
    form.locator("#create-tasks").click()
    expect(error.last).to_contain_text("script_config.upload_wait_time: must be at least 0")
    expect(page).to_have_url(re.compile(r"#/tasks/new$"))
    assert farm.call("GET", "/task/stats")["data"]["total"] == before
