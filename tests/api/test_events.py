"""``GET /events``: task changes and counts as server-sent events, from one poller per api process."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api.app import create_app
from api.events.service import TaskFeed
from shared.db.engine import get_engine
from shared.embedded import free_port, wait_for_port
from shared.settings import Plan
from tests.factories import make_key
from tests.process import PHONEFLEET, phonefleet_env

pytestmark = pytest.mark.usefixtures("db")


@dataclass
class Server:
    url: str
    app: FastAPI
    key: str

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = httpx.request(
            method, f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {self.key}"}, timeout=10, **kwargs
        )
        payload: dict[str, Any] = response.json()
        assert payload["code"] == 0, payload
        return payload

    def feed(self) -> TaskFeed:
        feed: TaskFeed = self.app.state.task_feed
        return feed


@pytest.fixture
def server() -> Iterator[Server]:
    """The api served by uvicorn in a thread: streaming responses need a real server."""
    app = create_app()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", port, timeout=10)
    yield Server(url=f"http://127.0.0.1:{port}", app=app, key=make_key(plan=Plan.BUSINESS))
    # Open streams never end by themselves; a server in a thread has no signal to notice.
    instance.should_exit = instance.force_exit = True
    thread.join(timeout=10)


@dataclass
class Stream:
    """An event stream read in a thread; ``expect`` waits (with a deadline) for a matching event."""

    response: httpx.Response
    events: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    seen: list[tuple[str, Any]] = field(default_factory=list)

    def read(self) -> None:
        name, data = "message", []
        try:
            for line in self.response.iter_lines():
                if line.startswith("event:"):
                    name = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data.append(line.partition(":")[2].strip())
                elif line == "":
                    if data:
                        self.events.put((name, json.loads("\n".join(data))))
                    name, data = "message", []
        except (httpx.HTTPError, RuntimeError):
            pass
        self.events.put(("closed", None))

    def expect(self, name: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {name} event matching within {timeout}s; seen {self.seen}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if event[0] == name and where(event[1]):
                return event[1]
            if event[0] == "closed" and name != "closed":
                raise AssertionError(f"stream closed before a {name} event; seen {self.seen}")


@pytest.fixture
def open_stream() -> Iterator[Callable[..., Stream]]:
    clients: list[httpx.Client] = []

    def make(url: str, *, headers: dict[str, str] | None = None) -> Stream:
        client = httpx.Client(timeout=httpx.Timeout(10, read=30))
        clients.append(client)
        response = client.send(client.build_request("GET", url, headers=headers), stream=True)
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        threading.Thread(target=stream.read, daemon=True).start()
        return stream

    yield make
    for client in clients:
        client.close()


def test_counts_first_then_every_change(server: Server, open_stream: Callable[..., Stream]) -> None:
    stream = open_stream(f"{server.url}/api/v1/events", headers={"Authorization": f"Bearer {server.key}"})
    assert stream.expect("stats") == {"total": 0, "pending": 0, "running": 0, "completed": 0, "failed": 0}

    # A phone no hub has reported: the task waits, pending.
    body = {"serials": ["EVENTS-1"], "script_name": "noop", "script_config": {}, "source": "ui"}
    (task_id,) = server.call("POST", "/task", json=body)["data"]["task_ids"]
    created = stream.expect("task", lambda t: t["id"] == task_id)
    assert (created["status"], created["serial"], created["source"], created["remark"]) == (0, "EVENTS-1", "ui", "")
    assert created["updated_at"] and created["script_config"] == {}
    stream.expect("stats", lambda s: s["pending"] == 1 and s["total"] == 1)

    server.call("POST", f"/task/{task_id}/stop")
    stopped = stream.expect("task", lambda t: t["id"] == task_id and t["status"] == 3)
    assert stopped["remark"] == "stopped by user" and stopped["updated_at"] > created["updated_at"]
    stream.expect("stats", lambda s: s["failed"] == 1 and s["pending"] == 0)

    server.call("DELETE", f"/task/{task_id}")
    stream.expect("stats", lambda s: s["total"] == 0)


def test_the_key_may_come_in_the_query(server: Server, open_stream: Callable[..., Stream]) -> None:
    stream = open_stream(f"{server.url}/api/v1/events?key={server.key}")
    stream.expect("stats")
    refused = httpx.get(f"{server.url}/api/v1/events?key=pf_wrong", timeout=10)
    assert refused.status_code == 401 and refused.json()["code"] == 40101


def test_authenticated_like_every_endpoint(anonymous: TestClient) -> None:
    payload = anonymous.get("/api/v1/events").json()
    assert payload["code"] == 40101 and "no API key" in payload["message"]
    starter = anonymous.get("/api/v1/events", headers={"X-API-Key": make_key(plan=Plan.STARTER)})
    assert (starter.status_code, starter.json()["code"]) == (403, 40301)


def test_one_poller_for_every_stream_and_none_without(server: Server, open_stream: Callable[..., Stream]) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    streams = [open_stream(f"{server.url}/api/v1/events", headers=headers) for _ in range(3)]
    for stream in streams:
        stream.expect("stats")
    feed = server.feed()
    assert feed.subscriber_count == 3
    assert feed._poller is not None and not feed._poller.done()

    body = {"serials": ["EVENTS-2"], "script_name": "noop", "script_config": {}}
    (task_id,) = server.call("POST", "/task", json=body)["data"]["task_ids"]
    for stream in streams:
        stream.expect("task", lambda t: t["id"] == task_id)

    for stream in streams:
        stream.response.close()
    deadline = time.monotonic() + 10
    while feed.subscriber_count or feed._poller is not None:
        assert time.monotonic() < deadline, "the poller outlived its last subscriber"
        time.sleep(0.05)


def test_a_burst_beyond_one_poll_becomes_resync(server: Server, open_stream: Callable[..., Stream]) -> None:
    server.app.state.task_feed = TaskFeed(max_tasks_per_poll=3, poll_seconds=0.2)
    stream = open_stream(f"{server.url}/api/v1/events", headers={"Authorization": f"Bearer {server.key}"})
    stream.expect("stats")
    body = {"serials": [f"BURST-{i}" for i in range(5)], "script_name": "noop", "script_config": {}}
    server.call("POST", "/task", json=body)
    stream.expect("resync")
    stream.expect("stats", lambda s: s["pending"] == 5)
    assert not [e for e in stream.seen if e[0] == "task"], "a burst is one resync, not a partial list"


def test_a_database_outage_is_told_once_in_the_envelopes_words() -> None:
    feed = TaskFeed(poll_seconds=0.05)
    calls = 0

    def failing_poll(since: Any) -> Any:
        nonlocal calls
        calls += 1
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    feed._poll = failing_poll  # type: ignore[method-assign]

    async def scenario() -> list[tuple[str, str]]:
        async with feed.subscribe() as subscription:
            received = []
            while calls < 4:
                event = await subscription.next(idle_seconds=0.05)
                if event is not None:
                    received.append((event.name, event.data))
            return received

    # In a thread of its own: the browser tests' Playwright keeps an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        received = pool.submit(asyncio.run, scenario()).result(timeout=10)
    assert len(received) == 1, received
    name, data = received[0]
    envelope = json.loads(data)
    assert name == "error" and envelope["code"] == 50301 and "unreachable (database)" in envelope["message"]


def test_updated_at_moves_only_when_the_row_changes(server: Server) -> None:
    body = {"serials": ["EVENTS-3"], "script_name": "noop", "script_config": {}}
    (task_id,) = server.call("POST", "/task", json=body)["data"]["task_ids"]
    engine = get_engine()

    def stamp() -> Any:
        with engine.connect() as conn:
            return conn.execute(text("SELECT updated_at FROM task WHERE id = :id"), {"id": task_id}).scalar_one()

    created = stamp()
    with engine.begin() as conn:
        conn.execute(text("UPDATE task SET remark = remark WHERE id = :id"), {"id": task_id})
    assert stamp() == created, "a write that changes nothing keeps the stamp"
    with engine.begin() as conn:
        conn.execute(text("UPDATE task SET remark = 'touched' WHERE id = :id"), {"id": task_id})
    assert stamp() > created


def test_documented_in_openapi(anonymous: TestClient) -> None:
    spec = anonymous.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {p["name"] for p in operation["parameters"]} == {"key"}
    assert "resync" in operation["description"] and "?key=" in operation["description"]
    assert "/" not in spec["paths"], "the dashboard's page is not part of the API"


def test_open_streams_do_not_hold_the_api_at_shutdown(database_url: str, broker_url: str, tmp_path: Path) -> None:
    """uvicorn waits for open responses before it exits; the feed ends its streams once told to stop."""
    port = free_port()
    env = phonefleet_env(database_url=database_url, broker_url=broker_url)
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen([PHONEFLEET, "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        key = make_key(plan=Plan.PRO)
        with httpx.Client(timeout=httpx.Timeout(10, read=30)) as client:
            request = client.build_request(
                "GET", f"http://127.0.0.1:{port}/api/v1/events", headers={"Authorization": f"Bearer {key}"}
            )
            response = client.send(request, stream=True)
            stream = Stream(response)
            threading.Thread(target=stream.read, daemon=True).start()
            stream.expect("stats")
            process.send_signal(signal.SIGTERM)
            stream.expect("closed", timeout=10)
        # uvicorn re-raises the signal it handled once it has shut down cleanly.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert "Finished server process" in (tmp_path / "api.log").read_text()
