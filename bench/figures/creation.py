"""Task creation, one serial per request, 16 concurrent clients, against the rate at which the same
PostgreSQL commits single-row INSERTs into a table shaped like ``task`` from a psycopg pool of 16
threads (pgbench-like).

The baseline table has the task table's columns, defaults, checks and indexes, but not its triggers
(task_count, updated_at): those are phonefleet's own cost. Serials are 200 phones no hub has (so
tasks wait, and no dispatch message is sent); both tables are emptied between repetitions (the task
table by DELETE and VACUUM, so that no dead rows of an earlier repetition remain) so every repetition
starts from the same state. The api's 16 clients are keep-alive connections driven by
one asyncio loop that writes pre-encoded requests to the socket (``bench.loadgen``, ~0.1 ms of CPU per
request where httpx threads took ~1.7 ms), so the load generator takes little of the cores the api
and PostgreSQL share with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
from psycopg_pool import ConnectionPool

from bench.context import Context
from bench.figures.common import noop_body
from bench.loadgen import ClosedLoop, LoadResult, RawHttp, Response, http_closed_loop
from bench.result import FigureResult, Row
from bench.stats import median, ratio, summary_ms

NAME = "create"

BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_task (LIKE task INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
CREATE SEQUENCE IF NOT EXISTS bench_task_id_seq OWNED BY bench_task.id;
ALTER TABLE bench_task ALTER COLUMN id SET DEFAULT nextval('bench_task_id_seq');
"""

# The row the api writes for one serial: the same columns, the same values.
INSERT_ONE = (
    "INSERT INTO bench_task (serial, username, account_id, platform, packagename, script_name, script_config, "
    "source, start_time, scheduled_at, api_key_id) "
    "VALUES (%s, NULL, NULL, 'tiktok', NULL, 'noop', %s::jsonb, 'api', NULL, NULL, %s) RETURNING id"
)


def ensure_baseline_table(ctx: Context) -> None:
    for statement in BASELINE_TABLE.strip().split(";\n"):
        ctx.stack.sql(statement)


def _baseline_loop(ctx: Context, pool: ConnectionPool, serials: list[str], key_id: int) -> ClosedLoop[ConnectionPool]:
    config = json.dumps({"duration": 0})

    def insert(p: ConnectionPool, index: int, n: int) -> bool:
        with p.connection() as conn:
            conn.execute(INSERT_ONE, (serials[(index * 37 + n) % len(serials)], config, key_id)).fetchone()
            conn.commit()
        return True

    return ClosedLoop(lambda: pool, lambda _: None, insert, ctx.sizes.create_clients)


def _api_loop(ctx: Context, key: str, serials: list[str]) -> Callable[[float], LoadResult]:
    """The api's load: ``create_clients`` keep-alive connections from one asyncio loop (bench.loadgen),
    each posting one serial per request; the request bytes are encoded once per serial."""
    encoder = RawHttp(f"{ctx.stack.api_url}/api/v1", headers={"Authorization": f"Bearer {key}"})
    bodies = [encoder.encode("POST", "/task", body=noop_body([serial])) for serial in serials]

    def request(index: int, n: int) -> bytes:
        return bodies[(index * 37 + n) % len(bodies)]

    def check(response: Response) -> bool:
        return response.status == 200 and response.json().get("code") == 0

    def run(seconds: float) -> LoadResult:
        return http_closed_loop(ctx.stack.api_url, ctx.sizes.create_clients, seconds, request, check)

    return run


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    ensure_baseline_table(ctx)
    key_id, key = stack.make_key("bench-create")
    serials = [f"create-{i:04d}" for i in range(sizes.create_serials)]

    def reset() -> None:
        stack.sql("DELETE FROM task WHERE api_key_id = :k", k=key_id)
        stack.sql("TRUNCATE bench_task")
        # TRUNCATE leaves the baseline's table new; DELETE leaves the task table's dead rows and index
        # entries behind, which the api's device-limit count (over the key's unfinished tasks) would
        # step over in every later repetition. VACUUM gives both the same clean start.
        with psycopg.connect(stack.services.libpq_database_url, autocommit=True) as conn:
            conn.execute("VACUUM task")

    pool = ConnectionPool(
        stack.services.libpq_database_url, min_size=sizes.create_clients, max_size=sizes.create_clients, open=True
    )
    try:
        pool.wait(timeout=30)
        baseline = _baseline_loop(ctx, pool, serials, key_id)
        for workers in sizes.api_workers:
            if stack.api_workers != workers:
                ctx.progress(f"restarting the api with --workers {workers}")
                stack.start_api(workers)
            api = _api_loop(ctx, key, serials)
            ctx.progress(f"warm-up ({sizes.warmup_seconds:g}s each), api --workers {workers}")
            baseline.run(sizes.warmup_seconds)
            api(sizes.warmup_seconds)
            base_runs: list[LoadResult] = []
            api_runs: list[LoadResult] = []
            for rep in range(sizes.reps):
                reset()
                with ctx.measured(result, f"baseline-w{workers}-rep{rep + 1}") as info:
                    base = baseline.run(sizes.create_seconds)
                    info.update(units=base.ok, unit="insert")
                base_runs.append(base)
                reset()
                with ctx.measured(result, f"api-w{workers}-rep{rep + 1}", profile=["api"]) as info:
                    got = api(sizes.create_seconds)
                    info.update(units=got.ok, unit="request")
                api_runs.append(got)
                ctx.progress(
                    f"--workers {workers} rep {rep + 1}/{sizes.reps}: api {got.rate:,.0f} req/s"
                    f" ({got.errors} errors), baseline {base.rate:,.0f} inserts/s"
                )
            value = median([r.rate for r in api_runs])
            base_value = median([r.rate for r in base_runs])
            r = ratio(value, base_value)
            errors = sum(x.errors for x in api_runs)
            row = Row(
                key=f"create_w{workers}",
                figure=f"task creation, 1 serial/request, {sizes.create_clients} clients, api --workers {workers}",
                value=value,
                unit="req/s",
                baseline=base_value,
                baseline_label=f"single-row INSERT+COMMIT, psycopg pool, {sizes.create_clients} threads",
                baseline_unit="inserts/s",
                ratio=r,
                target="≥ 50 % of baseline",
                met=None if r is None else (r >= 0.5 and errors == 0),
                details={
                    "api_rates": [round(x.rate, 1) for x in api_runs],
                    "baseline_rates": [round(x.rate, 1) for x in base_runs],
                    "api_errors": errors,
                    "api_first_error": next((x.first_error for x in api_runs if x.first_error), None),
                    "api_latency": summary_ms([t for x in api_runs for t in x.latencies]),
                    "baseline_latency": summary_ms([t for x in base_runs for t in x.latencies]),
                    "seconds_per_rep": sizes.create_seconds,
                },
            )
            result.rows.append(row)
        reset()
    finally:
        pool.close()
        if stack.api_workers != 1:
            ctx.progress("restarting the api with --workers 1")
            stack.start_api(1)
    return result
