"""Fixtures shared by the whole suite: real PostgreSQL (migrated by Alembic) and real Redis."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.auth import key_cache
from shared.broker import reset_clients
from shared.db.engine import dispose_engines, get_engine
from shared.db.migrate import upgrade
from shared.db.models import metadata
from shared.settings import Plan, get_settings
from tests.factories import make_key
from tests.services import ServiceUrls, create_database, drop_database, start_services


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") else 0


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceUrls]:
    found = start_services(tmp_path_factory.mktemp("services"))
    yield found
    found.stop()


@pytest.fixture(scope="session")
def database_url(services: ServiceUrls) -> Iterator[str]:
    """A fresh database made by the migrations, private to this test session."""
    url = create_database(services.admin_database_url, f"phonefleet_test_{_worker_index()}")
    upgrade(url)
    yield url
    dispose_engines()
    drop_database(services.admin_database_url, url)


@pytest.fixture(scope="session")
def broker_url(services: ServiceUrls) -> str:
    return f"{services.broker_base_url}/{1 + _worker_index() % 15}"


@pytest.fixture(scope="session")
def _environment(database_url: str, broker_url: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("PHONEFLEET_DATABASE_URL", "PHONEFLEET_BROKER_URL")}
    os.environ["PHONEFLEET_DATABASE_URL"] = database_url
    os.environ["PHONEFLEET_BROKER_URL"] = broker_url
    get_settings.cache_clear()
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


TABLES = ", ".join(t.name for t in metadata.sorted_tables)


@pytest.fixture
def db(_environment: None, broker_url: str) -> Iterator[None]:
    """Isolation: every table emptied and the Redis database flushed after the test."""
    yield
    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    redis.Redis.from_url(broker_url).flushdb()
    key_cache.clear()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Change settings for one test: ``configure(max_retry_count=1)``."""

    def apply(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"PHONEFLEET_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def redis_client(broker_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(broker_url)
    yield client
    client.close()


def _client(key: str | None) -> TestClient:
    reset_clients()
    client = TestClient(create_app(), raise_server_exceptions=False)
    if key is not None:
        client.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture
def client(db: None) -> Iterator[TestClient]:
    """An api client holding a Business key (device limit 1000)."""
    with _client(make_key(plan=Plan.BUSINESS)) as c:
        yield c


@pytest.fixture
def anonymous(db: None) -> Iterator[TestClient]:
    """An api client that sends no key."""
    with _client(None) as c:
        yield c


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
