"""Webhooks through the farm: a task's end pushed to a receiver, signed, retried until it answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.keys.service import set_webhook
from shared.db.engine import transaction
from shared.dispatcher.webhooks import SIGNATURE_HEADER, verify
from tests.e2e.farm import Farm


@dataclass
class Receiver:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP endpoint that records what it gets; paths in ``failures_left`` answer 500 that often first."""
    server: ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            left = record.failures_left.get(self.path, 0)
            if left:
                record.failures_left[self.path] = left - 1
            self.send_response(500 if left else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()


def test_task_end_is_pushed_signed_and_retried(farm: Farm, receiver: Receiver) -> None:
    receiver.failures_left["/flaky"] = 2
    serial = farm.hubs["hub-b"].serials[4]
    (task_id,) = farm.create(
        serials=[serial], script_name="noop", script_config={"duration": 0}, webhook_url=f"{receiver.url}/flaky"
    )
    farm.wait_tasks([task_id])

    def delivered() -> dict[str, Any] | None:
        deliveries = farm.call("GET", f"/task/{task_id}/webhooks")["data"]["deliveries"]
        return deliveries[0] if deliveries and deliveries[0]["status"] == "delivered" else None

    delivery = farm.wait(delivered, timeout=30, what="webhook delivered")
    assert (delivery["attempts"], delivery["last_status_code"]) == (3, 204)
    hits = [r for r in receiver.requests if r["path"] == "/flaky"]
    assert len(hits) == 3
    for hit in hits:
        assert verify(farm.webhook_secret, hit["body"], hit["headers"][SIGNATURE_HEADER])
        assert not verify("whsec_wrong", hit["body"], hit["headers"][SIGNATURE_HEADER])
    payload = json.loads(hits[-1]["body"])
    assert payload["event"] == "task.completed"
    assert (payload["task"]["id"], payload["task"]["status"], payload["task"]["serial"]) == (task_id, 2, serial)
    assert hits[-1]["headers"]["X-Phonefleet-Delivery"] == str(delivery["id"])


def test_key_webhook_reports_failures(farm: Farm, receiver: Receiver) -> None:
    with farm.engine.connect() as conn:
        key_id = conn.exec_driver_sql("SELECT id FROM api_key WHERE name = 'e2e'").scalar_one()
    with transaction(farm.engine) as session:
        assert set_webhook(session, int(key_id), f"{receiver.url}/key") == farm.webhook_secret
    try:
        serial = farm.hubs["hub-b"].serials[5]
        (task_id,) = farm.create(serials=[serial], script_name="noop", script_config={"fail_with": "boom"})
        farm.wait_tasks([task_id])
        farm.wait(lambda: any(r["path"] == "/key" for r in receiver.requests), timeout=30, what="key webhook")
        (hit,) = [r for r in receiver.requests if r["path"] == "/key"]
        payload = json.loads(hit["body"])
        assert (payload["event"], payload["task"]["remark"]) == ("task.failed", "boom")
    finally:
        with transaction(farm.engine) as session:
            set_webhook(session, int(key_id), None)
