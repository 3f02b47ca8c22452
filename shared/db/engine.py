"""Engines and sessions. One engine per process and URL; sessions are short and explicit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import Settings, get_settings

_engines: dict[str, Engine] = {}
_sessionmakers: dict[Engine, sessionmaker[Session]] = {}
_lock = threading.Lock()


def database_url(settings: Settings | None = None) -> str:
    """The configured database URL, or an error that says how to configure one."""
    url = (settings or get_settings()).database_url
    if not url:
        raise RuntimeError(
            "PHONEFLEET_DATABASE_URL is not set. Set it to postgresql://USER:PASSWORD@HOST:5432/DB, "
            "or run `phonefleet up` to start an embedded PostgreSQL."
        )
    return url


def get_engine(url: str | None = None, *, pool_size: int = 20) -> Engine:
    """The process's engine for ``url`` (default: the configured database).

    ``pool_size`` connections are kept open. It is above the concurrency the api sees in practice: a
    connection opened beyond it (overflow) is closed when returned, and opening one costs PostgreSQL
    a backend start, so a pool smaller than the concurrency reconnects on most requests."""
    url = url or database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_recycle=1800,
                # Fail fast when PostgreSQL is down so the api can answer 50301 instead of hanging.
                connect_args={"connect_timeout": 3},
            )
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and after fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _sessionmakers.clear()


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """The sessionmaker of ``engine`` (default: the configured database's), made once per engine."""
    engine = engine or get_engine()
    factory = _sessionmakers.get(engine)
    if factory is None:
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with _lock:
            factory = _sessionmakers.setdefault(engine, factory)
    return factory


@contextmanager
def transaction(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work commits when the block ends, or rolls back if it raises."""
    with session_factory(engine)() as session, session.begin():
        yield session
