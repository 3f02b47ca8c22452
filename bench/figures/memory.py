"""Hub worker memory: VmRSS of a ``phonefleet worker`` process with 200 attached phones, against the
same process with none.

The hub starts with an empty adb server and settles; its RSS is the median of five reads over two
seconds. Then the phones are attached, every phone runs two rounds of noop tasks (so each phone's
queue, thread and connections exist), the hub settles again, and RSS is read the same way.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.figures.common import create_many, rss_kib
from bench.result import FigureResult, Row
from bench.stats import median

NAME = "memory"
SETTLE_SECONDS = 3.0


def _rss(pid: int) -> dict[str, float]:
    reads = []
    for _ in range(5):
        reads.append(rss_kib(pid))
        time.sleep(0.5)
    return {
        "rss_mib": round(median([r["VmRSS"] for r in reads]) / 1024, 2),
        "peak_mib": round(max(r["VmHWM"] for r in reads) / 1024, 2),
        "threads": float(reads[-1]["Threads"]),
    }


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    phones = sizes.memory_phones
    hub = stack.start_hub("memory", 0)
    try:
        stack.wait_hub_started(hub)
        time.sleep(SETTLE_SECONDS)
        idle = _rss(hub.process.pid)
        ctx.progress(f"0 phones: {idle['rss_mib']:.1f} MiB RSS, {idle['threads']:.0f} threads")
        stack.add_phones(hub, phones)
        stack.wait_online(hub.serials, timeout=120 + phones * 0.2)
        attached = _rss(hub.process.pid)
        ctx.progress(f"{phones} phones attached: {attached['rss_mib']:.1f} MiB")
        _, key = stack.make_key("bench-memory")
        with stack.client(key) as client:
            for _ in range(2):
                ids = create_many(client, hub.serials)
                stack.wait_done(ids, timeout=60 + phones * 0.2)
        time.sleep(SETTLE_SECONDS)
        loaded = _rss(hub.process.pid)
        ctx.progress(f"{phones} phones after two rounds of tasks: {loaded['rss_mib']:.1f} MiB")
    finally:
        stack.stop_hub(hub.name)
    per_phone = (loaded["rss_mib"] - idle["rss_mib"]) / phones
    result.rows.append(
        Row(
            key="hub_memory",
            figure=f"hub worker memory per attached phone ({phones} phones, after 2 rounds of tasks)",
            value=per_phone,
            unit="MiB/phone",
            baseline=idle["rss_mib"],
            baseline_label="the same worker with 0 phones (VmRSS)",
            baseline_unit="MiB",
            ratio=loaded["rss_mib"] / idle["rss_mib"],
            target="≤ 2 MB per phone above the base",
            met=per_phone * 1.048576 <= 2,
            details={"idle": idle, "attached": attached, "after_tasks": loaded, "phones": phones},
            notes=["ratio: RSS with the phones / RSS with none"],
        )
    )
    return result
