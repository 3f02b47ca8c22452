"""Dispatch latency: from the answer to POST /task (one serial, an idle phone) to the script running
on that phone, against raw Celery's send_task → task body starts, on the same Redis with the same
worker pool type (threads, concurrency 256 like a hub, prefetch 1, acks late).

"Script running" is the hub's own ``task_started`` log line (see ``bench.hublog``): it is stamped by
the hub just before the script's first step, on the same clock as the client. Each sample waits until
the task is recorded as completed and the farm is quiet before the next, and samples rotate over
all the farm's phones, so every task finds its phone idle. Raw Celery's task body takes
``time.time()`` as its first statement and pushes it to a Redis list. Repetitions alternate a raw
Celery series and a phonefleet series; p50 and p99 are per series, the figures the medians.

phonefleet's dispatch message is sent after the commit but before the HTTP answer leaves the api, so
"from the answer" can be shorter than "from the request"; both are in the details.
"""

from __future__ import annotations

import time

from bench.celery_baseline import make_app
from bench.context import Context
from bench.figures.common import create, farm, warm_up_phones
from bench.result import FigureResult, Row
from bench.stats import median, percentile, ratio, summary_ms

NAME = "latency"
QUEUE = "bench.latency"
PAUSE = 0.02  # between samples, so that each one starts on a quiet farm


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    hubs = farm(ctx)
    serials = [s for hub in hubs for s in hub.serials]
    _, key = stack.make_key("bench-latency")

    worker = ctx.start_helper(
        "celery-latency", ["worker", "--broker", stack.services.broker_url, "--queue", QUEUE, "--concurrency", "256"]
    )
    ctx.wait_ready(QUEUE, 1, [worker])
    app = make_app(stack.services.broker_url)
    redis = ctx.redis

    def celery_sample(n: int) -> float:
        began = time.time()
        app.send_task("bench.mark", kwargs={"key": "bench:lat", "tag": str(n)}, queue=QUEUE)
        reply = redis.blpop(["bench:lat"], timeout=10)
        if reply is None:
            raise TimeoutError("raw Celery task did not start within 10 s")
        return float(reply[1].split()[1]) - began

    pf_from_answer: list[list[float]] = []
    pf_from_request: list[list[float]] = []
    raw: list[list[float]] = []
    counter = [0]
    with stack.client(key) as client:

        def phonefleet_sample() -> tuple[float, float]:
            serial = serials[counter[0] % len(serials)]
            counter[0] += 1
            sent = time.time()
            (task_id,) = create(client, [serial])
            answered = time.time()
            run = stack.logs.wait([task_id], "started", timeout=30, interval=0.002)[task_id]
            assert run.started is not None
            stack.wait_done([task_id], timeout=30, interval=0.005)
            return run.started - answered, run.started - sent

        ctx.progress("warm-up: one task on every phone, and raw Celery")
        warm_up_phones(ctx, client, serials)
        for n in range(20):
            celery_sample(n)
            time.sleep(PAUSE)
        for rep in range(sizes.reps):
            series: list[float] = []
            with ctx.measured(result, f"raw-celery-rep{rep + 1}", extra={"celery": [worker.pid]}) as info:
                for n in range(sizes.latency_samples):
                    series.append(celery_sample(n))
                    time.sleep(PAUSE)
                info.update(units=len(series))
            raw.append(series)
            answer: list[float] = []
            request: list[float] = []
            with ctx.measured(result, f"phonefleet-rep{rep + 1}", profile=["api", "dispatcher", "hubs"]) as info:
                for _ in range(sizes.latency_samples):
                    a, r = phonefleet_sample()
                    answer.append(a)
                    request.append(r)
                    time.sleep(PAUSE)
                info.update(units=len(answer))
            pf_from_answer.append(answer)
            pf_from_request.append(request)
            ctx.progress(
                f"rep {rep + 1}/{sizes.reps}: phonefleet p50 {percentile(answer, 0.5) * 1000:.1f} ms"
                f" p99 {percentile(answer, 0.99) * 1000:.1f} ms; raw Celery p50 {percentile(series, 0.5) * 1000:.1f} ms"
                f" p99 {percentile(series, 0.99) * 1000:.1f} ms"
            )
    worker.stop()

    p50 = median([percentile(s, 0.5) for s in pf_from_answer]) * 1000
    p99 = median([percentile(s, 0.99) for s in pf_from_answer]) * 1000
    raw50 = median([percentile(s, 0.5) for s in raw]) * 1000
    raw99 = median([percentile(s, 0.99) for s in raw]) * 1000
    details = {
        "samples_per_rep": sizes.latency_samples,
        "phones": len(serials),
        "phonefleet_from_answer": summary_ms([x for s in pf_from_answer for x in s]),
        "phonefleet_from_request": summary_ms([x for s in pf_from_request for x in s]),
        "raw_celery": summary_ms([x for s in raw for x in s]),
        "p50_per_rep_ms": [round(percentile(s, 0.5) * 1000, 2) for s in pf_from_answer],
        "p99_per_rep_ms": [round(percentile(s, 0.99) * 1000, 2) for s in pf_from_answer],
        "raw_p50_per_rep_ms": [round(percentile(s, 0.5) * 1000, 2) for s in raw],
        "raw_p99_per_rep_ms": [round(percentile(s, 0.99) * 1000, 2) for s in raw],
    }
    r50 = ratio(p50, raw50)
    result.rows.append(
        Row(
            key="dispatch_p50",
            figure=f"dispatch latency p50: create answered → script running, idle phone ({len(serials)} phones)",
            value=p50,
            unit="ms",
            baseline=raw50,
            baseline_label="raw Celery send_task → body starts, threads pool (p50)",
            baseline_unit="ms",
            ratio=r50,
            target="p50 ≤ 4× raw Celery",
            met=None if r50 is None else r50 <= 4,
            details=details,
        )
    )
    result.rows.append(
        Row(
            key="dispatch_p99",
            figure="dispatch latency p99",
            value=p99,
            unit="ms",
            baseline=raw99,
            baseline_label="raw Celery send_task → body starts (p99)",
            baseline_unit="ms",
            ratio=ratio(p99, raw99),
            target="p99 ≤ 100 ms",
            met=p99 <= 100,
        )
    )
    return result
