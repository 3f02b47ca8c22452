"""Who is calling: an API key (``Authorization: Bearer`` or ``X-API-Key``), or, when the setting
allows it, an unauthenticated caller on the loopback interface (TikMatrix clients send no key)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.keys.service import find_key, hash_key
from shared.db.engine import transaction
from shared.errors import PlanHasNoApi, Unauthorized
from shared.settings import Plan, get_settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Principal:
    """The caller: a key (``key_id``) or the loopback user (``key_id`` None), and its plan."""

    key_id: int | None
    name: str
    plan: Plan


class _KeyCache:
    """A few seconds of memory for key lookups, so that a busy client does not cost a query per call.
    Revocation therefore takes effect within ``key_cache_seconds``."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, ttl: float) -> tuple[bool, Principal | None]:
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry[0] > ttl:
            return False, None
        return True, entry[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic(), principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = _KeyCache()


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


def _lookup(digest: str, key: str) -> Principal | None:
    with transaction() as session:
        row = find_key(session, key)
        principal = None if row is None else Principal(key_id=row.id, name=row.name, plan=Plan(row.plan))
    key_cache.put(digest, principal)
    return principal


async def authenticate(request: Request) -> Principal:
    """The caller, or 40101. Runs on the event loop: only a key missing from the cache costs a thread
    hop (the database lookup)."""
    settings = get_settings()
    key = presented_key(request)
    if key is None:
        client = request.client.host if request.client else ""
        if settings.allow_loopback_without_key and client in LOOPBACK_HOSTS:
            return Principal(key_id=None, name="loopback", plan=settings.loopback_plan)
        raise Unauthorized(
            "no API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
            "(make one with `phonefleet keys create --plan pro`)"
        )
    digest = hash_key(key)
    hit, principal = key_cache.get(digest, settings.key_cache_seconds)
    if not hit:
        principal = await run_in_threadpool(_lookup, digest, key)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


async def require_api(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """The caller, provided its plan includes API access (everything but Starter), else 40301."""
    if principal.plan is Plan.STARTER:
        raise PlanHasNoApi("the Starter plan has no API access; upgrade to Pro, Team or Business")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
ApiPrincipal = Annotated[Principal, Depends(require_api)]
