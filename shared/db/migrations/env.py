"""Alembic environment: online migrations only, against the URL given by shared.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from shared.db.models import metadata

config = context.config


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set; run migrations through `phonefleet migrate`"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            # Replicas that start together wait here instead of racing through the same DDL.
            connection.execute(text("SELECT pg_advisory_xact_lock(7254100917)"))
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `phonefleet migrate`")
run_migrations_online()
