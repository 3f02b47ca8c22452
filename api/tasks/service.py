"""What the task endpoints do: validation beyond types, fan-out, state changes, dispatch hooks.

Services only flush; the unit of work commits. Messages to hubs (dispatch orders, stop signals) are
registered as after-commit actions, so a rolled-back request sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import UnitOfWork
from api.errors import describe_error, field_name
from api.reads import pooled_connection
from api.tasks import repository
from api.tasks.schemas import TaskCreate, TaskPublic, TaskStats
from shared.broker import get_redis
from shared.db.engine import transaction
from shared.db.models import Account, ApiKey, Task, TaskStatus
from shared.dispatcher import dispatch
from shared.dispatcher.cancel import request_cancel
from shared.dispatcher.webhooks import enqueue_task_end
from shared.errors import (
    AccountNotFound,
    Conflict,
    DeviceLimitExceeded,
    InvalidParams,
    NotFound,
    ScriptNotSupported,
)
from shared.failures import FailureKind
from shared.schedule import next_occurrence, parse_start_time
from shared.scripts import SCRIPTS, ScriptConfig, api_script_names
from shared.settings import Settings

log = structlog.get_logger(__name__)

STOPPED_REMARK = "stopped by user"


def to_public(task: Task, settings: Settings) -> TaskPublic:
    zone = settings.zone

    def local(value: datetime | None) -> datetime | None:
        return value.astimezone(zone) if value is not None else None

    assert task.id is not None and task.created_at is not None
    return TaskPublic(
        id=task.id,
        serial=task.serial,
        username=task.username,
        platform=task.platform,
        script_name=task.script_name,
        script_config=task.script_config,
        status=task.status,
        source=task.source,
        start_time=task.start_time,
        scheduled_at=local(task.scheduled_at),
        created_at=local(task.created_at) or task.created_at,
        started_at=local(task.started_at),
        end_time=local(task.end_time),
        retry_count=task.retry_count,
        remark=task.remark,
        hub=task.hub,
        attempt=task.attempt,
        failure_kind=task.failure_kind,
        stop_requested=task.stop_requested_at is not None and task.status == TaskStatus.RUNNING,
        webhook_url=task.webhook_url,
    )


def public_from_row(row: Mapping[str, Any], zone: ZoneInfo) -> TaskPublic:
    """:func:`to_public` for a row of ``repository.PUBLIC_COLUMNS`` (the list's raw query), ``zone`` the
    server's time zone. The row's values already have the model's types (PostgreSQL's columns are
    those types), so the model is built without validating them again."""

    def local(value: datetime | None) -> datetime | None:
        return value.astimezone(zone) if value is not None else None

    return TaskPublic.model_construct(
        id=row["id"],
        serial=row["serial"],
        username=row["username"],
        platform=row["platform"],
        script_name=row["script_name"],
        script_config=row["script_config"],
        status=row["status"],
        source=row["source"],
        start_time=row["start_time"],
        scheduled_at=local(row["scheduled_at"]),
        created_at=row["created_at"].astimezone(zone),
        started_at=local(row["started_at"]),
        end_time=local(row["end_time"]),
        retry_count=row["retry_count"],
        remark=row["remark"],
        hub=row["hub"],
        attempt=row["attempt"],
        failure_kind=row["failure_kind"],
        stop_requested=row["stop_requested_at"] is not None and row["status"] == TaskStatus.RUNNING,
        webhook_url=row["webhook_url"],
    )


# --- creation ---------------------------------------------------------------------------------


def _validate_config(body: TaskCreate) -> ScriptConfig:
    spec = SCRIPTS.get(body.script_name)
    if spec is None or not spec.api_enabled:
        raise ScriptNotSupported(
            f"script_name: {body.script_name!r} is not supported through the API; "
            f"supported: {', '.join(api_script_names())}"
        )
    try:
        return spec.config.model_validate(body.script_config)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = field_name(first.get("loc", ()))
        raise InvalidParams(f"script_config.{name}" if name else "script_config", describe_error(dict(first))) from exc


def _dedupe(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _targets_by_usernames(session: Session, usernames: list[str], platform: str | None) -> list[dict[str, Any]]:
    names = _dedupe([u.removeprefix("@") for u in usernames])
    stmt = select(Account).where(Account.username.in_(names))  # type: ignore[attr-defined]
    if platform is not None:
        stmt = stmt.where(Account.platform == platform)  # type: ignore[arg-type]
    by_name: dict[str, list[Account]] = {}
    for account in session.scalars(stmt):
        by_name.setdefault(account.username, []).append(account)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        where = f" on {platform}" if platform else ""
        raise AccountNotFound(
            f"usernames: no account named {', '.join(repr(n) for n in unknown)}{where}; nothing was created "
            "(add accounts with POST /api/v1/accounts)",
            data={"usernames": unknown},
        )
    targets: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        accounts = by_name[name]
        field = f"usernames[{index}]"
        if len(accounts) > 1:
            platforms = " and ".join(sorted(a.platform for a in accounts))
            raise InvalidParams(field, f"{name!r} exists on {platforms}; set script_config.platform to choose")
        account = accounts[0]
        if account.status != 0:
            raise InvalidParams(field, f"account {name!r} is disabled")
        if not account.device:
            raise InvalidParams(field, f"account {name!r} is on no device; set its device first")
        targets.append(
            {
                "serial": account.device,
                "username": account.username,
                "account_id": account.id,
                "platform": account.platform,
                "packagename": account.packagename,
            }
        )
    return targets


def _targets_multi_account(session: Session, serials: list[str], platform: str | None) -> list[dict[str, Any]]:
    stmt = select(Account).where(Account.device.in_(serials), Account.status == 0)  # type: ignore[union-attr,arg-type]
    if platform is not None:
        stmt = stmt.where(Account.platform == platform)  # type: ignore[arg-type]
    by_serial: dict[str, list[Account]] = {}
    for account in session.scalars(stmt.order_by(Account.id)):  # type: ignore[arg-type]
        assert account.device is not None
        by_serial.setdefault(account.device, []).append(account)
    targets: list[dict[str, Any]] = []
    for index, serial in enumerate(serials):
        accounts = by_serial.get(serial)
        if not accounts:
            raise InvalidParams(
                f"serials[{index}]",
                f"no enabled account on device {serial!r}; multi-account mode needs at least one",
            )
        targets.extend(
            {
                "serial": serial,
                "username": a.username,
                "account_id": a.id,
                "platform": a.platform,
                "packagename": a.packagename,
            }
            for a in accounts
        )
    return targets


def _check_request(body: TaskCreate, settings: Settings) -> tuple[ScriptConfig, datetime | None]:
    """The checks every create request passes first; its script config and when it is due."""
    if body.serials is not None and body.usernames is not None:
        raise InvalidParams("serials", "give serials or usernames, not both")
    if body.serials is None and body.usernames is None:
        raise InvalidParams("serials", "required (or give usernames)")
    if body.serials is not None and not body.serials:
        raise InvalidParams("serials", "must not be empty")
    if body.usernames is not None and not body.usernames:
        raise InvalidParams("usernames", "must not be empty")
    config = _validate_config(body)
    scheduled_at = None
    if body.start_time is not None:
        scheduled_at = next_occurrence(parse_start_time(body.start_time), settings.zone, datetime.now(UTC))
    return config, scheduled_at


def _serial_targets(serials: list[str], platform: str | None) -> list[dict[str, Any]]:
    default_platform = platform or "tiktok"
    return [
        {"serial": s, "username": None, "account_id": None, "platform": default_platform, "packagename": None}
        for s in _dedupe(serials)
    ]


def _check_size(body: TaskCreate, targets: list[dict[str, Any]], settings: Settings) -> None:
    if len(targets) > settings.max_tasks_per_request:
        raise InvalidParams(
            "serials" if body.serials is not None else "usernames",
            f"would create {len(targets)} tasks; at most {settings.max_tasks_per_request} per request",
        )


def _common_columns(body: TaskCreate, principal: Principal, scheduled_at: datetime | None) -> dict[str, Any]:
    return {
        "webhook_url": body.webhook_url,
        "script_name": body.script_name,
        "script_config": body.script_config,
        "source": body.source,
        "start_time": body.start_time,
        "scheduled_at": scheduled_at,
        "due_at": scheduled_at,  # None: due now (the column's default)
        "api_key_id": principal.key_id,
    }


def _log_created(count: int, body: TaskCreate, principal: Principal, scheduled_at: datetime | None) -> None:
    log.info(
        "tasks_created",
        count=count,
        script=body.script_name,
        caller=principal.name,
        scheduled=scheduled_at is not None,
    )


def create_tasks(uow: UnitOfWork, principal: Principal, body: TaskCreate, settings: Settings) -> list[int]:
    """Create the request's tasks, all or none, and claim idle devices for them."""
    session = uow.session
    config, scheduled_at = _check_request(body, settings)
    platform = config.platform
    if body.usernames is not None:
        targets = _targets_by_usernames(session, body.usernames, platform)
    elif body.enable_multi_account:
        assert body.serials is not None
        targets = _targets_multi_account(session, _dedupe(body.serials), platform)
    else:
        assert body.serials is not None
        targets = _serial_targets(body.serials, platform)

    _check_size(body, targets, settings)
    _check_device_limit(session, principal, sorted({t["serial"] for t in targets}), settings)

    if body.webhook_url is not None:
        _require_signing_secret(session, principal, settings)
    ids = repository.insert_tasks(session, targets, _common_columns(body, principal, scheduled_at))
    _log_created(len(ids), body, principal, scheduled_at)
    if scheduled_at is None:
        _claim_after(uow, {t["serial"] for t in targets}, settings)
    return ids


async def create_waiting_tasks(principal: Principal, body: TaskCreate, settings: Settings) -> list[int] | None:
    """The common case of :func:`create_tasks` in one statement on the event loop: tasks by serial that
    no idle phone can take now. None (and nothing written) when the request needs :func:`create_tasks`:
    other modes, a webhook, or an idle online phone among the serials (which this request's transaction
    must claim, :func:`_claim_after`). The device-limit check and the insert are one statement, so a
    request over the limit writes nothing, as in :func:`create_tasks`."""
    if body.serials is None or body.usernames is not None or body.enable_multi_account or body.webhook_url is not None:
        return None
    config, scheduled_at = _check_request(body, settings)
    targets = _serial_targets(body.serials, config.platform)
    _check_size(body, targets, settings)
    serials = sorted({t["serial"] for t in targets})
    limit = settings.device_limit(principal.plan)
    if len(serials) > limit:
        _device_limit_exceeded(principal, limit, len(serials))
    async with pooled_connection() as conn:
        outcome = await repository.insert_waiting_tasks(
            conn,
            targets,
            _common_columns(body, principal, scheduled_at),
            key_id=principal.key_id,
            device_limit=limit,
            # A scheduled task is not due now: no phone can take it, whatever their state.
            unless_idle_phone=scheduled_at is None,
        )
    if outcome.idle_phone:
        return None
    if outcome.ids is None:
        _device_limit_exceeded(principal, limit, len(serials) + outcome.active_devices)
    assert outcome.ids is not None
    _log_created(len(outcome.ids), body, principal, scheduled_at)
    return outcome.ids


def _require_signing_secret(session: Session, principal: Principal, settings: Settings) -> None:
    secret = settings.webhook_secret
    if principal.key_id is not None:
        key = session.get(ApiKey, principal.key_id)
        secret = (key.webhook_secret if key is not None else None) or secret
    if not secret:
        raise InvalidParams(
            "webhook_url",
            "no secret to sign deliveries with: use a key made by `phonefleet keys create` "
            "(it has one) or set PHONEFLEET_WEBHOOK_SECRET",
        )


def _check_device_limit(session: Session, principal: Principal, serials: list[str], settings: Settings) -> None:
    limit = settings.device_limit(principal.plan)
    in_use = (
        len(serials)
        if len(serials) > limit
        else len(serials) + repository.active_device_count(session, principal.key_id, serials)
    )
    if in_use > limit:
        _device_limit_exceeded(principal, limit, in_use)


def _device_limit_exceeded(principal: Principal, limit: int, in_use: int) -> NoReturn:
    raise DeviceLimitExceeded(
        f"the {principal.plan.value} plan allows tasks on {limit} devices at once; "
        f"this request would use {in_use}. Wait for tasks to finish or upgrade the plan",
        data={"device_limit": limit, "devices": in_use},
    )


def _claim_after(uow: UnitOfWork, serials: set[str], settings: Settings) -> None:
    """Claim idle devices among ``serials`` in this transaction; send their orders after commit."""
    orders = dispatch.claim(uow.session, serials, random_order=settings.random_order)
    if orders:
        uow.after_commit(lambda: _send_or_release(orders))


def _claim_after_commit(uow: UnitOfWork, serials: set[str], settings: Settings) -> None:
    """Claim idle devices among ``serials`` in a transaction of its own, after this one commits.

    For requests that changed existing task rows (retry): the dispatch step locks a phone before its
    tasks, and a transaction already holding a task row must not wait for a phone."""

    def claim_and_send() -> None:
        with transaction() as session:
            orders = dispatch.claim(session, serials, random_order=settings.random_order)
        _send_or_release(orders)

    uow.after_commit(claim_and_send)


def _send_or_release(orders: list[dispatch.DispatchOrder]) -> None:
    failed = dispatch.send(orders)
    if failed:
        # Leave the leases: the dispatcher re-sends attempts that never started (dispatch timeout).
        log.warning("dispatch_deferred", tasks=[o.task_id for o in failed])


# --- queries ----------------------------------------------------------------------------------


def get_or_404(session: Session, task_id: int, *, lock: bool = False) -> Task:
    task = repository.get_task(session, task_id, lock=lock)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


def stats(session: Session) -> TaskStats:
    return stats_from_counts(repository.counts_by_status(session))


def stats_from_counts(counts: Mapping[int, int]) -> TaskStats:
    pending, running = counts.get(TaskStatus.PENDING, 0), counts.get(TaskStatus.RUNNING, 0)
    completed, failed = counts.get(TaskStatus.COMPLETED, 0), counts.get(TaskStatus.FAILED, 0)
    return TaskStats(
        total=pending + running + completed + failed,
        pending=pending,
        running=running,
        completed=completed,
        failed=failed,
    )


# --- state changes ----------------------------------------------------------------------------


def _signal_cancel(uow: UnitOfWork, targets: list[tuple[int, int]]) -> None:
    if targets:
        uow.after_commit(lambda: request_cancel(get_redis(), targets))


def stop_task(uow: UnitOfWork, task_id: int) -> Task:
    """Stop a task. Waiting: it fails now and never runs. Handed to a phone: the hub is told to stop,
    and the task ends failed with "stopped by user" when the phone has let go of it."""
    session = uow.session
    task = get_or_404(session, task_id, lock=True)
    now = datetime.now(UTC)
    if task.status == TaskStatus.PENDING:
        if task.dispatched_at is not None:
            _signal_cancel(uow, [(task_id, task.attempt)])
        task.status = TaskStatus.FAILED
        task.remark = STOPPED_REMARK
        task.failure_kind = FailureKind.STOPPED.value
        task.end_time = now
        task.dispatched_at = None
        repository.add_log(session, task_id, task.attempt, "stopped by user before it started")
        session.flush()
        enqueue_task_end(session, task_id)
    elif task.status == TaskStatus.RUNNING:
        if task.stop_requested_at is None:
            task.stop_requested_at = now
            repository.add_log(session, task_id, task.attempt, "stop requested by user")
        _signal_cancel(uow, [(task_id, task.attempt)])
    elif not (task.status == TaskStatus.FAILED and task.failure_kind == FailureKind.STOPPED.value):
        state = TaskStatus(task.status).name.lower()
        raise Conflict(f"task {task_id} is {state}; only pending or running tasks can be stopped")
    session.flush()
    return task


def delete_tasks(uow: UnitOfWork, task_ids: Sequence[int]) -> int:
    """Delete tasks; those on a phone are told to stop first (their phones stay leased until the
    hub lets go, so the next task cannot start under a script that is still unwinding)."""
    removed = repository.delete_tasks(uow.session, _dedupe_ints(task_ids))
    _signal_cancel(uow, [(r.id, r.attempt) for r in removed if r.on_a_phone])
    return len(removed)


def _dedupe_ints(values: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(values))


def retry_task(uow: UnitOfWork, task_id: int, settings: Settings) -> Task:
    session = uow.session
    now = datetime.now(UTC)
    serial = repository.retry_task(session, task_id, max_retry_count=settings.max_retry_count, now=now)
    if serial is None:
        task = get_or_404(session, task_id)
        if task.status != TaskStatus.FAILED:
            raise Conflict(
                f"task {task_id} is {TaskStatus(task.status).name.lower()}; only failed tasks can be retried"
            )
        raise Conflict(
            f"task {task_id} was retried {task.retry_count} times, the maximum (max_retry_count "
            f"{settings.max_retry_count}); create a new task instead"
        )
    task = get_or_404(session, task_id)
    repository.add_log(session, task_id, task.attempt, f"retry #{task.retry_count} requested by user")
    _claim_after_commit(uow, {serial}, settings)
    session.refresh(task)
    return task


def retry_all(uow: UnitOfWork, settings: Settings) -> int:
    serials = repository.retry_all_failed(uow.session, max_retry_count=settings.max_retry_count, now=datetime.now(UTC))
    if serials:
        _claim_after_commit(uow, set(serials), settings)
    return len(serials)
