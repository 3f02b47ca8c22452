"""``python -m bench``: start the stack, run the figures, write the report.

    .venv/bin/python -m bench              # the full run (~10 minutes); updates docs/benchmarks.md and the README
    .venv/bin/python -m bench --quick      # ~2 minutes, smaller sizes; writes bench/results/ only
    .venv/bin/python -m bench --only create,batch --profile   # py-spy profiles of the chosen figures

Results go to bench/results/<timestamp>.json and .md. Every process, adb server, database and Redis
index the bench makes is removed at the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from bench import report as reports
from bench.context import Context, Sizes
from bench.machine import machine_info
from bench.profiling import Profiler
from bench.progress import Progress
from bench.result import FigureResult
from bench.services import start_services
from bench.stack import BENCH_ENV, Stack
from shared.db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("create", "batch", "list", "latency", "throughput", "stop", "memory", "scale")
MODULES = {
    "create": "bench.figures.creation",
    "batch": "bench.figures.batch",
    "list": "bench.figures.listing",
    "latency": "bench.figures.dispatch",
    "throughput": "bench.figures.throughput",
    "stop": "bench.figures.stop",
    "memory": "bench.figures.memory",
    "scale": "bench.figures.scale",
}
SETTINGS_NOTE = (
    "phonefleet's default settings (heartbeat 2 s, scheduler tick 0.5 s, dispatcher 8 threads, hub "
    "workers 256 threads) except JSON logs at INFO and the dispatcher's and hubs' Prometheus ports off."
)


@dataclass
class Options:
    sizes: Sizes
    figures: tuple[str, ...] = FIGURES
    profile: bool = False
    redis_db: int = 12
    write_docs: bool = False
    results_dir: Path = ROOT / "bench" / "results"
    admin_database_url: str | None = None
    broker_base_url: str | None = None
    quiet: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    dispatcher_variant: list[str] = field(default_factory=list)


class Interrupted(Exception):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(options: Options) -> dict[str, Any]:
    """Run the chosen figures and write the report; returns it (as written to JSON)."""
    progress = Progress(options.quiet)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    began = time.monotonic()
    machine = machine_info()
    figures: list[tuple[FigureResult, str | None]] = []
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    interrupted = False
    with ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="phonefleet-bench-") as tmp:
        try:
            progress("finding PostgreSQL and Redis")
            services = start_services(
                cleanup,
                redis_db=options.redis_db,
                admin_database_url=options.admin_database_url,
                broker_base_url=options.broker_base_url,
            )
            progress(
                f"PostgreSQL {services.postgres_version} ({services.postgres_source}), database "
                f"{services.database_name}; Redis {services.redis_version} ({services.redis_source}) "
                f"{services.broker_url}"
            )
            upgrade(services.database_url)
            workdir = Path(tmp)
            stack = Stack(services, workdir, cleanup, progress, extra_env=dict(options.extra_env))
            progress("starting the dispatcher and the api")
            stack.start_dispatcher(variant=options.dispatcher_variant or None)
            stack.start_api(1)
            profiler = Profiler(options.results_dir / f"{stamp}-profiles", options.profile)
            ctx = Context(stack, options.sizes, progress, profiler, options.results_dir)
            for name in options.figures:
                module: ModuleType = importlib.import_module(MODULES[name])
                runner: Callable[[Context], FigureResult] = module.run
                progress.figure = name
                progress("start")
                figure_began = time.monotonic()
                try:
                    result = runner(ctx)
                except KeyboardInterrupt:
                    raise
                except Exception:
                    result = FigureResult(name, error=traceback.format_exc())
                    progress(f"FAILED:\n{result.error}")
                    for proc in [stack.api, stack.dispatcher, *(h.process for h in stack.hubs.values())]:
                        if proc is not None and not proc.alive():
                            progress(f"{proc.name} is dead; its log:\n{proc.tail()}")
                result.seconds = time.monotonic() - figure_began
                figures.append((result, (module.__doc__ or "").strip() or None))
                for row in result.rows:
                    progress(
                        f"{row.figure}: {reports.fmt_number(row.value, row.unit)}"
                        f" (baseline {reports.fmt_number(row.baseline, row.baseline_unit)},"
                        f" ratio {reports.fmt_ratio(row.ratio, row.unit)}) target {row.target}:"
                        f" {'met' if row.met else 'NOT met'}"
                    )
            progress.figure = "bench"
            if options.profile:
                ctx.state.pop("redis", None)
            # Keep the logs of the processes next to the results.
            logs = options.results_dir / f"{stamp}-logs"
            logs.mkdir(parents=True, exist_ok=True)
            for path in (workdir / "logs").glob("*.log"):
                (logs / path.name).write_bytes(path.read_bytes())
        except KeyboardInterrupt:
            interrupted = True
            progress.figure = "bench"
            progress("interrupted: stopping everything the bench started (Ctrl-C again is ignored)")
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            services = locals().get("services")  # type: ignore[assignment]
        finally:
            progress.figure = "bench"
            progress("cleaning up: processes, adb servers, database, Redis index")
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                cleanup.close()
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, previous)
    if interrupted and not figures:
        raise SystemExit(130)
    report = _report(options, machine, services, figures, time.monotonic() - began, interrupted)
    json_path, md_path = reports.write(report, options.results_dir, stamp)
    progress(f"wrote {json_path} and {md_path}")
    if options.write_docs and not interrupted:
        for path in reports.update_docs(report, ROOT):
            progress(f"updated {path.relative_to(ROOT)}")
    if interrupted:
        raise SystemExit(130)
    return report


def _report(
    options: Options,
    machine: dict[str, Any],
    services: Any,
    figures: list[tuple[FigureResult, str | None]],
    seconds: float,
    interrupted: bool,
) -> dict[str, Any]:
    rows = []
    for figure, _ in figures:
        for row in figure.rows:
            rows.append({**row.as_json(), "figure_name": figure.name})
    mode = options.sizes.name + (", profiled (py-spy slows what it samples)" if options.profile else "")
    return {
        "mode": mode + (", interrupted" if interrupted else ""),
        "seconds": round(seconds, 1),
        "machine": machine,
        "services": {
            "postgres_version": services.postgres_version,
            "postgres_source": services.postgres_source,
            "redis_version": services.redis_version,
            "redis_source": services.redis_source,
            "redis_db": options.redis_db,
        },
        "settings": SETTINGS_NOTE
        + (f" Extra: {options.extra_env}." if options.extra_env else "")
        + (
            f" Dispatcher variant (bench.variants): {' '.join(options.dispatcher_variant)}."
            if options.dispatcher_variant
            else ""
        ),
        "environment": dict(BENCH_ENV, **options.extra_env),
        "sizes": options.sizes.__dict__,
        "rows": rows,
        "figures": [reports.figure_json(f, doc) for f, doc in figures],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition (~2 minutes)")
    parser.add_argument("--only", help=f"comma-separated figures, in this order: {','.join(FIGURES)}")
    parser.add_argument("--skip", help="comma-separated figures to leave out")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles of the measured phases")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database index to use (flushed)")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--docs", dest="docs", action="store_true", default=None, help="update docs/benchmarks.md and the README"
    )
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="leave the docs alone")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="where reports go")
    parser.add_argument(
        "--env", action="append", default=[], metavar="PHONEFLEET_X=V", help="extra setting for every process"
    )
    parser.add_argument(
        "--dispatcher-loop",
        choices=["blocking", "eventloop"],
        help="experiment: run the dispatcher's Celery worker with this consumer loop (bench.variants)",
    )
    parser.add_argument(
        "--dispatcher-prefetch", type=int, help="experiment: the dispatcher's prefetch multiplier (bench.variants)"
    )
    args = parser.parse_args()
    chosen = tuple(FIGURES)
    if args.only:
        wanted = {x.strip() for x in args.only.split(",") if x.strip()}
        unknown = wanted - set(FIGURES)
        if unknown:
            parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
        chosen = tuple(f for f in FIGURES if f in wanted)
    if args.skip:
        skipped = {x.strip() for x in args.skip.split(",")}
        chosen = tuple(f for f in chosen if f not in skipped)
    extra = dict(item.split("=", 1) for item in args.env)
    variant: list[str] = []
    if args.dispatcher_loop:
        variant += ["--loop", args.dispatcher_loop]
    if args.dispatcher_prefetch:
        variant += ["--prefetch", str(args.dispatcher_prefetch)]
    # A full, unprofiled run of every figure is what the docs show; anything else only on request.
    complete = not args.quick and not args.profile and chosen == FIGURES and not extra and not variant
    run(
        Options(
            sizes=Sizes.quick() if args.quick else Sizes.full(),
            figures=chosen,
            profile=args.profile,
            redis_db=args.redis_db,
            write_docs=complete if args.docs is None else args.docs,
            results_dir=args.results,
            extra_env=extra,
            dispatcher_variant=variant,
        )
    )
