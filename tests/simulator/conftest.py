"""Fixtures for the simulator tests: the session's adb server and fleet, a fresh phone per test."""

from __future__ import annotations

from collections.abc import Iterator

import adbutils
import pytest

from tests.simulator.support import device, fresh_phone, session_resources
from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone


@pytest.fixture(scope="session")
def sim_session() -> Iterator[tuple[AdbServer, Fleet]]:
    """(adb server on a free port, fleet attached to it), shared by the whole test session."""
    yield from session_resources()


@pytest.fixture(scope="session")
def adb_server(sim_session: tuple[AdbServer, Fleet]) -> AdbServer:
    """The session's own adb server (never 5037)."""
    return sim_session[0]


@pytest.fixture(scope="session")
def fleet(sim_session: tuple[AdbServer, Fleet]) -> Fleet:
    """The session's fleet."""
    return sim_session[1]


@pytest.fixture
def phone(fleet: Fleet) -> Iterator[SimulatedPhone]:
    """A fresh phone for one test, detached and stopped afterwards."""
    yield from fresh_phone(fleet)


@pytest.fixture
def dev(adb_server: AdbServer, phone: SimulatedPhone) -> adbutils.AdbDevice:
    """The phone as adbutils sees it."""
    return device(adb_server, phone)
