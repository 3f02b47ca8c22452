"""The seed's task endpoints, at TikMatrix's paths. Static paths (``stats``, ``batch``,
``retry-all``) are declared before ``{task_id}`` so that they are never read as ids."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from api.auth import ApiPrincipal, require_api
from api.deps import UnitOfWork, UoW, in_uow
from api.envelope import Envelope, error_responses, ok
from api.reads import pooled_connection
from api.settings import SettingsDep
from api.tasks import repository, service
from api.tasks.repository import TaskFilters
from api.tasks.schemas import (
    DeletedCount,
    RetriedCount,
    TaskCreate,
    TaskCreated,
    TaskIds,
    TaskList,
    TaskLogLine,
    TaskLogs,
    TaskPublic,
    TaskStats,
    TaskWebhooks,
    WebhookDeliveryPublic,
)
from shared.db.models import Task, TaskScreenshot, WebhookDelivery
from shared.errors import Code, NotFound

router = APIRouter(tags=["tasks"], dependencies=[Depends(require_api)])

TaskId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the task's id", examples=[101])]


def load_task(task_id: TaskId, uow: UoW) -> Task:
    """The task named in the path, or 40401."""
    return service.get_or_404(uow.session, task_id)


CurrentTask = Annotated[Task, Depends(load_task)]


@router.post(
    "/task",
    summary="Create tasks",
    response_model=Envelope[TaskCreated],
    responses=error_responses(
        Code.INVALID_PARAMS,
        Code.SCRIPT_NAME_MISSING,
        Code.SCRIPT_NOT_SUPPORTED,
        Code.ACCOUNT_NOT_FOUND,
        Code.DEVICE_LIMIT,
    ),
)
async def create_task(
    body: Annotated[TaskCreate, Body()], principal: ApiPrincipal, settings: SettingsDep
) -> Envelope[TaskCreated]:
    """One task per device (``serials``), per account (``usernames``), or per account on each device
    (``serials`` with ``enable_multi_account``). All or nothing: a request with any bad target creates
    no task. A serial no hub has reported yet is accepted; its tasks wait until the device shows up."""

    def work(uow: UnitOfWork) -> list[int]:
        return service.create_tasks(uow, principal, body, settings)

    ids = await service.create_waiting_tasks(principal, body, settings)
    if ids is None:
        ids = await in_uow(work)
    return ok(TaskCreated(task_ids=ids, created_count=len(ids)))


@router.get(
    "/task",
    summary="List tasks",
    response_model=Envelope[TaskList],
    responses=error_responses(Code.INVALID_PARAMS),
)
async def list_tasks(
    settings: SettingsDep,
    status: Annotated[int | None, Query(ge=0, le=3, description="0 pending, 1 running, 2 completed, 3 failed")] = None,
    serial: Annotated[str | None, Query(max_length=128)] = None,
    script_name: Annotated[str | None, Query(max_length=100)] = None,
    source: Annotated[Literal["api", "ui"] | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Envelope[TaskList]:
    """Newest first."""
    filters = TaskFilters(status=status, serial=serial, script_name=script_name, source=source)

    async with pooled_connection() as conn:
        rows, total = await repository.list_page(conn, filters, offset=(page - 1) * page_size, limit=page_size)
    zone = settings.zone
    tasks = [service.public_from_row(row, zone) for row in rows]
    return ok(TaskList(tasks=tasks, total=total, page=page, page_size=page_size))


@router.get(
    "/task/stats",
    summary="Task counts by status",
    response_model=Envelope[TaskStats],
    responses=error_responses(),
)
async def task_stats() -> Envelope[TaskStats]:
    async with pooled_connection() as conn:
        counts = await repository.counts_by_status_async(conn)
    return ok(service.stats_from_counts(counts))


@router.delete(
    "/task/batch",
    summary="Delete several tasks",
    response_model=Envelope[DeletedCount],
    responses=error_responses(Code.INVALID_PARAMS),
)
def delete_batch(
    body: Annotated[TaskIds, Body(examples=[{"task_ids": [1, 2, 3]}])], uow: UoW
) -> Envelope[DeletedCount]:
    """Running tasks are stopped first. Ids that do not exist are ignored (``deleted_count`` says how
    many were deleted)."""
    return ok(DeletedCount(deleted_count=service.delete_tasks(uow, body.task_ids)))


@router.post(
    "/task/retry-all",
    summary="Retry every failed task",
    response_model=Envelope[RetriedCount],
    responses=error_responses(),
)
def retry_all(uow: UoW, settings: SettingsDep) -> Envelope[RetriedCount]:
    """Failed tasks that have not reached the maximum retry count go back to pending."""
    return ok(RetriedCount(retried_count=service.retry_all(uow, settings)))


@router.get(
    "/task/{task_id}",
    summary="One task",
    response_model=Envelope[TaskPublic],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def get_task(task: CurrentTask, settings: SettingsDep) -> Envelope[TaskPublic]:
    return ok(service.to_public(task, settings))


@router.delete(
    "/task/{task_id}",
    summary="Delete a task",
    response_model=Envelope[DeletedCount],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def delete_task(task_id: TaskId, uow: UoW) -> Envelope[DeletedCount]:
    """A running task is stopped first, then deleted."""
    if not service.delete_tasks(uow, [task_id]):
        raise NotFound(f"task {task_id} not found")
    return ok(DeletedCount(deleted_count=1))


@router.post(
    "/task/{task_id}/stop",
    summary="Stop a task",
    response_model=Envelope[TaskPublic],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND, Code.CONFLICT),
)
def stop_task(task_id: TaskId, uow: UoW, settings: SettingsDep) -> Envelope[TaskPublic]:
    """A pending task fails at once with remark "stopped by user" and never runs. A running task is
    told to stop (``stop_requested`` true) and ends failed with that remark within about a second."""
    return ok(service.to_public(service.stop_task(uow, task_id), settings))


@router.post(
    "/task/{task_id}/retry",
    summary="Retry a failed task",
    response_model=Envelope[TaskPublic],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND, Code.CONFLICT),
)
def retry_task(task_id: TaskId, uow: UoW, settings: SettingsDep) -> Envelope[TaskPublic]:
    """Back to pending with ``retry_count`` + 1; 40901 if it has not failed or has no retries left."""
    return ok(service.to_public(service.retry_task(uow, task_id, settings), settings))


@router.get(
    "/task/{task_id}/logs",
    summary="A task's log",
    response_model=Envelope[TaskLogs],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def task_logs(
    task: CurrentTask,
    uow: UoW,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="only lines after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Envelope[TaskLogs]:
    assert task.id is not None
    lines = repository.get_logs(uow.session, task.id, after_id=after_id, limit=limit)
    return ok(
        TaskLogs(
            task_id=task.id,
            logs=[TaskLogLine.model_validate(line, from_attributes=True) for line in lines],
        )
    )


@router.get(
    "/task/{task_id}/webhooks",
    summary="A task's webhook deliveries",
    response_model=Envelope[TaskWebhooks],
    responses=error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND),
)
def task_webhooks(task: CurrentTask, uow: UoW) -> Envelope[TaskWebhooks]:
    """Every push of this task's end: where, how many attempts, the last answer."""
    assert task.id is not None
    rows = uow.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.task_id == task.id).order_by(WebhookDelivery.id)  # type: ignore[arg-type]
    )
    deliveries = [WebhookDeliveryPublic.model_validate(row, from_attributes=True) for row in rows]
    return ok(TaskWebhooks(task_id=task.id, deliveries=deliveries))


@router.get(
    "/task/{task_id}/screenshot",
    summary="The screenshot taken when the task failed",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(Code.INVALID_PARAMS, Code.NOT_FOUND)},
)
def task_screenshot(task: CurrentTask, uow: UoW) -> Response:
    shot = uow.session.get(TaskScreenshot, task.id)
    if shot is None:
        raise NotFound(f"task {task.id} has no screenshot (one is taken when an attempt fails)")
    return Response(content=shot.png, media_type="image/png", headers={"X-Attempt": str(shot.attempt)})
