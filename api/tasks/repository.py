"""Plain data access for tasks: one function, one query.

The hot paths (create, list, stats) send their SQL straight through the session's psycopg connection,
in the session's transaction: building and compiling a SQLAlchemy statement, and loading ORM objects,
cost more CPU than PostgreSQL spends answering these queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from shared.db.models import Task, TaskLog, TaskStatus


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


def driver(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under ``session``, inside the session's transaction."""
    return cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)


# One statement for any number of tasks: the per-task columns come as arrays, the rest once. Ids are
# drawn in ``ORDER BY n`` order (PostgreSQL evaluates volatile target-list functions after the sort),
# so sorted ids are in the order of the targets.
_INSERT_TASKS_FROM = """
INSERT INTO task (id, serial, username, account_id, platform, packagename, script_name, script_config,
                  source, start_time, scheduled_at, due_at, api_key_id, webhook_url)
SELECT nextval('task_id_seq'), t.serial, t.username, t.account_id, t.platform, t.packagename,
       %(script_name)s::text, %(script_config)s::jsonb, %(source)s::text, %(start_time)s::text,
       %(scheduled_at)s::timestamptz, coalesce(%(due_at)s::timestamptz, now()), %(api_key_id)s::bigint,
       %(webhook_url)s::text
FROM unnest(%(serials)s::text[], %(usernames)s::text[], %(account_ids)s::bigint[], %(platforms)s::text[],
            %(packagenames)s::text[]) WITH ORDINALITY AS t(serial, username, account_id, platform, packagename, n)
"""
_INSERT_TASKS = _INSERT_TASKS_FROM + "ORDER BY t.n RETURNING id"


def insert_tasks(session: Session, targets: Sequence[dict[str, Any]], common: dict[str, Any]) -> list[int]:
    """Insert one task per target (``serial, username, account_id, platform, packagename``), each with
    the ``common`` columns, in one statement; ids come back in the order of ``targets``."""
    if not targets:
        return []
    rows = driver(session).execute(_INSERT_TASKS, _insert_params(targets, common)).fetchall()
    return sorted(int(row[0]) for row in rows)


def _insert_params(targets: Sequence[dict[str, Any]], common: dict[str, Any]) -> dict[str, Any]:
    return {
        "serials": [t["serial"] for t in targets],
        "usernames": [t["username"] for t in targets],
        "account_ids": [t["account_id"] for t in targets],
        "platforms": [t["platform"] for t in targets],
        "packagenames": [t["packagename"] for t in targets],
        "script_name": common["script_name"],
        "script_config": Jsonb(common["script_config"]),
        "source": common["source"],
        "start_time": common.get("start_time"),
        "scheduled_at": common.get("scheduled_at"),
        "due_at": common.get("due_at"),
        "api_key_id": common.get("api_key_id"),
        "webhook_url": common.get("webhook_url"),
    }


def get_task(session: Session, task_id: int, *, lock: bool = False) -> Task | None:
    stmt = select(Task).where(col(Task.id) == task_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


# POST /task's common case in one statement (autocommit: the statement is the transaction): the
# device-limit count, whether an idle online phone is among the serials (then the caller must claim it
# in a transaction of its own, and this inserts nothing), and the insert, which happens only if both
# checks pass.
_INSERT_WAITING = (
    """
WITH active AS (
    SELECT count(DISTINCT serial) AS n FROM task
    WHERE {key_match} AND status IN (0, 1) AND serial NOT IN (SELECT unnest(%(excluding)s::text[]))
), idle AS (
    SELECT %(unless_idle)s::boolean AND EXISTS (
        SELECT 1 FROM device
        WHERE serial = ANY(%(excluding)s::text[]) AND online AND lease_task_id IS NULL
    ) AS found
), inserted AS ("""  # noqa: S608 (fixed fragments)
    + _INSERT_TASKS_FROM
    + """
    WHERE (SELECT n FROM active) + %(devices)s <= %(device_limit)s AND NOT (SELECT found FROM idle)
    ORDER BY t.n
    RETURNING id
)
SELECT (SELECT n FROM active), (SELECT found FROM idle), ARRAY(SELECT id FROM inserted ORDER BY id)
"""
)
_INSERT_WAITING_BY_KEY = {
    True: _INSERT_WAITING.replace("{key_match}", "api_key_id IS NULL"),
    False: _INSERT_WAITING.replace("{key_match}", "api_key_id = %(key_id)s"),
}


@dataclass(frozen=True)
class WaitingInsert:
    ids: list[int] | None  # None: over the device limit, nothing inserted
    active_devices: int  # devices where the key already has unfinished tasks, leaving the request's out
    idle_phone: bool  # an idle online phone is among the serials: nothing inserted


async def insert_waiting_tasks(
    conn: psycopg.AsyncConnection[Any],
    targets: Sequence[dict[str, Any]],
    common: dict[str, Any],
    *,
    key_id: int | None,
    device_limit: int,
    unless_idle_phone: bool,
) -> WaitingInsert:
    """Insert one task per target like :func:`insert_tasks`, in one statement on an autocommit
    connection, if the key stays within ``device_limit`` and (with ``unless_idle_phone``) no target's
    phone is idle and online."""
    excluding = sorted({t["serial"] for t in targets})
    params = _insert_params(targets, common)
    params.update(
        excluding=excluding,
        devices=len(excluding),
        device_limit=device_limit,
        key_id=key_id,
        unless_idle=unless_idle_phone,
    )
    cursor = await conn.execute(_INSERT_WAITING_BY_KEY[key_id is None], params)
    row = await cursor.fetchone()
    assert row is not None
    active, idle, ids = int(row[0]), bool(row[1]), [int(i) for i in row[2]]
    if idle:
        return WaitingInsert(ids=None, active_devices=active, idle_phone=True)
    if not ids:
        return WaitingInsert(ids=None, active_devices=active, idle_phone=False)
    return WaitingInsert(ids=ids, active_devices=active, idle_phone=False)


# What GET /task shows of a task (see service.public_from_row).
PUBLIC_COLUMNS = (
    "id, serial, username, platform, script_name, script_config, status, source, start_time, scheduled_at, "
    "created_at, started_at, end_time, retry_count, remark, hub, attempt, failure_kind, stop_requested_at, "
    "webhook_url"
)


def _raw_where(filters: TaskFilters) -> tuple[str, dict[str, Any]]:
    """``filters`` as SQL conditions over the columns task and task_count share (and serial)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for name in ("status", "serial", "script_name", "source"):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{name} = %({name})s")
            params[name] = value
    return (" AND ".join(clauses) or "TRUE"), params


def _list_sql(filters: TaskFilters, *, offset: int, limit: int) -> tuple[str, dict[str, Any]]:
    where, params = _raw_where(filters)
    # Fixed fragments, values as parameters; limit and offset are ints written into the SQL so that the
    # planner (also of a prepared statement's generic plan) knows how few rows are wanted.
    sql = f"SELECT {PUBLIC_COLUMNS} FROM task WHERE {where} ORDER BY id DESC LIMIT {int(limit)} OFFSET {int(offset)}"  # noqa: S608
    return sql, params


def _count_sql(filters: TaskFilters) -> tuple[str, dict[str, Any]]:
    """How many tasks match. Without a serial filter the answer comes from ``task_count`` (a few
    hundred rows whatever the table size); per-device counts use the (serial, status) index."""
    where, params = _raw_where(filters)
    if filters.serial is not None:
        return f"SELECT count(*) FROM task WHERE {where}", params  # noqa: S608 (fixed fragments)
    return f"SELECT coalesce(sum(n), 0) FROM task_count WHERE {where}", params  # noqa: S608 (fixed fragments)


async def list_page(
    conn: psycopg.AsyncConnection[Any], filters: TaskFilters, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of tasks matching ``filters``, newest first, as rows of :data:`PUBLIC_COLUMNS`, and how
    many tasks match in all."""
    sql, params = _list_sql(filters, offset=offset, limit=limit)
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql, params)
        rows = await cursor.fetchall()
    sql, params = _count_sql(filters)
    cur = await conn.execute(sql, params)
    total = await cur.fetchone()
    return rows, int(total[0]) if total is not None else 0


_COUNTS_BY_STATUS = "SELECT status, sum(n) FROM task_count GROUP BY status"


async def counts_by_status_async(conn: psycopg.AsyncConnection[Any]) -> dict[int, int]:
    cur = await conn.execute(_COUNTS_BY_STATUS)
    return {int(status): int(n) for status, n in await cur.fetchall()}


def counts_by_status(session: Session) -> dict[int, int]:
    rows = driver(session).execute(_COUNTS_BY_STATUS).fetchall()
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
    """Distinct devices where the key has unfinished tasks, leaving out ``excluding``. (The partial
    index ix_task_active_key_serial answers it; ``NOT IN (SELECT unnest…)`` is a hashed lookup however
    many serials the request names.)"""
    key_match = "api_key_id IS NULL" if key_id is None else "api_key_id = %(key_id)s"
    sql = (
        f"SELECT count(DISTINCT serial) FROM task WHERE {key_match} AND status IN (0, 1) "  # noqa: S608
        "AND serial NOT IN (SELECT unnest(%(excluding)s::text[]))"
    )
    row = driver(session).execute(sql, {"key_id": key_id, "excluding": list(excluding)}).fetchone()
    return int(row[0]) if row is not None else 0
