"""The end-to-end farm, shared by the tests of this folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.farm import Farm, start_farm
from tests.services import ServiceUrls, drop_database


def _redis_db() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 8 + (int(worker[2:]) if worker.startswith("gw") else 0) % 8


@pytest.fixture(scope="session")
def farm(services: ServiceUrls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """Two hubs with 6 simulated phones each, every phone logged in to 2 TikTok and 2 Instagram accounts."""
    started = start_farm(services, tmp_path_factory.mktemp("farm"), _redis_db(), {"hub-a": 6, "hub-b": 6})
    yield started
    started.stop()
    drop_database(services.admin_database_url, started.database_url)
