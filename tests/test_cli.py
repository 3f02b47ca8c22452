"""The `phonefleet` command as an operator uses it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.process import phonefleet_env, run_cli
from tests.services import ServiceUrls, create_database, drop_database


@pytest.fixture
def fresh_db(services: ServiceUrls) -> Iterator[str]:
    url = create_database(services.admin_database_url, "phonefleet_cli")
    yield url
    drop_database(services.admin_database_url, url)


def test_migrate_then_keys(fresh_db: str) -> None:
    env = phonefleet_env(database_url=fresh_db)
    unmigrated = run_cli("migrate", "--check", env=env)
    assert unmigrated.returncode == 1 and "run `phonefleet migrate`" in unmigrated.stderr
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "(was empty)" in first.stdout
    assert run_cli("migrate", "--check", env=env).returncode == 0
    again = run_cli("migrate", env=env)
    assert re.search(r"revision (\w+) \(was \1\)", again.stdout), again.stdout

    created = run_cli("keys", "create", "--plan", "team", "--name", "ops", env=env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("pf_") and len(key) > 40
    assert "will not be shown again" in created.stderr

    listed = run_cli("keys", "list", env=env)
    assert "team" in listed.stdout and "ops" in listed.stdout and key not in listed.stdout

    assert run_cli("keys", "revoke", "1", env=env).returncode == 0
    assert run_cli("keys", "revoke", "1", env=env).returncode == 1


def test_without_a_database_url_it_says_what_to_do() -> None:
    env = phonefleet_env()
    env.pop("PHONEFLEET_DATABASE_URL", None)
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert "PHONEFLEET_DATABASE_URL is not set" in result.stderr and "phonefleet up" in result.stderr


def test_bad_plan_is_refused() -> None:
    result = run_cli("keys", "create", "--plan", "platinum")
    assert result.returncode != 0 and "platinum" in result.stderr


def test_ping_fails_when_nothing_answers(broker_url: str) -> None:
    env = phonefleet_env(broker_url=broker_url)
    result = run_cli("ping", "--dispatcher", "--timeout", "0.5", env=env)
    assert result.returncode == 1 and "no answer" in result.stderr
    assert run_cli("ping", env=env).returncode == 2
