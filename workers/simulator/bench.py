"""Measure how many simulated phones one process drives: ``python -m workers.simulator.bench --phones 1000``.

Starts a private adb server, starts and attaches the phones, then runs rounds of shell commands on
every phone through adbutils (a thread pool, like a hub worker's) and prints timings as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workers.adb.server import AdbServer
from workers.simulator.fleet import Fleet


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(phones: int, threads: int, rounds: int) -> dict[str, Any]:
    """Run the benchmark and return its figures."""
    figures: dict[str, Any] = {"phones": phones, "threads": threads}
    with AdbServer() as server:
        fleet = Fleet(server.port).start()
        try:
            started = time.monotonic()
            made = fleet.add_phones(phones, attach=False, accounts_per_app=1)
            figures["start_seconds"] = round(time.monotonic() - started, 2)
            started = time.monotonic()
            fleet.attach(made, timeout=300)
            figures["attach_seconds"] = round(time.monotonic() - started, 2)
            client = server.client(socket_timeout=60)
            devices = [client.device(phone.serial) for phone in made]
            for command in ("getprop ro.product.model", "uiautomator dump /dev/tty"):
                latencies: list[float] = []

                def one(device: Any, command: str = command, latencies: list[float] = latencies) -> None:
                    begun = time.monotonic()
                    result = device.shell2(command, timeout=60, v2=True)
                    assert result.returncode == 0
                    latencies.append(time.monotonic() - begun)

                started = time.monotonic()
                with ThreadPoolExecutor(threads) as pool:
                    for _ in range(rounds):
                        list(pool.map(one, devices))
                elapsed = time.monotonic() - started
                figures[command.split()[0]] = {
                    "commands": len(latencies),
                    "per_second": round(len(latencies) / elapsed, 1),
                    "p50_ms": round(statistics.median(latencies) * 1000, 1),
                    "p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
                }
            states = fleet.adb_states()
            figures["adb_devices_online"] = sum(1 for phone in made if states.get(phone.serial) == "device")
            figures["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        finally:
            fleet.stop()
    return figures


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(measure(args.phones, args.threads, args.rounds), indent=2))


if __name__ == "__main__":
    main()
