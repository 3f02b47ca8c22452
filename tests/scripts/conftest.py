"""Fixtures for script tests: a real adbutils device from the session's adb server, a ScriptContext
with a threading.Event for stop, media roots with sample files, and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adbutils
import pytest

from tests.simulator.support import device, fresh_phone, session_resources
from workers.adb.server import AdbServer
from workers.scripts.base import HubEnvironment, TaskSpec, TaskStopped
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone

# Minimal but well-formed headers: what the type sniffing and the phone's media store look at.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x11" * 2000 + b"\xff\xd9"


@dataclass
class SimpleContext:
    """A ScriptContext for tests: a real device, the task, and a stop flag."""

    device: adbutils.AdbDevice
    spec: TaskSpec
    env: HubEnvironment
    stop: threading.Event = field(default_factory=threading.Event)
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def log(self, message: str, **fields: Any) -> None:
        """Keep the line for assertions."""
        self.logs.append((message, fields))

    def checkpoint(self) -> None:
        """Raise TaskStopped once stopped."""
        if self.stop.is_set():
            raise TaskStopped()

    def sleep(self, seconds: float) -> None:
        """Wait, waking at once on stop."""
        if self.stop.wait(max(0.0, seconds)):
            raise TaskStopped()


@pytest.fixture(scope="session")
def sim_session() -> Iterator[tuple[AdbServer, Fleet]]:
    """(adb server on a free port, fleet attached to it), shared by the whole test session."""
    yield from session_resources()


@pytest.fixture
def phone(sim_session: tuple[AdbServer, Fleet]) -> Iterator[SimulatedPhone]:
    """A fresh phone: TikTok alice (current) and bob, Instagram carol (current) and dave."""
    yield from fresh_phone(sim_session[1])


@pytest.fixture
def dev(sim_session: tuple[AdbServer, Fleet], phone: SimulatedPhone) -> adbutils.AdbDevice:
    """The phone through the real adb server."""
    return device(sim_session[0], phone)


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    """A media library: videos and images, some in tag folders."""
    root = tmp_path / "media"
    for rel, data in {
        "clips/one.mp4": MP4 + b"1",
        "clips/two.mp4": MP4 + b"2",
        "cats/cat1.jpg": JPEG + b"1",
        "cats/cat2.jpg": JPEG + b"2",
        "cats/cat3.jpg": JPEG + b"3",
        "dogs/dog1.mp4": MP4 + b"dog",
        "folder/a.jpg": JPEG + b"a",
        "folder/b.jpg": JPEG + b"b",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def env(media_root: Path, tmp_path: Path) -> HubEnvironment:
    """Hub resources: the media root above and a private download cache."""
    return HubEnvironment(media_roots=(media_root,), media_cache_dir=tmp_path / "cache")


MakeContext = Callable[..., SimpleContext]


@pytest.fixture
def make_ctx(dev: adbutils.AdbDevice, phone: SimulatedPhone, env: HubEnvironment) -> MakeContext:
    """Build a context for a post/noop task on the test's phone."""
    counter = iter(range(1, 10_000))

    def make(
        config: dict[str, Any],
        *,
        script: str = "post",
        platform: str = "tiktok",
        username: str | None = None,
        packagename: str | None = None,
        environment: HubEnvironment | None = None,
    ) -> SimpleContext:
        spec = TaskSpec(
            task_id=next(counter),
            attempt=1,
            serial=phone.serial,
            script_name=script,
            script_config=config,
            platform=platform,
            username=username,
            packagename=packagename,
        )
        return SimpleContext(dev, spec, environment or env)

    return make


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server over a folder; yields (base URL, request log)."""
    served = tmp_path / "www"
    served.mkdir()
    (served / "clip.mp4").write_bytes(MP4 + b"web")
    (served / "noext").write_bytes(MP4 + b"noext")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def run_in_thread(fn: Callable[[], str]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run a script in a thread; the dict gets "result" or "error" and "ended_at"."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # the test inspects whatever it was
            outcome["error"] = exc
        outcome["ended_at"] = time.monotonic()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome
