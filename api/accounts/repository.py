"""Plain data access for accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlmodel import col

from shared.db.models import Account, Device


@dataclass(frozen=True)
class AccountFilters:
    platform: str | None = None
    device: str | None = None
    logined: int | None = None
    status: int | None = None
    tag: str | None = None
    username: str | None = None


def _where(f: AccountFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.platform is not None:
        clauses.append(col(Account.platform) == f.platform)
    if f.device is not None:
        clauses.append(col(Account.device) == f.device)
    if f.logined is not None:
        clauses.append(col(Account.logined) == f.logined)
    if f.status is not None:
        clauses.append(col(Account.status) == f.status)
    if f.tag is not None:
        clauses.append(col(Account.tags).contains([f.tag]))
    if f.username is not None:
        clauses.append(col(Account.username) == f.username)
    return clauses


AccountRow = Row[Account, bool | None, str | None]


def _with_device() -> Select[Account, bool, str | None]:
    return select(Account, col(Device.online), col(Device.model)).outerjoin(
        Device, col(Device.serial) == col(Account.device)
    )


def list_accounts(session: Session, f: AccountFilters, *, offset: int, limit: int) -> list[AccountRow]:
    stmt = _with_device().where(*_where(f)).order_by(col(Account.id)).offset(offset).limit(limit)
    return list(session.execute(stmt).all())


def count_accounts(session: Session, f: AccountFilters) -> int:
    return int(session.scalar(select(func.count()).select_from(Account).where(*_where(f))) or 0)


def get_account(session: Session, account_id: int) -> AccountRow | None:
    return session.execute(_with_device().where(col(Account.id) == account_id)).first()


def insert_account(session: Session, values: dict[str, Any]) -> int | None:
    """The new account's id, or None when (platform, username) already exists."""
    stmt = (
        insert(Account)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["platform", "username"])
        .returning(col(Account.id))
    )
    row = session.execute(stmt).first()
    return None if row is None else int(row.id)


def delete_account(session: Session, account_id: int) -> bool:
    result = session.execute(delete(Account).where(col(Account.id) == account_id).returning(col(Account.id)))
    return result.first() is not None
