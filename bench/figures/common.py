"""What several figures share: creating noop tasks through the api, and the farm of phones."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench.context import Context
from bench.stack import HubHandle


def noop_body(serials: list[str], duration: float = 0.0) -> dict[str, Any]:
    return {"serials": serials, "script_name": "noop", "script_config": {"duration": duration}}


def create(client: httpx.Client, serials: list[str], duration: float = 0.0) -> list[int]:
    """POST /task for ``serials`` (one noop task each); the new task ids."""
    response = client.post("/task", json=noop_body(serials, duration))
    payload = response.json()
    if payload.get("code") != 0:
        raise RuntimeError(f"POST /task answered {response.status_code}: {payload}")
    ids: list[int] = payload["data"]["task_ids"]
    return ids


def create_many(client: httpx.Client, serials: list[str], duration: float = 0.0, chunk: int = 1000) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(serials), chunk):
        ids.extend(create(client, serials[start : start + chunk], duration))
    return ids


def farm(ctx: Context) -> list[HubHandle]:
    """The farm of the latency, throughput and stop figures: ``farm_hubs`` hubs of ``farm_phones_per_hub``
    phones, started once and kept until a figure needs the machine for something else."""
    hubs: list[HubHandle] | None = ctx.state.get("farm")
    if hubs is not None:
        return hubs
    sizes = ctx.sizes
    began = time.monotonic()
    hubs = []
    for index in range(sizes.farm_hubs):
        name = f"farm-{chr(97 + index)}"
        ctx.progress(f"starting hub {name} with {sizes.farm_phones_per_hub} phones")
        hubs.append(ctx.stack.start_hub(name, sizes.farm_phones_per_hub))
    serials = [s for hub in hubs for s in hub.serials]
    for hub in hubs:
        ctx.stack.wait_hub_started(hub)
    ctx.stack.wait_online(serials, timeout=120 + len(serials) * 0.2)
    ctx.progress(f"farm ready: {len(serials)} phones online on {len(hubs)} hubs in {time.monotonic() - began:.1f}s")
    ctx.state["farm"] = hubs
    return hubs


def stop_farm(ctx: Context) -> None:
    hubs: list[HubHandle] | None = ctx.state.pop("farm", None)
    for hub in hubs or []:
        ctx.stack.stop_hub(hub.name)


def warm_up_phones(ctx: Context, client: httpx.Client, serials: list[str]) -> None:
    """One noop task per phone, so every hub thread, queue and connection exists before measuring."""
    ids = create_many(client, serials)
    ctx.stack.wait_done(ids, timeout=60 + len(ids) * 0.1)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak) and thread count of a process, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
        elif key == "Threads":
            out[key] = int(value)
    return out
