"""An island: a network namespace of its own, linked to this host by a veth pair that a test can cut
and heal. A hub worker, its adb server and its simulated phones run inside it."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

from shared.embedded import free_port
from tests.e2e.farm import Farm, Process


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Island:
    """``with Island("name") as island:`` — the namespace and links exist inside the block."""

    def __init__(self, name: str) -> None:
        self.name = name
        n = zlib.crc32(name.encode()) % 200 + 20
        self.host_ip, self.island_ip = f"10.213.{n}.1", f"10.213.{n}.2"
        self.host_if, self.island_if = f"vh{n}", f"vi{n}"
        self.processes: list[Process] = []
        self.serials: list[str] = []

    def __enter__(self) -> Island:
        self._cleanup()
        ip("netns", "add", self.name)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.island_if)
        ip("link", "set", self.island_if, "netns", self.name)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        self._in("ip", "addr", "add", f"{self.island_ip}/30", "dev", self.island_if)
        self._in("ip", "link", "set", self.island_if, "up")
        self._in("ip", "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.stop()
        self._cleanup()

    def _in(self, *args: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *args], check=True, capture_output=True, timeout=10)

    def _cleanup(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10, check=False)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10, check=False)

    def start_hub(self, farm: Farm, hub: str, *, phones: int) -> None:
        """Simulated phones, their adb server and a hub worker, all inside the island."""
        adb_port = free_port()
        ready = farm.logs / f"{hub}-simulator.json"
        prefix = ["ip", "netns", "exec", self.name]
        env = farm.env(
            PHONEFLEET_HUB_NAME=hub,
            PHONEFLEET_ADB_PORT=str(adb_port),
            PHONEFLEET_DATA_DIR=str(farm.logs / f"data-{hub}"),
        )
        env.pop("PHONEFLEET_DATABASE_URL", None)
        env["PHONEFLEET_BROKER_URL"] = farm.broker_url
        simulator = Process(
            f"{hub}-simulator",
            ["simulate", "--phones", str(phones), "--adb-port", str(adb_port), "--ready-file", str(ready)],
            env,
            farm.logs / f"{hub}-simulator.log",
            prefix=prefix,
        ).start()
        self.processes.append(simulator)
        farm.wait(ready.exists, timeout=60, what="island simulator ready")
        summary: dict[str, Any] = json.loads(ready.read_text())
        self.serials = [p["serialno"] for p in summary["phones"]]
        worker = Process(hub, ["worker", "--hub", hub], env, farm.logs / f"{hub}.log", prefix=prefix).start()
        self.processes.append(worker)
        self.hub_log = farm.logs / f"{hub}.log"

    def runs(self) -> list[dict[str, Any]]:
        events = []
        for line in Path(self.hub_log).read_text(errors="replace").splitlines():
            if '"task_started"' in line or '"task_ended"' in line:
                events.append(json.loads(line))
        return events

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")
