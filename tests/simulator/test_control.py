"""The control API and client, in-process and from a simulator started as another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.simulator.support import wait_until
from workers.adb.server import AdbServer, free_port
from workers.simulator.client import SimulatorClient, SimulatorError
from workers.simulator.fleet import Fleet
from workers.simulator.phone import SimulatedPhone


@pytest.fixture
def client(fleet: Fleet) -> Iterator[SimulatorClient]:
    port = fleet.serve_control()
    with SimulatorClient(f"http://127.0.0.1:{port}") as c:
        yield c


def test_client_steers_a_phone(client: SimulatorClient, phone: SimulatedPhone, adb_server: AdbServer) -> None:
    assert phone.serial in client.serials()
    info = client.phone(phone.serial)
    assert info.online and info.model == "Pixel 7"
    tiktok = next(app for app in info.apps if app.platform == "tiktok")
    assert tiktok.accounts == ["alice", "bob"] and tiktok.current == "alice"
    client.add_account(phone.serial, "zoe", platform="instagram", current=True)
    assert phone.app(platform="instagram").current == "zoe"
    client.remove_account(phone.serial, "zoe", platform="instagram")
    client.install_clone(phone.serial, "com.instagram.android.clone", "instagram", ["ivy"])
    assert phone.apps["com.instagram.android.clone"].accounts == ["ivy"]
    client.write_file(phone.serial, "/sdcard/Download/a.txt", b"abc")
    assert client.read_file(phone.serial, "/sdcard/Download/a.txt") == b"abc"
    [entry] = [f for f in client.files(phone.serial) if f.path.endswith("a.txt")]
    assert entry.size == 3 and entry.path == "/storage/emulated/0/Download/a.txt"
    assert client.screen(phone.serial)["package"] == "com.google.android.apps.nexuslauncher"
    assert client.posts(phone.serial) == []
    client.set_upload_seconds(phone.serial, 2.5)
    assert phone.app().upload_seconds == 2.5
    with pytest.raises(SimulatorError, match="404"):
        client.phone("127.0.0.1:1")
    with pytest.raises(SimulatorError, match="400"):
        client.inject(phone.serial, "crash", package="no.such.package")


def test_client_faults(client: SimulatorClient, phone: SimulatedPhone, fleet: Fleet) -> None:
    client.inject(phone.serial, "slow", bytes_per_second=1000)
    client.inject(phone.serial, "banned", platform="tiktok", account="bob")
    faults = client.phone(phone.serial).faults
    assert faults["slow"] == {"bytes_per_second": 1000}
    assert faults["banned"] == {"com.zhiliaoapp.musically": ["bob"]}
    client.inject(phone.serial, "unplug")
    wait_until(lambda: fleet.adb_states().get(phone.serial) != "device", what="unplugged")
    client.clear(phone.serial, "unplug")  # replugs and reattaches
    assert fleet.adb_states()[phone.serial] == "device"
    client.clear(phone.serial)
    assert client.phone(phone.serial).faults == {}


def test_simulator_in_another_process(adb_server: AdbServer, tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    control = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workers.simulator",
            "--phones",
            "3",
            "--adb-port",
            str(adb_server.port),
            "--control-port",
            str(control),
            "--ready-file",
            str(ready),
            "--log-level",
            "WARNING",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        wait_until(ready.exists, timeout=30, what="ready file")
        summary = json.loads(ready.read_text())
        assert len(summary["serials"]) == 3 and summary["adb_port"] == adb_server.port
        states = {i.serial: i.state for i in adb_server.client().list()}
        assert all(states.get(serial) == "device" for serial in summary["serials"])
        with SimulatorClient(summary["control_url"]) as remote:
            serial = summary["serials"][0]
            assert remote.phone(serial).apps[0].accounts == ["tt0000a"]
            remote.inject(serial, "hang")
            assert remote.phone(serial).faults == {"hang": True}
            remote.clear(serial)
            added = remote.add_phones(1)
            assert len(remote.phones()) == 4
            device = adb_server.client().device(added[0].serial)
            assert device.shell("getprop ro.product.model") == "Pixel 7"
    finally:
        process.terminate()
        process.wait(20)
    # it detached its phones on the way out
    states = {i.serial: i.state for i in adb_server.client().list()}
    assert not any(serial in states for serial in summary["serials"])
