"""Fault tests: each starts its own small farm (so it can break it) and injects one fault into the
running stack."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.farm import Farm, start_farm
from tests.services import ServiceUrls, drop_database

FAULT_ENV = {"PHONEFLEET_SHUTDOWN_GRACE_SECONDS": "2"}


def _redis_db() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 1 + (int(worker[2:]) if worker.startswith("gw") else 0) % 6 + 8


@pytest.fixture
def make_farm(services: ServiceUrls, tmp_path: Path) -> Iterator[Callable[..., Farm]]:
    """``make_farm({"hub-a": 2}, env={...}, admin_database_url=..., broker_base_url=...)``"""
    started: list[tuple[Farm, str]] = []

    def make(hubs: dict[str, int], *, env: dict[str, str] | None = None, **kwargs: Any) -> Farm:
        admin = kwargs.get("admin_database_url") or services.admin_database_url
        farm = start_farm(
            services, tmp_path / f"farm{len(started)}", _redis_db(), hubs, env={**FAULT_ENV, **(env or {})}, **kwargs
        )
        started.append((farm, admin))
        return farm

    yield make
    for farm, admin in started:
        farm.stop()
        with contextlib.suppress(Exception):  # the test's own server may be gone already
            drop_database(admin, farm.database_url)
