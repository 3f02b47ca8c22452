"""The feed's two questions to PostgreSQL, both answered from small indexes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from shared.db.models import Task


@dataclass(frozen=True)
class Changes:
    """Tasks stamped after some instant, and the database's clock when it was asked."""

    tasks: list[Task]
    read_at: datetime


def tasks_changed_since(session: Session, since: datetime, *, limit: int) -> Changes:
    """At most ``limit`` tasks whose ``updated_at`` is after ``since``, oldest change first
    (``ix_task_updated_at``)."""
    read_at = database_now(session)
    stmt = select(Task).where(col(Task.updated_at) > since).order_by(col(Task.updated_at), col(Task.id)).limit(limit)
    return Changes(tasks=list(session.scalars(stmt)), read_at=read_at)


def database_now(session: Session) -> datetime:
    """PostgreSQL's clock, the one ``updated_at`` is stamped with."""
    now = session.scalar(select(func.clock_timestamp()))
    assert isinstance(now, datetime)
    return now
