"""API keys: made once, stored as SHA-256, looked up by hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from shared.db.models import ApiKey
from shared.settings import Plan

KEY_PREFIX = "pf_"


def hash_key(key: str) -> str:
    # Keys are 256 random bits: a fast hash is enough (no dictionary to guess from), and keeps
    # authentication off the request's critical path.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: int
    name: str
    plan: Plan
    key: str
    webhook_secret: str


def create_key(session: Session, *, name: str, plan: Plan) -> NewKey:
    """Make a key; the returned ``key`` is the only time it exists outside its hash."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    # The webhook secret must be readable to sign with, so it is stored as is; it grants no API access.
    webhook_secret = "whsec_" + secrets.token_urlsafe(24)
    row = ApiKey(
        name=name,
        prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(key),
        plan=plan.value,
        webhook_secret=webhook_secret,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return NewKey(id=row.id, name=name, plan=plan, key=key, webhook_secret=webhook_secret)


def set_webhook(session: Session, key_id: int, url: str | None) -> str | None:
    """Set (or clear, with None) where the end of the key's tasks is pushed; returns the key's signing
    secret, made now if the key had none; None if there is no such key."""
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return None
    row.webhook_url = url
    if row.webhook_secret is None:
        row.webhook_secret = "whsec_" + secrets.token_urlsafe(24)
    return row.webhook_secret


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(col(ApiKey.id))))


def revoke_key(session: Session, key_id: int) -> bool:
    row = session.execute(
        update(ApiKey)
        .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(col(ApiKey.id))
    ).first()
    return row is not None


def find_key(session: Session, key: str) -> ApiKey | None:
    """The live key row matching ``key``, or None."""
    digest = hash_key(key)
    row = session.scalars(select(ApiKey).where(col(ApiKey.key_hash) == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    # The index lookup already matched; compare again in constant time so that no code path
    # compares secrets with an early-exit equality.
    return row if hmac.compare_digest(row.key_hash, digest) else None
