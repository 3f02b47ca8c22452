"""The tables. The schema itself is created only by the Alembic migrations in ``migrations/``;
``tests/db/test_migrations.py`` checks that these models and the migrated database agree."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

# Constraint names are part of the schema: migrations and models must produce the same ones.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)
metadata = SQLModel.metadata


class TaskStatus(IntEnum):
    PENDING = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3


TERMINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED)


def _ts(nullable: bool = True, default_now: bool = False) -> Any:
    return Column(
        DateTime(timezone=True),
        nullable=nullable,
        server_default=func.now() if default_now else None,
    )


class ApiKey(SQLModel, table=True):
    """An API key: only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_key"
    __table_args__ = (CheckConstraint("plan IN ('starter','pro','team','business')", name="plan"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    prefix: str = Field(sa_column=Column(Text, nullable=False))
    key_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    plan: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())
    # Where the end of this key's tasks is pushed, and the secret its deliveries are signed with.
    webhook_url: str | None = Field(default=None, sa_column=Column(Text))
    webhook_secret: str | None = Field(default=None, sa_column=Column(Text))


class Device(SQLModel, table=True):
    """A phone some hub has seen. The lease columns name the attempt that holds the phone: set when a
    task is dispatched to it, cleared when its hub reports that attempt's end (or it times out). A
    phone with a lease gets no other task, whatever happens to the task's row meanwhile."""

    __tablename__ = "device"

    serial: str = Field(sa_column=Column(Text, primary_key=True))
    hub: str | None = Field(default=None, sa_column=Column(Text))
    online: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false")))
    state: str = Field(default="unknown", sa_column=Column(Text, nullable=False, server_default="unknown"))
    model: str | None = Field(default=None, sa_column=Column(Text))
    properties: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    last_seen: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    lease_task_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    lease_attempt: int | None = Field(default=None, sa_column=Column(Integer))
    lease_since: datetime | None = Field(default=None, sa_column=_ts())
    lease_heartbeat_at: datetime | None = Field(default=None, sa_column=_ts())


class Account(SQLModel, table=True):
    """A TikTok or Instagram account logged in (or to be logged in) on a device."""

    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("platform", "username"),
        CheckConstraint("platform IN ('tiktok','instagram')", name="platform"),
        CheckConstraint("logined IN (0,1)", name="logined"),
        CheckConstraint("status IN (0,1)", name="status"),
        Index("ix_account_device", "device"),
        Index("ix_account_tags", "tags", postgresql_using="gin"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    username: str = Field(sa_column=Column(Text, nullable=False))
    email: str | None = Field(default=None, sa_column=Column(Text))
    password: str | None = Field(default=None, sa_column=Column(Text))
    platform: str = Field(sa_column=Column(Text, nullable=False))
    packagename: str | None = Field(default=None, sa_column=Column(Text))
    device: str | None = Field(default=None, sa_column=Column(Text))
    logined: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default="0"))
    status: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default="0"))
    tags: list[str] = Field(
        default_factory=list, sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    )
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))


class Task(SQLModel, table=True):
    """One run of one script on one device.

    ``status`` is the public state (0 pending, 1 running, 2 completed, 3 failed). Within pending,
    ``dispatched_at`` tells a task that waits in PostgreSQL (null) from one whose ``attempt`` has been
    sent to its device's queue. ``attempt`` is the fencing token: every report from a hub carries it,
    and reports of any other attempt change nothing.
    """

    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint("status BETWEEN 0 AND 3", name="status"),
        CheckConstraint("source IN ('api','ui')", name="source"),
        Index("ix_task_status_id", "status", text("id DESC")),
        Index("ix_task_serial_status_id", "serial", "status", text("id DESC")),
        # A device's tasks, newest first (GET /task?serial=).
        Index("ix_task_serial_id", "serial", text("id DESC")),
        Index("ix_task_script_name_id", "script_name", text("id DESC")),
        Index("ix_task_source_id", "source", text("id DESC")),
        # The dispatcher's question: the oldest due waiting task of a device.
        Index(
            "ix_task_waiting",
            "serial",
            "id",
            postgresql_include=["due_at"],
            postgresql_where=text("status = 0 AND dispatched_at IS NULL"),
        ),
        # The scheduler's question: which waiting tasks become due next.
        Index("ix_task_waiting_due", "due_at", postgresql_where=text("status = 0 AND dispatched_at IS NULL")),
        # The device-limit question: on which devices a key has unfinished tasks.
        Index("ix_task_active_key_serial", "api_key_id", "serial", postgresql_where=text("status IN (0,1)")),
        # The live feed's question (GET /events): which tasks changed since the last look.
        Index("ix_task_updated_at", "updated_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    serial: str = Field(sa_column=Column(Text, nullable=False))
    username: str | None = Field(default=None, sa_column=Column(Text))
    account_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("account.id", ondelete="SET NULL"))
    )
    platform: str = Field(sa_column=Column(Text, nullable=False))
    packagename: str | None = Field(default=None, sa_column=Column(Text))
    script_name: str = Field(sa_column=Column(Text, nullable=False))
    script_config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    status: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default="0"))
    source: str = Field(default="api", sa_column=Column(Text, nullable=False, server_default="api"))
    start_time: str | None = Field(default=None, sa_column=Column(Text))
    scheduled_at: datetime | None = Field(default=None, sa_column=_ts())
    due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    dispatched_at: datetime | None = Field(default=None, sa_column=_ts())
    started_at: datetime | None = Field(default=None, sa_column=_ts())
    end_time: datetime | None = Field(default=None, sa_column=_ts())
    stop_requested_at: datetime | None = Field(default=None, sa_column=_ts())
    retry_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    attempt: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    remark: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    failure_kind: str | None = Field(default=None, sa_column=Column(Text))
    hub: str | None = Field(default=None, sa_column=Column(Text))
    webhook_url: str | None = Field(default=None, sa_column=Column(Text))
    api_key_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"))
    )
    # Set by the trigger task_touch_updated_at on every insert and every update that changes the row.
    updated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))


class TaskCount(SQLModel, table=True):
    """Row counts of ``task`` by (status, script_name, source), kept by statement triggers so that
    stats and list totals never count a million rows. ``shard`` spreads concurrent writers over
    several rows (one per backend, modulo 64) so that they do not queue on one row lock."""

    __tablename__ = "task_count"

    status: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    script_name: str = Field(sa_column=Column(Text, primary_key=True))
    source: str = Field(sa_column=Column(Text, primary_key=True))
    shard: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class TaskLog(SQLModel, table=True):
    """A line of a task's log, as its hub reported it."""

    __tablename__ = "task_log"
    __table_args__ = (Index("ix_task_log_task_id_id", "task_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    task_id: int = Field(sa_column=Column(BigInteger, ForeignKey("task.id", ondelete="CASCADE"), nullable=False))
    attempt: int = Field(sa_column=Column(Integer, nullable=False))
    at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    level: str = Field(default="info", sa_column=Column(Text, nullable=False, server_default="info"))
    message: str = Field(sa_column=Column(Text, nullable=False))
    fields: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )


class TaskScreenshot(SQLModel, table=True):
    """The screenshot a hub took when an attempt failed (the latest one per task)."""

    __tablename__ = "task_screenshot"

    task_id: int = Field(sa_column=Column(BigInteger, ForeignKey("task.id", ondelete="CASCADE"), primary_key=True))
    attempt: int = Field(sa_column=Column(Integer, nullable=False))
    taken_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    png: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One push of a task's end to a URL, with its retries. Kept after the task is deleted."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint("status IN ('pending','delivered','failed')", name="status"),
        Index("ix_webhook_delivery_task_id", "task_id"),
        Index("ix_webhook_delivery_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    task_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    api_key_id: int | None = Field(
        default=None, sa_column=Column(BigInteger, ForeignKey("api_key.id", ondelete="SET NULL"))
    )
    url: str = Field(sa_column=Column(Text, nullable=False))
    event: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    status: str = Field(default="pending", sa_column=Column(Text, nullable=False, server_default="pending"))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=False, default_now=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_ts())
