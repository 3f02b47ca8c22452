"""The README's first command: `phonefleet up --demo` on a machine with nothing configured, the seed's
curl example sent unchanged, the task watched until it completes, Ctrl-C, and a restart that keeps
the data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx

from shared.embedded import wait_for_port
from tests.api.test_server import SEED_CURL
from tests.process import PHONEFLEET, wait_until

API = "http://127.0.0.1:50809"


def start_up(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    env.update(PHONEFLEET_DATA_DIR=str(data_dir), PHONEFLEET_LOG_FORMAT="json")
    with open(log, "ab") as out:
        process = subprocess.Popen([PHONEFLEET, "up", "--demo", "--phones", "3"], env=env, stdout=out, stderr=out)
    wait_for_port("127.0.0.1", 50809, timeout=90)
    return process


def stop_up(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def get(path: str) -> dict[str, object]:
    payload: dict[str, object] = httpx.get(f"{API}/api/v1{path}", timeout=10).json()
    return payload


def test_demo_runs_the_seed_example_and_keeps_its_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = start_up(data, tmp_path / "up.log")
    try:
        wait_until(
            lambda: any(d["serial"] == "device_serial_1" and d["online"] for d in get("/devices")["data"]["devices"]),  # type: ignore[index]
            timeout=90,
            what="the demo phone device_serial_1 online",
        )
        result = subprocess.run(
            ["bash", "-c", SEED_CURL + " -s"], capture_output=True, text=True, timeout=30, check=True
        )
        created = json.loads(result.stdout)
        assert created["code"] == 0, created
        (task_id,) = created["data"]["task_ids"]
        wait_until(lambda: get(f"/task/{task_id}")["data"]["status"] in (2, 3), timeout=120, what="task finished")  # type: ignore[index]
        task = get(f"/task/{task_id}")["data"]
        assert task["status"] == 2, task  # type: ignore[index]
        assert task["remark"].startswith("posted video to tiktok")  # type: ignore[index]

        # Usernames mode: the demo's accounts are recorded on the phones that hold them.
        accounts = get("/accounts?platform=tiktok")["data"]["accounts"]  # type: ignore[index]
        account = next(a for a in accounts if a["device"] == "device_serial_1")
        by_username = httpx.post(
            f"{API}/api/v1/task",
            json={
                "usernames": [account["username"]],
                "script_name": "post",
                "script_config": {"content_type": 0, "material_list": ["C:/Videos/video1.mp4"], "upload_wait_time": 1},
            },
            timeout=10,
        ).json()
        assert by_username["code"] == 0, by_username
        (second,) = by_username["data"]["task_ids"]
        wait_until(lambda: get(f"/task/{second}")["data"]["status"] in (2, 3), timeout=120, what="username task")  # type: ignore[index]
        assert get(f"/task/{second}")["data"]["serial"] == "device_serial_1"  # type: ignore[index]
        assert get(f"/task/{second}")["data"]["status"] == 2  # type: ignore[index]
    finally:
        assert stop_up(process) == 0, (tmp_path / "up.log").read_text()[-3000:]
    children = [
        json.loads(line)["pid"] for line in (tmp_path / "up.log").read_text().splitlines() if '"child_started"' in line
    ]
    assert len(children) == 5, "api, dispatcher, hub, flower, simulator"
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "Ctrl-C stops every child"
    process = start_up(data, tmp_path / "up2.log")
    try:
        wait_until(lambda: get(f"/task/{task_id}").get("code") == 0, timeout=60, what="api back")
        assert get(f"/task/{task_id}")["data"]["status"] == 2  # type: ignore[index]
    finally:
        assert stop_up(process) == 0
