"""The real gateway process on TikMatrix's port: the seed's curl example, sent unchanged."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.embedded import free_port
from shared.settings import Plan
from tests.factories import make_key
from tests.process import phonefleet_env, running

pytestmark = pytest.mark.usefixtures("db")

# Copied unchanged from TikMatrix's task API page (the project's seed).
SEED_CURL = """curl -X POST http://localhost:50809/api/v1/task \\
  -H "Content-Type: application/json" \\
  -d '{
    "serials": ["device_serial_1"],
    "script_name": "post",
    "script_config": {
      "content_type": 0,
      "captions": "Regardez ma nouvelle vidéo ! #tendance #recommandé",
      "material_list": ["C:/Videos/video1.mp4"],
      "upload_wait_time": 60
    }
  }'"""


@pytest.fixture
def loopback_api(tmp_path: Path) -> Iterator[str]:
    """``phonefleet api`` on 50809 with loopback access allowed, as in the single-machine mode."""
    env = phonefleet_env(allow_loopback_without_key="true")
    with running(["api"], env=env, port=50809, log=tmp_path / "api.log"):
        yield "http://localhost:50809"


def test_seed_curl_example_unchanged(loopback_api: str) -> None:
    result = subprocess.run(["bash", "-c", SEED_CURL + " -s"], capture_output=True, text=True, timeout=30, check=True)
    payload = json.loads(result.stdout)
    assert payload["code"] == 0 and payload["message"] == "success"
    assert payload["data"]["created_count"] == 1 and len(payload["data"]["task_ids"]) == 1
    task = httpx.get(f"{loopback_api}/api/v1/task/{payload['data']['task_ids'][0]}").json()["data"]
    assert task["script_config"]["captions"] == "Regardez ma nouvelle vidéo ! #tendance #recommandé"


def test_keys_still_decide_the_plan_on_loopback(loopback_api: str) -> None:
    key = make_key(plan=Plan.STARTER)
    response = httpx.get(f"{loopback_api}/api/v1/task/stats", headers={"X-API-Key": key})
    assert response.json()["code"] == 40301
    response = httpx.get(f"{loopback_api}/api/v1/license/check")
    assert response.json()["data"]["plan_name"] == "Business"


def test_loopback_needs_a_key_by_default(tmp_path: Path) -> None:
    port = free_port()
    with running(["api", "--port", str(port)], env=phonefleet_env(), port=port, log=tmp_path / "api.log"):
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/task/stats")
        assert (response.status_code, response.json()["code"]) == (401, 40101)
        ok = httpx.get(f"http://127.0.0.1:{port}/api/v1/task/stats", headers={"Authorization": f"Bearer {make_key()}"})
        assert ok.json()["code"] == 0


def test_openapi_lists_every_endpoint_with_the_envelope(loopback_api: str) -> None:
    spec = httpx.get(f"{loopback_api}/api/v1/openapi.json").json()
    expected = {
        ("post", "/api/v1/task"),
        ("get", "/api/v1/task"),
        ("get", "/api/v1/task/{task_id}"),
        ("delete", "/api/v1/task/{task_id}"),
        ("delete", "/api/v1/task/batch"),
        ("post", "/api/v1/task/{task_id}/stop"),
        ("post", "/api/v1/task/{task_id}/retry"),
        ("post", "/api/v1/task/retry-all"),
        ("get", "/api/v1/task/stats"),
        ("get", "/api/v1/license/check"),
        ("get", "/api/v1/accounts"),
        ("post", "/api/v1/accounts"),
        ("get", "/api/v1/devices"),
    }
    present = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert expected <= present
    create = spec["paths"]["/api/v1/task"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]
    schemas = spec["components"]["schemas"]
    assert any(name.startswith("Envelope") for name in schemas)
    examples = schemas["TaskCreate"].get("examples") or []
    assert any(e.get("serials") == ["device_serial_1"] for e in examples)
