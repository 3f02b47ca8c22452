"""The schema comes from the migrations alone, and matches the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from shared.db.migrate import alembic_config, current, downgrade, upgrade
from shared.db.models import metadata
from tests.services import ServiceUrls, create_database, drop_database


@pytest.fixture
def scratch_db(services: ServiceUrls) -> Iterator[str]:
    url = create_database(services.admin_database_url, "phonefleet_migrations")
    yield url
    drop_database(services.admin_database_url, url)


def test_models_match_the_migrated_schema(scratch_db: str) -> None:
    upgrade(scratch_db)
    engine = create_engine(scratch_db)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def head(url: str) -> str:
    revision = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert revision is not None
    return revision


def test_one_line_of_revisions(scratch_db: str) -> None:
    assert len(ScriptDirectory.from_config(alembic_config(scratch_db)).get_heads()) == 1


def test_downgrade_to_nothing_and_back(scratch_db: str) -> None:
    upgrade(scratch_db)
    assert current(scratch_db) == head(scratch_db)
    downgrade(scratch_db, "base")
    assert current(scratch_db) is None
    upgrade(scratch_db)
    assert current(scratch_db) == head(scratch_db)


def test_upgrade_twice_is_harmless(scratch_db: str) -> None:
    upgrade(scratch_db)
    upgrade(scratch_db)
    assert current(scratch_db) == head(scratch_db)


def test_task_counts_follow_inserts_updates_and_deletes(scratch_db: str) -> None:
    upgrade(scratch_db)
    engine = create_engine(scratch_db)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO task (serial, platform, script_name, script_config, source) "
                "SELECT 's' || g, 'tiktok', CASE WHEN g % 2 = 0 THEN 'post' ELSE 'noop' END, '{}', "
                "CASE WHEN g % 3 = 0 THEN 'ui' ELSE 'api' END FROM generate_series(1, 600) g"
            )
        )
        conn.execute(text("UPDATE task SET status = 2 WHERE id <= 200"))
        conn.execute(text("UPDATE task SET remark = 'touched' WHERE id <= 400"))
        conn.execute(text("UPDATE task SET status = 3 WHERE id BETWEEN 150 AND 250"))
        conn.execute(text("DELETE FROM task WHERE id > 550"))
    with engine.connect() as conn:
        counted = set(
            conn.execute(
                text("SELECT status, script_name, source, sum(n) FROM task_count GROUP BY 1, 2, 3 HAVING sum(n) <> 0")
            ).all()
        )
        actual = set(
            conn.execute(text("SELECT status, script_name, source, count(*) FROM task GROUP BY 1, 2, 3")).all()
        )
    engine.dispose()
    assert counted == actual
