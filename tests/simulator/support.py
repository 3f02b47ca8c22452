"""Test support shared by tests/simulator and tests/scripts: one adb server and one fleet per session.

Both directories' conftests expose these fixtures; the objects behind them are process-wide
singletons, so a session that runs both directories still starts one adb server, on a free port,
and kills it (``adb -P PORT kill-server``) when the last user is done.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import adbutils

from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone

T = TypeVar("T")

_lock = threading.Lock()
_users = 0
_server: AdbServer | None = None
_fleet: Fleet | None = None
_saved_env: str | None = None
_tmp: tempfile.TemporaryDirectory[str] | None = None


def acquire() -> tuple[AdbServer, Fleet]:
    """The session's adb server and fleet (started by the first caller)."""
    global _users, _server, _fleet, _saved_env, _tmp
    with _lock:
        if _server is None or _fleet is None:
            server = AdbServer().start()
            _tmp = tempfile.TemporaryDirectory(prefix="pf-adb-")
            _saved_env = os.environ.get("ADBUTILS_ADB_PATH")
            # If adbutils ever decides to start a server itself, it starts ours, on our port.
            os.environ["ADBUTILS_ADB_PATH"] = str(server.wrapper(Path(_tmp.name)))
            _server = server
            _fleet = Fleet(server.port).start()
        _users += 1
        return _server, _fleet


def release() -> None:
    """Drop one user; the last one stops the fleet and kills the server."""
    global _users, _server, _fleet, _tmp
    with _lock:
        _users -= 1
        if _users > 0:
            return
        if _fleet is not None:
            _fleet.stop()
        if _server is not None:
            _server.kill()
        if _saved_env is None:
            os.environ.pop("ADBUTILS_ADB_PATH", None)
        else:
            os.environ["ADBUTILS_ADB_PATH"] = _saved_env
        if _tmp is not None:
            _tmp.cleanup()
        _server, _fleet, _tmp = None, None, None


def session_resources() -> Iterator[tuple[AdbServer, Fleet]]:
    """Generator body for the session fixtures."""
    resources = acquire()
    try:
        yield resources
    finally:
        release()


def fresh_phone(fleet: Fleet, **options: Any) -> Iterator[SimulatedPhone]:
    """A new phone attached to the session's adb server (TikTok: alice, bob; Instagram: carol, dave)."""
    phone = SimulatedPhone(
        tiktok_accounts=["alice", "bob"], instagram_accounts=["carol", "dave"], upload_seconds=0.3, **options
    )
    fleet.add_phone(phone)
    try:
        yield phone
    finally:
        fleet.remove(phone)


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def device(server: AdbServer, phone: SimulatedPhone) -> adbutils.AdbDevice:
    """An adbutils device for the phone, through the session's server."""
    return server.client(socket_timeout=20).device(phone.serial)
