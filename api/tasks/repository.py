"""Plain data access for tasks: one function, one query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from shared.db.models import Task, TaskCount, TaskLog, TaskStatus


@dataclass(frozen=True)
class TaskFilters:
    status: int | None = None
    serial: str | None = None
    script_name: str | None = None
    source: str | None = None


def _where(filters: TaskFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.status is not None:
        clauses.append(col(Task.status) == filters.status)
    if filters.serial is not None:
        clauses.append(col(Task.serial) == filters.serial)
    if filters.script_name is not None:
        clauses.append(col(Task.script_name) == filters.script_name)
    if filters.source is not None:
        clauses.append(col(Task.source) == filters.source)
    return clauses


def insert_tasks(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in one statement; ids come back in the order of ``rows``."""
    if not rows:
        return []
    result = session.execute(
        insert(Task).returning(col(Task.id), sort_by_parameter_order=True),
        list(rows),
    )
    return [int(row_id) for (row_id,) in result if row_id is not None]


def get_task(session: Session, task_id: int, *, lock: bool = False) -> Task | None:
    stmt = select(Task).where(col(Task.id) == task_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def list_tasks(session: Session, filters: TaskFilters, *, offset: int, limit: int) -> list[Task]:
    stmt = select(Task).where(*_where(filters)).order_by(col(Task.id).desc()).offset(offset).limit(limit)
    return list(session.scalars(stmt))


def count_tasks(session: Session, filters: TaskFilters) -> int:
    """How many tasks match. Without a serial filter the answer comes from ``task_count`` (a few
    hundred rows whatever the table size); per-device counts use the (serial, status) index."""
    if filters.serial is not None:
        return int(session.scalar(select(func.count()).select_from(Task).where(*_where(filters))) or 0)
    stmt = select(func.coalesce(func.sum(col(TaskCount.n)), 0))
    if filters.status is not None:
        stmt = stmt.where(col(TaskCount.status) == filters.status)
    if filters.script_name is not None:
        stmt = stmt.where(col(TaskCount.script_name) == filters.script_name)
    if filters.source is not None:
        stmt = stmt.where(col(TaskCount.source) == filters.source)
    return int(session.scalar(stmt) or 0)


def counts_by_status(session: Session) -> dict[int, int]:
    rows = session.execute(select(col(TaskCount.status), func.sum(col(TaskCount.n))).group_by(col(TaskCount.status)))
    return {int(status): int(n) for status, n in rows}


@dataclass(frozen=True)
class RemovedTask:
    id: int
    serial: str
    status: int
    attempt: int
    dispatched: bool

    @property
    def on_a_phone(self) -> bool:
        """True when some hub may hold (or be running) its current attempt."""
        return self.status == TaskStatus.RUNNING or (self.status == TaskStatus.PENDING and self.dispatched)


def delete_tasks(session: Session, task_ids: Sequence[int]) -> list[RemovedTask]:
    result = session.execute(
        delete(Task)
        .where(col(Task.id).in_(list(task_ids)))
        .returning(col(Task.id), col(Task.serial), col(Task.status), col(Task.attempt), col(Task.dispatched_at))
    )
    return [
        RemovedTask(
            id=r.id,
            serial=r.serial,
            status=r.status,
            attempt=r.attempt,
            dispatched=r.dispatched_at is not None,
        )
        for r in result
    ]


def _back_to_pending(now: datetime) -> dict[str, Any]:
    return {
        "status": TaskStatus.PENDING,
        "retry_count": col(Task.retry_count) + 1,
        "dispatched_at": None,
        "started_at": None,
        "end_time": None,
        "stop_requested_at": None,
        "remark": "",
        "failure_kind": None,
        "hub": None,
        "due_at": now,
    }


def retry_task(session: Session, task_id: int, *, max_retry_count: int, now: datetime) -> str | None:
    """Failed → pending if retries remain; returns the task's serial, or None when nothing changed."""
    row = session.execute(
        update(Task)
        .where(
            col(Task.id) == task_id,
            col(Task.status) == TaskStatus.FAILED,
            col(Task.retry_count) < max_retry_count,
        )
        .values(**_back_to_pending(now))
        .returning(col(Task.serial))
    ).first()
    return None if row is None else str(row[0])


def retry_all_failed(session: Session, *, max_retry_count: int, now: datetime) -> list[str]:
    """Every failed task with retries left → pending; returns their serials (one per task)."""
    result = session.execute(
        update(Task)
        .where(col(Task.status) == TaskStatus.FAILED, col(Task.retry_count) < max_retry_count)
        .values(**_back_to_pending(now))
        .returning(col(Task.serial))
    )
    return [str(r[0]) for r in result]


def add_log(session: Session, task_id: int, attempt: int, message: str, **fields: Any) -> None:
    session.execute(insert(TaskLog).values(task_id=task_id, attempt=attempt, message=message, fields=fields))


def get_logs(session: Session, task_id: int, *, after_id: int, limit: int) -> list[TaskLog]:
    stmt = (
        select(TaskLog)
        .where(col(TaskLog.task_id) == task_id, col(TaskLog.id) > after_id)
        .order_by(col(TaskLog.id))
        .limit(limit)
    )
    return list(session.scalars(stmt))


def active_device_count(session: Session, key_id: int | None, excluding: Sequence[str]) -> int:
    """Distinct devices where the key has unfinished tasks, leaving out ``excluding``."""
    key_match = col(Task.api_key_id).is_(None) if key_id is None else col(Task.api_key_id) == key_id
    stmt = select(func.count(func.distinct(col(Task.serial)))).where(
        key_match,
        col(Task.status).in_((TaskStatus.PENDING, TaskStatus.RUNNING)),
    )
    if excluding:
        stmt = stmt.where(col(Task.serial).not_in(list(excluding)))
    return int(session.scalar(stmt) or 0)
