"""Raw Celery and raw Redis, as baselines in the same run: the same Redis server, the same worker pool
type (threads, prefetch 1, acks late), and nothing of phonefleet's on the path.

``python -m bench.celery_baseline worker --broker URL --queue Q --concurrency N`` runs a plain Celery
worker whose one task, ``bench.mark``, takes ``time.time()`` as its first statement and pushes it to a
Redis list; ``python -m bench.celery_baseline subscriber --broker URL --channel C --reply L`` pushes
the time each pub/sub message arrives. The client side lives in the figures.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import redis
from celery import Celery
from celery.signals import worker_ready

READY_PREFIX = "bench:ready:"
_local = threading.local()


def _redis(url: str) -> redis.Redis:
    client: redis.Redis | None = getattr(_local, "client", None)
    if client is None:
        client = redis.Redis.from_url(url)
        _local.client = client
    return client


def make_app(broker_url: str) -> Celery:
    """A plain Celery app on ``broker_url``: JSON, no results, acks late, prefetch 1."""
    app = Celery("bench", set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="bench.mark", ignore_result=True)
    def mark(key: str, tag: str) -> None:
        now = time.time()
        _redis(broker_url).rpush(key, f"{tag} {now!r}")

    return app


def run_worker(broker_url: str, queue: str, concurrency: int) -> None:
    app = make_app(broker_url)

    @worker_ready.connect(weak=False)
    def _ready(**_: Any) -> None:
        _redis(broker_url).set(f"{READY_PREFIX}{queue}:{os.getpid()}", 1, ex=3600)

    worker = app.Worker(
        queues=[queue],
        pool_cls="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_gossip=True,
        without_mingle=True,
    )
    worker.start()


def run_subscriber(broker_url: str, channel: str, reply: str) -> None:
    client = redis.Redis.from_url(broker_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(channel)
    client.set(f"{READY_PREFIX}{channel}:{os.getpid()}", 1, ex=3600)
    for message in pubsub.listen():
        now = time.time()
        client.rpush(reply, f"{message['data'].decode()} {now!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--broker", required=True)
    worker.add_argument("--queue", required=True)
    worker.add_argument("--concurrency", type=int, default=100)
    subscriber = sub.add_parser("subscriber")
    subscriber.add_argument("--broker", required=True)
    subscriber.add_argument("--channel", required=True)
    subscriber.add_argument("--reply", required=True)
    args = parser.parse_args()
    if args.mode == "worker":
        run_worker(args.broker, args.queue, args.concurrency)
    else:
        run_subscriber(args.broker, args.channel, args.reply)


if __name__ == "__main__":
    main()
