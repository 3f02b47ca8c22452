"""End-to-end throughput: no-op tasks on the farm's phones (200 phones on 2 hubs), against raw Celery
running no-op tasks on the same Redis with the same pool type (2 worker processes with 100 threads
each, prefetch 1, acks late).

Both are measured draining a backlog, at steady state. phonefleet: a first round of 3-second noop
tasks occupies every phone while ``tasks_per_phone`` more per phone are created behind them; when the
first round ends, the backlog drains through the real path (hub → started/finished reports →
dispatcher → PostgreSQL → next dispatch). Raw Celery: the queue is filled while no worker runs, then
the workers start. The rate is over the middle 80 % of task ends (hub ``task_ended`` log lines;
the raw task body's timestamp), so start-up and drain do not count.
"""

from __future__ import annotations

import time

from bench.celery_baseline import make_app
from bench.context import Context
from bench.figures.common import create_many, farm, warm_up_phones
from bench.result import FigureResult, Row
from bench.stats import median, ratio, steady_rate

NAME = "throughput"
QUEUE = "bench.throughput"
HOLD_SECONDS = 3.0


def _raw_rep(ctx: Context, result: FigureResult, rep: int, tasks: int, workers: int, threads: int) -> float:
    redis = ctx.redis
    app = make_app(ctx.stack.services.broker_url)
    reply = f"bench:tp:{rep}"
    with app.producer_or_acquire() as producer:
        for n in range(tasks):
            app.send_task("bench.mark", kwargs={"key": reply, "tag": str(n)}, queue=QUEUE, producer=producer)
    procs = [
        ctx.start_helper(
            f"celery-tp-{rep}-{i}",
            ["worker", "--broker", ctx.stack.services.broker_url, "--queue", QUEUE, "--concurrency", str(threads)],
        )
        for i in range(workers)
    ]
    ctx.wait_ready(QUEUE, workers, procs)
    deadline = time.monotonic() + 120 + tasks / 50
    with ctx.measured(result, f"raw-celery-rep{rep}", extra={"celery": [p.pid for p in procs]}) as info:
        while int(redis.llen(reply)) < tasks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw Celery ran {redis.llen(reply)}/{tasks} tasks")
            time.sleep(0.05)
        info.update(units=tasks)
    stamps = [float(item.split()[1]) for item in redis.lrange(reply, 0, -1)]
    redis.delete(reply)
    for proc in procs:
        proc.stop()
    for key in redis.scan_iter(f"bench:ready:{QUEUE}:*"):
        redis.delete(key)
    return steady_rate(stamps)


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    hubs = farm(ctx)
    serials = [s for hub in hubs for s in hub.serials]
    per_hub = sizes.farm_phones_per_hub
    tasks = len(serials) * sizes.tasks_per_phone
    _, key = stack.make_key("bench-throughput")
    pf_rates: list[float] = []
    pf_wall: list[float] = []
    raw_rates: list[float] = []
    outcomes: dict[str, int] = {}
    with stack.client(key) as client:
        ctx.progress("warm-up: one task on every phone")
        warm_up_phones(ctx, client, serials)
        for rep in range(1, sizes.reps + 1):
            ctx.progress(f"rep {rep}/{sizes.reps}: raw Celery, {tasks:,} tasks on {len(hubs)} workers")
            raw_rates.append(_raw_rep(ctx, result, rep, tasks, len(hubs), per_hub))
            ctx.progress(f"rep {rep}/{sizes.reps}: phonefleet, {tasks:,} tasks on {len(serials)} phones")
            holders = create_many(client, serials, duration=HOLD_SECONDS)
            first_start = min(r.started or 0.0 for r in stack.logs.wait(holders, "started", timeout=60).values())
            backlog: list[int] = []
            for _ in range(sizes.tasks_per_phone):
                backlog += create_many(client, serials)
            # The measured window opens as the first phones are freed and the backlog starts to drain.
            time.sleep(max(0.0, first_start + HOLD_SECONDS - 0.05 - time.time()))
            with ctx.measured(result, f"phonefleet-rep{rep}", profile=["api", "dispatcher", "hubs"]) as info:
                done_at = stack.wait_done(backlog, timeout=120 + tasks / 20, interval=0.25)
                info.update(units=tasks)
            drain_start = min(r.ended or done_at for r in stack.logs.wait(holders, "ended", timeout=30).values())
            runs = stack.logs.wait(backlog, "ended", timeout=30)
            for run in runs.values():
                outcomes[run.outcome or "?"] = outcomes.get(run.outcome or "?", 0) + 1
            ends = [r.ended for r in runs.values() if r.ended is not None]
            pf_rates.append(steady_rate(ends))
            pf_wall.append(tasks / max(1e-9, done_at - drain_start))
            ctx.progress(
                f"rep {rep}/{sizes.reps}: phonefleet {pf_rates[-1]:,.0f} tasks/s,"
                f" raw Celery {raw_rates[-1]:,.0f} tasks/s"
            )
    value = median(pf_rates)
    base = median(raw_rates)
    r = ratio(value, base)
    result.rows.append(
        Row(
            key="throughput",
            figure=f"end-to-end throughput, noop, {len(serials)} phones on {len(hubs)} hubs",
            value=value,
            unit="tasks/s",
            baseline=base,
            baseline_label=f"raw Celery noop, {len(hubs)} workers × {per_hub} threads",
            baseline_unit="tasks/s",
            ratio=r,
            target="≥ 60 % of baseline",
            met=None if r is None else r >= 0.6,
            details={
                "tasks_per_rep": tasks,
                "phonefleet_rates": [round(x, 1) for x in pf_rates],
                "phonefleet_wall_rates": [round(x, 1) for x in pf_wall],
                "raw_rates": [round(x, 1) for x in raw_rates],
                "outcomes": outcomes,
            },
        )
    )
    return result
