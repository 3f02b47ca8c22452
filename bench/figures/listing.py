"""List with a filter, and stats, with the task table grown to 1,000,000 rows.

The table is filled by INSERT … SELECT generate_series through the real schema (the migrations), in
chunks of 100,000, so task_count's statement triggers keep the stats exact. The rows look like a farm's
history: 1,000 phones, 85 % completed, 13 % failed, 2 % waiting (on phones no hub has), 90 % ``post``
tasks with a TikMatrix-sized config, 5 % created from the dashboard. Then VACUUM ANALYZE, as
autovacuum would after such growth, and a CHECKPOINT, so that writing the fill out does not fall in the
measured phase.

Requests are sequential (latency without queueing) from one keep-alive client, rotating over five
filters (status; serial; script_name; status+serial; source) and a serial from all 1,000. The baseline
is the same SQL the api runs (the page query and the count), sent by psycopg in one transaction from
one connection; for stats, the same grouped sum over task_count. Each repetition alternates api and
baseline; p99 is per repetition, the figure is the median over repetitions. The api is called from the
bench's raw keep-alive HTTP client (``bench.loadgen.RawHttp``), as are the other api figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.context import Context
from bench.loadgen import RawHttp
from bench.result import FigureResult, Row
from bench.stats import median, percentile, ratio, summary_ms

NAME = "list"

POST_CONFIG = (
    '{"content_type": 0, "captions": "Regardez ma nouvelle vidéo ! #tendance #recommandé", '
    '"material_list": ["C:/Videos/video1.mp4"], "upload_wait_time": 60, "platform": "tiktok"}'
)

FILL = f"""
INSERT INTO task (serial, platform, script_name, script_config, status, source, created_at, due_at,
                  started_at, end_time, remark, attempt, hub, failure_kind)
SELECT 'bulk-' || lpad((mod(g, 1000))::text, 4, '0'),
       'tiktok',
       CASE WHEN mod(g, 10) = 0 THEN 'noop' ELSE 'post' END,
       CASE WHEN mod(g, 10) = 0 THEN '{{"duration": 0}}'::jsonb ELSE '{POST_CONFIG}'::jsonb END,
       CASE WHEN mod(g, 100) < 85 THEN 2 WHEN mod(g, 100) < 98 THEN 3 ELSE 0 END,
       CASE WHEN mod(g, 20) = 3 THEN 'ui' ELSE 'api' END,
       now() - make_interval(secs => (%(top)s - g) * 2),
       now() - make_interval(secs => (%(top)s - g) * 2),
       CASE WHEN mod(g, 100) < 98 THEN now() - make_interval(secs => (%(top)s - g) * 2 - 1) END,
       CASE WHEN mod(g, 100) < 98 THEN now() - make_interval(secs => (%(top)s - g) * 2 - 30) END,
       CASE WHEN mod(g, 100) < 85 THEN 'posted' WHEN mod(g, 100) < 98 THEN 'upload timed out' ELSE '' END,
       CASE WHEN mod(g, 100) < 98 THEN 1 ELSE 0 END,
       CASE WHEN mod(g, 100) < 98 THEN 'hub-' || (mod(g, 5))::text END,
       CASE WHEN mod(g, 100) BETWEEN 85 AND 97 THEN 'timeout' END
FROM generate_series(%(first)s, %(last)s) AS g
"""

FILTERS: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
    ("status=3", lambda n: {"status": 3}),
    ("serial", lambda n: {"serial": f"bulk-{(n * 7) % 1000:04d}"}),
    ("script_name=noop", lambda n: {"script_name": "noop"}),
    ("status=2&serial", lambda n: {"status": 2, "serial": f"bulk-{(n * 13) % 1000:04d}"}),
    ("source=ui", lambda n: {"source": "ui"}),
]

COLUMNS = {"status": "status", "serial": "serial", "script_name": "script_name", "source": "source"}


def fill(ctx: Context, rows: int) -> dict[str, Any]:
    """Grow the task table to ``rows`` rows; returns how long it took."""
    stack = ctx.stack
    have = int(stack.scalar("SELECT count(*) FROM task"))
    missing = rows - have
    began = time.monotonic()
    chunk = 100_000
    with psycopg.connect(stack.services.libpq_database_url, autocommit=True) as conn:
        done = 0
        while done < missing:
            step = min(chunk, missing - done)
            conn.execute(FILL, {"first": done + 1, "last": done + step, "top": missing})
            done += step
            ctx.progress(f"filled {have + done:,}/{rows:,} rows ({time.monotonic() - began:.0f}s)")
        fill_seconds = time.monotonic() - began
        conn.execute("VACUUM (ANALYZE) task")
        conn.execute("VACUUM (ANALYZE) task_count")
        # Write the fill's ~600 MB of dirty pages now (as pgbench does before a run), so that no
        # checkpoint of them lands in the measured phase.
        conn.execute("CHECKPOINT")
    total = int(stack.scalar("SELECT count(*) FROM task"))
    stats_total = int(stack.scalar("SELECT coalesce(sum(n), 0) FROM task_count"))
    return {
        "rows": total,
        "task_count_total": stats_total,
        "fill_seconds": round(fill_seconds, 1),
        "vacuum_analyze_seconds": round(time.monotonic() - began - fill_seconds, 1),
        "table_size": stack.scalar("SELECT pg_size_pretty(pg_total_relation_size('task'))"),
    }


def _raw_list(conn: psycopg.Connection[Any], params: dict[str, Any], page_size: int) -> None:
    clauses = [f"{COLUMNS[k]} = %({k})s" for k in params]
    where = " AND ".join(clauses) or "TRUE"
    conn.execute(f"SELECT * FROM task WHERE {where} ORDER BY id DESC LIMIT {page_size} OFFSET 0", params).fetchall()
    if "serial" in params:
        conn.execute(f"SELECT count(*) FROM task WHERE {where}", params).fetchone()
    else:
        conn.execute(f"SELECT coalesce(sum(n), 0) FROM task_count WHERE {where}", params).fetchone()
    conn.commit()


def _raw_stats(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT status, sum(n) FROM task_count GROUP BY status").fetchall()
    conn.commit()


def run(ctx: Context) -> FigureResult:
    result = FigureResult(NAME)
    stack, sizes = ctx.stack, ctx.sizes
    ctx.progress(f"growing the task table to {sizes.table_rows:,} rows")
    result.details["table"] = fill(ctx, sizes.table_rows)
    ctx.progress(f"table ready: {result.details['table']}")
    _, key = stack.make_key("bench-list")
    page_size = 20
    n_requests = sizes.list_requests

    api_list_p99: list[float] = []
    api_stats_p99: list[float] = []
    raw_list_p99: list[float] = []
    raw_stats_p99: list[float] = []
    per_filter: dict[str, list[float]] = {name: [] for name, _ in FILTERS}
    all_list: list[float] = []
    all_stats: list[float] = []
    all_raw_list: list[float] = []
    all_raw_stats: list[float] = []
    floor: list[float] = []

    client = RawHttp(f"{stack.api_url}/api/v1", headers={"Authorization": f"Bearer {key}"})
    stats_request = client.encode("GET", "/task/stats")
    with client, psycopg.connect(stack.services.libpq_database_url) as conn:

        def api_list(n: int) -> float:
            name, make = FILTERS[n % len(FILTERS)]
            params = {**make(n), "page": 1, "page_size": page_size}
            began = time.perf_counter()
            response = client.get("/task", params=params)
            elapsed = time.perf_counter() - began
            if response.status != 200:
                raise RuntimeError(f"GET /task {params}: {response.status} {response.body[:200]!r}")
            per_filter[name].append(elapsed)
            return elapsed

        def api_stats() -> float:
            began = time.perf_counter()
            response = client.send(stats_request)
            elapsed = time.perf_counter() - began
            if response.status != 200:
                raise RuntimeError(f"GET /task/stats: {response.status}")
            return elapsed

        def raw_list(n: int) -> float:
            _, make = FILTERS[n % len(FILTERS)]
            began = time.perf_counter()
            _raw_list(conn, make(n), page_size)
            return time.perf_counter() - began

        def raw_stats() -> float:
            began = time.perf_counter()
            _raw_stats(conn)
            return time.perf_counter() - began

        ctx.progress("warm-up")
        warm = max(50, n_requests // 10)
        for n in range(warm):
            api_list(n)
            api_stats()
            raw_list(n)
            raw_stats()
        for values in per_filter.values():
            values.clear()
        with RawHttp(stack.api_url) as plain:
            healthz = plain.encode("GET", "/healthz")
            for _ in range(warm):
                began = time.perf_counter()
                plain.send(healthz)
                floor.append(time.perf_counter() - began)

        for rep in range(sizes.reps):
            lists: list[float] = []
            stats: list[float] = []
            raws: list[float] = []
            raw_st: list[float] = []
            with ctx.measured(result, f"rep{rep + 1}", profile=["api"]) as info:
                for n in range(n_requests):
                    raws.append(raw_list(n))
                    lists.append(api_list(n))
                    raw_st.append(raw_stats())
                    stats.append(api_stats())
                info.update(units=2 * n_requests, unit="request")
            api_list_p99.append(percentile(lists, 0.99))
            api_stats_p99.append(percentile(stats, 0.99))
            raw_list_p99.append(percentile(raws, 0.99))
            raw_stats_p99.append(percentile(raw_st, 0.99))
            all_list += lists
            all_stats += stats
            all_raw_list += raws
            all_raw_stats += raw_st
            ctx.progress(
                f"rep {rep + 1}/{sizes.reps}: list p99 {api_list_p99[-1] * 1000:.1f} ms"
                f" (raw SQL {raw_list_p99[-1] * 1000:.1f}), stats p99 {api_stats_p99[-1] * 1000:.1f} ms"
                f" (raw SQL {raw_stats_p99[-1] * 1000:.1f})"
            )

    rows_label = f"{result.details['table']['rows']:,}"
    list_value = median(api_list_p99) * 1000
    list_base = median(raw_list_p99) * 1000
    stats_value = median(api_stats_p99) * 1000
    stats_base = median(raw_stats_p99) * 1000
    result.details["healthz_floor"] = summary_ms(floor)
    result.rows.append(
        Row(
            key="list_p99",
            figure=f"list with a filter, {rows_label} tasks (p99)",
            value=list_value,
            unit="ms",
            baseline=list_base,
            baseline_label="the same page + count SQL from psycopg (p99)",
            baseline_unit="ms",
            ratio=ratio(list_value, list_base),
            target="p99 ≤ 15 ms",
            met=list_value <= 15,
            details={
                "requests_per_rep": n_requests,
                "p99_per_rep_ms": [round(x * 1000, 2) for x in api_list_p99],
                "api": summary_ms(all_list),
                "raw_sql": summary_ms(all_raw_list),
                "by_filter": {name: summary_ms(values) for name, values in per_filter.items()},
                "healthz_floor": result.details["healthz_floor"],
            },
        )
    )
    result.rows.append(
        Row(
            key="stats_p99",
            figure=f"stats, {rows_label} tasks (p99)",
            value=stats_value,
            unit="ms",
            baseline=stats_base,
            baseline_label="the same grouped sum over task_count from psycopg (p99)",
            baseline_unit="ms",
            ratio=ratio(stats_value, stats_base),
            target="p99 ≤ 5 ms",
            met=stats_value <= 5,
            details={
                "requests_per_rep": n_requests,
                "p99_per_rep_ms": [round(x * 1000, 2) for x in api_stats_p99],
                "api": summary_ms(all_stats),
                "raw_sql": summary_ms(all_raw_stats),
            },
        )
    )
    return result
