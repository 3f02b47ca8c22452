"""Queries answered on the event loop, without a worker thread.

``GET /task`` and ``GET /task/stats`` only read, and the common case of ``POST /task`` is a single
statement. Sending their SQL through a psycopg ``AsyncConnectionPool`` from the event loop costs a
fraction of a trip through a worker thread and a SQLAlchemy session (thread hand-off, GIL hand-off,
BEGIN, pre-ping, COMMIT): the connections are in autocommit mode, so each statement is its own
transaction (reads: each statement already had its own snapshot under READ COMMITTED; a write is
committed, durably, when its statement returns). A connection that broke (PostgreSQL restarted)
fails its query with ``psycopg.OperationalError`` (50301, retry) and the pool replaces it.

Pools belong to one event loop: there is one per (loop, database URL), closed by the app's lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from shared.db.engine import database_url
from shared.settings import get_settings

# How long a request waits for a connection (all busy, or PostgreSQL not answering) before 50301.
POOL_TIMEOUT_SECONDS = 5.0
POOL_MAX_SIZE = 16

_pools: dict[tuple[int, str], AsyncConnectionPool[psycopg.AsyncConnection[Any]]] = {}


def libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` URL as libpq reads it."""
    scheme, sep, rest = url.partition("://")
    return ("postgresql" + sep + rest) if scheme.startswith("postgresql+") else url


async def _pool() -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    url = libpq_url(database_url(get_settings()))
    key = (id(asyncio.get_running_loop()), url)
    pool = _pools.get(key)
    if pool is None:
        pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            kwargs={"autocommit": True, "connect_timeout": 3},
            timeout=POOL_TIMEOUT_SECONDS,
            open=False,
            name="api-loop",
        )
        _pools[key] = pool
        await pool.open(wait=False)
    return pool


@asynccontextmanager
async def pooled_connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled autocommit connection, on this event loop."""
    pool = await _pool()
    async with pool.connection() as conn:
        yield conn


async def close_pools() -> None:
    """Close the pools of the running event loop (the app's shutdown)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _pools if k[0] == loop_id]:
        await _pools.pop(key).close()
