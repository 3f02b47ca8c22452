"""Typed, keyword-only helpers that put test data in the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from api.keys.service import create_key
from shared.db.engine import transaction
from shared.db.models import Account, Device, Task
from shared.settings import Plan


def make_key(*, plan: Plan = Plan.PRO, name: str = "test") -> str:
    with transaction() as session:
        return create_key(session, name=name, plan=plan).key


def make_device(*, serial: str, online: bool = True, hub: str | None = "hub-test", model: str = "SM-A515F") -> None:
    """Insert or update a device as its hub would report it."""
    values = {
        "serial": serial,
        "hub": hub,
        "online": online,
        "state": "device" if online else "offline",
        "model": model,
        "last_seen": datetime.now(UTC),
    }
    stmt = insert(Device).values(**values)
    with transaction() as session:
        session.execute(stmt.on_conflict_do_update(index_elements=["serial"], set_=values))


def make_account(
    *,
    username: str,
    device: str | None,
    platform: str = "tiktok",
    status: int = 0,
    logined: int = 1,
    packagename: str | None = None,
    tags: list[str] | None = None,
    password: str | None = None,
) -> int:
    with transaction() as session:
        account = Account(
            username=username,
            device=device,
            platform=platform,
            status=status,
            logined=logined,
            packagename=packagename,
            tags=tags or [],
            password=password,
        )
        session.add(account)
        session.flush()
        assert account.id is not None
        return account.id


def set_task(task_id: int, **values: Any) -> None:
    """Put a task in a state the api alone cannot reach (running, failed...), as a hub report would."""
    with transaction() as session:
        task = session.get(Task, task_id)
        assert task is not None, f"no task {task_id}"
        for name, value in values.items():
            setattr(task, name, value)


def get_task_row(task_id: int) -> Task | None:
    with transaction() as session:
        return session.get(Task, task_id)
