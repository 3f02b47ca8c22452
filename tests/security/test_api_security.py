"""What the api refuses to leak or allow: keys in logs, cross-origin calls, an open Flower."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from shared.embedded import free_port
from shared.settings import Plan
from tests.factories import make_key
from tests.process import phonefleet_env, run_cli, running

pytestmark = pytest.mark.usefixtures("db")


def test_keys_never_reach_the_logs(tmp_path: Path) -> None:
    key = make_key(plan=Plan.PRO)
    wrong = "pf_" + "W" * 43
    port = free_port()
    log = tmp_path / "api.log"
    env = phonefleet_env(log_level="DEBUG")
    with running(["api", "--port", str(port)], env=env, port=port, log=log):
        base = f"http://127.0.0.1:{port}/api/v1"
        httpx.get(f"{base}/task/stats", headers={"Authorization": f"Bearer {key}"})
        httpx.get(f"{base}/task/stats", headers={"X-API-Key": wrong})
        httpx.post(f"{base}/task", headers={"Authorization": f"Bearer {key}"}, content=b"{broken")
        httpx.get(f"{base}/task/1", params={"key": key})
    text = log.read_text()
    assert text, "the api wrote its log"
    assert key not in text and wrong not in text and key[3:20] not in text


def test_cross_origin_calls_are_off_by_default(client: TestClient) -> None:
    response = client.get("/api/v1/task/stats", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/v1/task",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cross_origin_calls_only_from_configured_origins(configure: Any) -> None:
    from api.app import create_app

    configure(cors_origins="https://ops.example.com")
    with TestClient(create_app()) as cors_client:
        cors_client.headers["Authorization"] = f"Bearer {make_key()}"
        allowed = cors_client.get("/api/v1/task/stats", headers={"Origin": "https://ops.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://ops.example.com"
        other = cors_client.get("/api/v1/task/stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_flower_needs_a_password_beyond_loopback(broker_url: str) -> None:
    env = phonefleet_env(broker_url=broker_url)
    env.pop("PHONEFLEET_FLOWER_BASIC_AUTH", None)
    result = run_cli("flower", "--address", "0.0.0.0", env=env, timeout=30)
    assert result.returncode == 2 and "PHONEFLEET_FLOWER_BASIC_AUTH" in result.stderr


def test_flower_with_basic_auth_refuses_strangers(broker_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = phonefleet_env(broker_url=broker_url, flower_basic_auth="ops:correct-horse")
    with running(["flower", "--port", str(port)], env=env, port=port, log=tmp_path / "flower.log"):
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/", auth=("ops", "wrong")).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/", auth=("ops", "correct-horse")).status_code == 200
