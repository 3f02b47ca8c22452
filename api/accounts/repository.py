"""Plain data access for accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

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
        clauses.append(Account.platform == f.platform)  # type: ignore[arg-type]
    if f.device is not None:
        clauses.append(Account.device == f.device)  # type: ignore[arg-type]
    if f.logined is not None:
        clauses.append(Account.logined == f.logined)  # type: ignore[arg-type]
    if f.status is not None:
        clauses.append(Account.status == f.status)  # type: ignore[arg-type]
    if f.tag is not None:
        clauses.append(Account.tags.contains([f.tag]))  # type: ignore[attr-defined]
    if f.username is not None:
        clauses.append(Account.username == f.username)  # type: ignore[arg-type]
    return clauses


def _with_device() -> Any:
    return select(Account, Device.online, Device.model).outerjoin(Device, Device.serial == Account.device)  # type: ignore[arg-type]


def list_accounts(session: Session, f: AccountFilters, *, offset: int, limit: int) -> list[Row[Any]]:
    stmt = _with_device().where(*_where(f)).order_by(Account.id).offset(offset).limit(limit)
    return list(session.execute(stmt).all())


def count_accounts(session: Session, f: AccountFilters) -> int:
    return int(session.scalar(select(func.count()).select_from(Account).where(*_where(f))) or 0)


def get_account(session: Session, account_id: int) -> Row[Any] | None:
    return session.execute(_with_device().where(Account.id == account_id)).first()  # type: ignore[arg-type]


def insert_account(session: Session, values: dict[str, Any]) -> int | None:
    """The new account's id, or None when (platform, username) already exists."""
    stmt = (
        insert(Account)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["platform", "username"])
        .returning(Account.id)
    )
    row = session.execute(stmt).first()
    return None if row is None else int(row[0])


def delete_account(session: Session, account_id: int) -> bool:
    result = session.execute(delete(Account).where(Account.id == account_id).returning(Account.id))  # type: ignore[arg-type]
    return result.first() is not None
