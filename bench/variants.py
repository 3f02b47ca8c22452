"""Try a change to how the dispatcher consumes, without changing phonefleet: ``python -m bench.variants
dispatcher --loop eventloop --prefetch 8 [dispatcher options]`` runs the real ``phonefleet dispatcher``
with its Celery worker built differently. Used by ``python -m bench --dispatcher-loop/--dispatcher-prefetch``
to measure what a proposed fix would buy; the default bench run never uses it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from celery import Celery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("process", choices=["dispatcher"])
    parser.add_argument("--loop", choices=["blocking", "eventloop"], default="blocking")
    parser.add_argument("--prefetch", type=int, default=1, help="worker prefetch multiplier")
    args, rest = parser.parse_known_args()

    from shared import broker
    from shared.dispatcher import service

    def run_worker(
        app: Celery, *, queues: list[str], concurrency: int, hostname: str, loglevel: str, pool: str = "threads"
    ) -> None:
        worker: Any = app.Worker(
            queues=queues,
            pool_cls=pool,
            concurrency=concurrency,
            hostname=hostname,
            loglevel=loglevel,
            prefetch_multiplier=args.prefetch,
            without_gossip=True,
            without_mingle=True,
            task_events=True,
            use_eventloop=args.loop == "eventloop",
        )
        worker.start()
        if worker.exitcode:
            raise SystemExit(worker.exitcode)

    broker.run_worker = run_worker
    service.run_worker = run_worker  # type: ignore[attr-defined]
    from shared.cli import main as phonefleet

    sys.argv = ["phonefleet", args.process, *rest]
    phonefleet()


if __name__ == "__main__":
    main()
