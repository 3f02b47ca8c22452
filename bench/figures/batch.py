"""Batch creation: one request with 1,000 serials (1,000 tasks), against the same 1,000 rows written by
one INSERT … SELECT FROM unnest(…) + COMMIT from one psycopg connection (the floor PostgreSQL sets).

Request and baseline alternate, one of each per repetition; the figure is the median. The api is called
from the bench's raw keep-alive HTTP client (``bench.loadgen.RawHttp``), the request bytes encoded once.
"""

from __future__ import annotations

import json
import time

import psycopg

from bench.context import Context
from bench.figures.common import noop_body
from bench.figures.creation import ensure_baseline_table
from bench.loadgen import RawHttp
from bench.result import FigureResult, Row
from bench.stats import median, ratio, summary_ms

NAME = "batch"

INSERT_MANY = (
    "INSERT INTO bench_task (serial, platform, script_name, script_config, source, api_key_id) "
    "SELECT s, 'tiktok', 'noop', %s::jsonb, 'api', %s FROM unnest(%s::text[]) AS s RETURNING id"
)


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    ensure_baseline_table(ctx)
    key_id, key = stack.make_key("bench-batch")
    serials = [f"batch-{i:04d}" for i in range(sizes.batch_serials)]
    body = noop_body(serials)
    config = json.dumps({"duration": 0})
    api_times: list[float] = []
    base_times: list[float] = []
    client = RawHttp(f"{stack.api_url}/api/v1", headers={"Authorization": f"Bearer {key}"})
    request = client.encode("POST", "/task", body=body)
    with client, psycopg.connect(stack.services.libpq_database_url) as conn:

        def api_once() -> float:
            began = time.perf_counter()
            response = client.send(request)
            elapsed = time.perf_counter() - began
            payload = response.json()
            if payload.get("code") != 0 or len(payload["data"]["task_ids"]) != len(serials):
                raise RuntimeError(f"batch request failed: {response.status} {str(payload)[:300]}")
            return elapsed

        def base_once() -> float:
            began = time.perf_counter()
            rows = conn.execute(INSERT_MANY, (config, key_id, serials)).fetchall()
            conn.commit()
            elapsed = time.perf_counter() - began
            assert len(rows) == len(serials)
            return elapsed

        ctx.progress("warm-up")
        for _ in range(2):
            api_once()
            base_once()
        with ctx.measured(result, "api-and-baseline-alternating", profile=["api"]) as info:
            for n in range(sizes.batch_requests):
                base_times.append(base_once())
                api_times.append(api_once())
                if (n + 1) % 5 == 0 or n + 1 == sizes.batch_requests:
                    ctx.progress(
                        f"{n + 1}/{sizes.batch_requests}: median {median(api_times) * 1000:.0f} ms"
                        f" (baseline {median(base_times) * 1000:.1f} ms)"
                    )
            info.update(units=len(api_times), unit="request")
    stack.sql("DELETE FROM task WHERE api_key_id = :k", k=key_id)
    stack.sql("TRUNCATE bench_task")
    value = median(api_times) * 1000
    base_value = median(base_times) * 1000
    result.rows.append(
        Row(
            key="batch",
            figure=f"batch creation: one request with {len(serials):,} serials (median)",
            value=value,
            unit="ms",
            baseline=base_value,
            baseline_label=f"the same {len(serials):,} rows: one INSERT…SELECT unnest + COMMIT, psycopg",
            baseline_unit="ms",
            ratio=ratio(value, base_value),
            target="≤ 150 ms median",
            met=value <= 150,
            details={
                "requests": len(api_times),
                "api": summary_ms(api_times),
                "baseline": summary_ms(base_times),
            },
        )
    )
    return result
