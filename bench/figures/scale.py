"""Scale: how many simulated phones this one machine drives, up to 1,000 phones on 5 hubs (each hub its
own adb server with 200 phones: one adb server tops out near 1,000).

A ladder: hubs are added one at a time; after each, every attached phone gets one noop task per round,
and the round must finish within a deadline with every task completed on its first attempt. The
figure is the largest number of phones for which that held, beside the number adb lists as attached.
Each step records how long its rounds took, the longest the dispatcher's ``control`` queue grew, how
many attempts had to be re-sent, and the dispatcher's warnings, so that a failure says how it failed.

The farm of the other figures is stopped first, so the machine holds only this one.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.figures.common import create_many, rss_kib, stop_farm
from bench.result import FigureResult, Row
from bench.stack import HubHandle
from bench.stats import steady_rate

NAME = "scale"
WARNINGS = (
    "attempt_never_started",
    "attempt_lost",
    "device_offline_hub_silent",
    "stale_start",
    "report_requeued_database_unavailable",
    "dispatch_send_failed",
)


class LogCounter:
    """Counts events in a JSON log from where it was last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return counts
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            if not any(name.encode() in line for name in WARNINGS):
                continue
            try:
                event = json.loads(line).get("event")
            except ValueError:
                continue
            if event in WARNINGS:
                counts[event] = counts.get(event, 0) + 1
        return counts


def _round(ctx: Context, client: Any, serials: list[str], deadline_seconds: float) -> dict[str, Any]:
    """One noop task on every phone; what happened, within ``deadline_seconds``."""
    stack = ctx.stack
    redis = ctx.redis
    longest = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            longest[0] = max(longest[0], int(redis.llen("control")))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.time()
    ids = create_many(client, serials)
    finished = True
    try:
        done_at = stack.wait_done(ids, timeout=deadline_seconds, interval=0.25)
    except TimeoutError:
        finished = False
        done_at = time.time()
    stop.set()
    watcher.join()
    stack.logs.poll()
    runs = [run for task_id in ids if (run := stack.logs.run_of(task_id)) is not None]
    completed = int(stack.scalar("SELECT count(*) FROM task WHERE id = ANY(:ids) AND status = 2", ids=ids))
    resent = int(stack.scalar("SELECT count(*) FROM task WHERE id = ANY(:ids) AND attempt > 1", ids=ids))
    ran = {run.serial for run in runs if run.outcome == "completed"}
    return {
        "tasks": len(ids),
        "finished": finished,
        "completed": completed,
        "phones_that_ran_a_task": len(ran),
        "attempts_resent": resent,
        "seconds": round(done_at - began, 2),
        "steady_tasks_per_s": round(steady_rate([r.ended for r in runs if r.ended is not None]), 1),
        "longest_control_queue": longest[0],
        "clean": finished and completed == len(ids) and resent == 0,
    }


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    stop_farm(ctx)
    total = sizes.scale_hubs * sizes.scale_phones_per_hub
    hubs: list[HubHandle] = []
    steps: list[dict[str, Any]] = []
    counter = LogCounter(stack.log_path("dispatcher"))
    counter.read()
    best = 0
    attached = 0
    _, key = stack.make_key("bench-scale")
    try:
        with stack.client(key) as client:
            for index in range(sizes.scale_hubs):
                began = time.monotonic()
                hub = stack.start_hub(f"scale-{index + 1}", sizes.scale_phones_per_hub)
                hubs.append(hub)
                stack.wait_hub_started(hub)
                serials = [s for h in hubs for s in h.serials]
                attached = sum(1 for h in hubs for state in h.fleet.adb_states().values() if state == "device")
                stack.wait_online(serials, timeout=120 + len(serials) * 0.1)
                step: dict[str, Any] = {
                    "hubs": len(hubs),
                    "phones": len(serials),
                    "attached_in_adb": attached,
                    "setup_seconds": round(time.monotonic() - began, 1),
                    "rounds": [],
                }
                with ctx.measured(result, f"{len(serials)}-phones", profile=["dispatcher", "hubs"]) as info:
                    for _ in range(sizes.scale_rounds):
                        outcome = _round(ctx, client, serials, deadline_seconds=60 + len(serials) * 0.06)
                        step["rounds"].append(outcome)
                        if not outcome["clean"]:
                            break
                    info.update(units=sum(r["tasks"] for r in step["rounds"]))
                step["dispatcher_warnings"] = counter.read()
                dead = {h.name: h.process.popen.poll() for h in hubs if h.process.popen and not h.process.alive()}
                step["hub_rss_mib"] = {
                    h.name: round(rss_kib(h.process.pid)["VmRSS"] / 1024, 1) for h in hubs if h.process.alive()
                }
                if dead:
                    step["hubs_dead_exit_codes"] = dead
                    ctx.progress(f"hub workers died: {dead} (exit codes; negative = killed by that signal)")
                steps.append(step)
                clean = not dead and all(r["clean"] for r in step["rounds"])
                last = step["rounds"][-1]
                ctx.progress(
                    f"{len(serials)} phones on {len(hubs)} hubs: {'clean' if clean else 'NOT clean'};"
                    f" last round {last['completed']}/{last['tasks']} completed in {last['seconds']:.1f}s,"
                    f" {last['attempts_resent']} re-sent, control queue up to {last['longest_control_queue']},"
                    f" dispatcher warnings {step['dispatcher_warnings'] or 'none'}"
                )
                if not clean:
                    break
                best = len(serials)
    finally:
        for hub in hubs:
            stack.stop_hub(hub.name)
    result.rows.append(
        Row(
            key="scale",
            figure=f"scale: phones that all ran their tasks cleanly (ladder of {sizes.scale_phones_per_hub} per hub,"
            f" up to {total:,} on {sizes.scale_hubs} hubs)",
            value=float(best),
            unit="phones",
            baseline=float(attached),
            baseline_label="phones adb listed as attached at the last step",
            baseline_unit="phones",
            ratio=best / attached if attached else None,
            target=f"{total:,} phones on {sizes.scale_hubs} hubs, all taking tasks",
            met=best == total,
            details={"steps": steps},
        )
    )
    return result
