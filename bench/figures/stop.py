"""Stop latency: from POST /task/{id}/stop to the phone's script halted (the hub's ``task_ended`` of a
long ``noop``), against the floor of the signal's path: a Redis PUBLISH reaching a subscriber in
another process (raw pub/sub, same Redis), measured the same way.

Long noop tasks (600 s) run on ``stop_samples`` phones at once; they are stopped one after another,
each stop waiting for its script to end before the next.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.figures.common import create, farm
from bench.result import FigureResult, Row
from bench.stats import median, percentile, ratio, summary_ms

NAME = "stop"
CHANNEL = "bench:stop:channel"
REPLY = "bench:stop:reply"


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    hubs = farm(ctx)
    serials = [s for hub in hubs for s in hub.serials][: sizes.stop_samples]
    _, key = stack.make_key("bench-stop")
    subscriber = ctx.start_helper(
        "pubsub-stop", ["subscriber", "--broker", stack.services.broker_url, "--channel", CHANNEL, "--reply", REPLY]
    )
    ctx.wait_ready(CHANNEL, 1, [subscriber])
    redis = ctx.redis

    def pubsub_sample(n: int) -> float:
        began = time.time()
        redis.publish(CHANNEL, str(n))
        reply = redis.blpop([REPLY], timeout=10)
        if reply is None:
            raise TimeoutError("pub/sub message not received within 10 s")
        return float(reply[1].split()[1]) - began

    stops: list[list[float]] = []
    answers: list[float] = []
    floors: list[list[float]] = []
    remarks: dict[str, int] = {}
    with stack.client(key) as client:
        for n in range(10):
            pubsub_sample(n)
        for rep in range(1, sizes.reps + 1):
            floors.append([pubsub_sample(n) for n in range(len(serials))])
            ids = create(client, serials, duration=600)
            stack.logs.wait(ids, "started", timeout=60)
            series: list[float] = []
            with ctx.measured(result, f"phonefleet-rep{rep}", profile=["api", "hubs"]) as info:
                for task_id in ids:
                    began = time.time()
                    response = client.post(f"/task/{task_id}/stop")
                    answers.append(time.time() - began)
                    if response.json().get("code") != 0:
                        raise RuntimeError(f"stop {task_id}: {response.text[:200]}")
                    run = stack.logs.wait([task_id], "ended", timeout=30, interval=0.002)[task_id]
                    assert run.ended is not None
                    series.append(run.ended - began)
                info.update(units=len(ids), unit="stop")
            stack.wait_done(ids, timeout=60)
            for (remark,) in stack.sql("SELECT remark FROM task WHERE id = ANY(:ids)", ids=ids):
                remarks[remark] = remarks.get(remark, 0) + 1
            stops.append(series)
            ctx.progress(
                f"rep {rep}/{sizes.reps}: p50 {percentile(series, 0.5) * 1000:.0f} ms,"
                f" p99 {percentile(series, 0.99) * 1000:.0f} ms"
                f" (pub/sub p99 {percentile(floors[-1], 0.99) * 1000:.1f} ms)"
            )
    subscriber.stop()
    value = median([percentile(s, 0.99) for s in stops]) * 1000
    base = median([percentile(s, 0.99) for s in floors]) * 1000
    result.rows.append(
        Row(
            key="stop_p99",
            figure=f"stop latency p99: POST stop → script halted ({len(serials)} running phones)",
            value=value,
            unit="ms",
            baseline=base,
            baseline_label="Redis PUBLISH → subscriber process wakes (p99)",
            baseline_unit="ms",
            ratio=ratio(value, base),
            target="p99 ≤ 500 ms",
            met=value <= 500,
            details={
                "stops_per_rep": len(serials),
                "phonefleet": summary_ms([x for s in stops for x in s]),
                "stop_request_answered": summary_ms(answers),
                "pubsub_floor": summary_ms([x for s in floors for x in s]),
                "p99_per_rep_ms": [round(percentile(s, 0.99) * 1000, 1) for s in stops],
                "final_remarks": remarks,
            },
        )
    )
    return result
