"""The broker side both ends share: the Celery app (no tasks registered here) and a Redis client
for the cancellation keys. Hubs and central services build theirs from the same settings."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import redis
import structlog
from celery import Celery

from shared.queues import CONTROL_QUEUE
from shared.settings import Settings, get_settings

log = structlog.get_logger(__name__)

STALLED_EXIT_STATUS = 75  # EX_TEMPFAIL: start me again
_lock = threading.Lock()
_celery: dict[str, Celery] = {}
_redis: dict[str, redis.Redis] = {}


def broker_url(settings: Settings | None = None) -> str:
    """The configured broker URL, or an error that says how to configure one."""
    url = (settings or get_settings()).broker_url
    if not url:
        raise RuntimeError(
            "PHONEFLEET_BROKER_URL is not set. Set it to redis://HOST:6379/0 (rediss:// for TLS), "
            "or run `phonefleet up` to start an embedded Redis."
        )
    return url


def celery_config(url: str) -> dict[str, Any]:
    """Celery settings shared by every phonefleet process."""
    return {
        "broker_url": url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": CONTROL_QUEUE,
        "task_create_missing_queues": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # A hub runs a task for at most upload_wait_time + a few minutes; a message redelivered
            # while its first delivery still runs would be refused by the claim key anyway.
            "visibility_timeout": 3 * 3600,
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "retry_on_timeout": True,
            # No message priorities: each consumer BRPOPs one key per queue, not four (a hub listens
            # on hundreds of device queues).
            "priority_steps": [0],
        },
        "broker_pool_limit": 20,
        "worker_send_task_events": get_settings().task_events,
        # Workers' events (received, started, succeeded) are what Flower shows; a "sent" event per
        # message would cost the sender another publish (0.65 ms of 1.5 ms per send_task here).
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def _no_restore_on_close() -> None:
    """Leave unacknowledged messages where they are when a channel closes.

    kombu's Redis transport requeues a consumer's unacknowledged messages when its channel closes; when
    the close comes from a lost connection (Redis restarted) that requeue itself fails and takes the
    whole worker down ("Unrecoverable error: AttributeError ... 'hostname'", kombu issues #582, #970).
    phonefleet does not need it: an attempt that was delivered but not acknowledged is re-sent by the
    dispatcher after ``dispatch_timeout`` with a new attempt number, and the old one is fenced off.
    """
    from kombu.transport import redis as kombu_redis

    kombu_redis.QoS.restore_at_shutdown = False
    _reuse_redis_clients(kombu_redis)


def _reuse_redis_clients(kombu_redis: Any) -> None:
    """Make kombu's Redis channels reuse one client object per connection pool.

    kombu builds a new ``redis.Redis`` for every publish and every acknowledgement (``conn_or_acquire``);
    with redis-py 5+ that object costs more to build than the command costs to send (about 0.4 ms of
    the 0.9 ms a ``send_task`` takes here, see docs/benchmarks.md). A client over a pool is thread-safe
    and holds no connection of its own, so one per pool changes nothing else; a new pool (after a
    reconnect) gets a new client.
    """
    channel = kombu_redis.Channel
    if getattr(channel, "_phonefleet_reuses_clients", False):
        return
    build = channel._create_client

    def create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:
            return build(self, asynchronous=True)
        pool = self.pool
        cached = self.__dict__.get("_phonefleet_client")
        if cached is None or cached[0] is not pool:
            cached = (pool, build(self, asynchronous=False))
            self.__dict__["_phonefleet_client"] = cached
        return cached[1]

    channel._create_client = create_client
    channel._phonefleet_reuses_clients = True


def get_celery(url: str | None = None) -> Celery:
    """The process's Celery app for ``url`` (default: the configured broker)."""
    url = url or broker_url()
    _no_restore_on_close()
    with _lock:
        app = _celery.get(url)
        if app is None:
            app = Celery("phonefleet", set_as_current=False)
            app.conf.update(celery_config(url))
            _celery[url] = app
        return app


class StallWatchdog:
    """Restarts this worker process when its consumer has stopped taking messages.

    kombu's Redis consumer can survive a Redis restart on a dead socket, polling forever without
    receiving (celery issues #8030, #10205). ``stalled()`` says whether messages wait that this process
    should have taken; after ``strikes`` checks in a row the process stops itself the warm way (running
    tasks finish) and exits with status 75, for its supervisor (systemd, Docker, Kubernetes,
    ``phonefleet up``) to start it again with fresh connections.
    """

    tripped = False

    def __init__(self, name: str, stalled: Callable[[], bool], *, interval: float = 5.0, strikes: int = 3) -> None:
        self.name = name
        self.stalled = stalled
        self.interval = interval
        self.strikes = strikes
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._watch, name=f"{self.name}-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        count = 0
        while not self._stop.wait(self.interval):
            try:
                count = count + 1 if self.stalled() else 0
            except Exception:
                count = 0  # the broker itself is unreachable: the consumer reports that on its own
            if count >= self.strikes:
                log.error("consumer_stalled_restarting", process=self.name, seconds=round(count * self.interval))
                StallWatchdog.tripped = True
                os.kill(os.getpid(), signal.SIGTERM)
                return


def run_worker(
    app: Celery, *, queues: list[str], concurrency: int, hostname: str, loglevel: str, pool: str = "threads"
) -> None:
    """Run a Celery worker (thread pool, prefetch 1, task events on) until it is told to stop.

    The blocking consumer loop is used instead of kombu's event loop: with the event loop, a worker
    whose Redis restarts can sit on a dead connection without noticing and stop consuming for good
    (celery issues #8030, #10205); the blocking loop sees the broken socket and reconnects.
    """
    worker = app.Worker(
        queues=queues,
        pool_cls=pool,
        concurrency=concurrency,
        hostname=hostname,
        loglevel=loglevel,
        prefetch_multiplier=1,
        without_gossip=True,
        without_mingle=True,
        task_events=get_settings().task_events,
        use_eventloop=False,
    )
    worker.start()
    if StallWatchdog.tripped:
        raise SystemExit(STALLED_EXIT_STATUS)
    if worker.exitcode:
        raise SystemExit(worker.exitcode)


def get_redis(url: str | None = None) -> redis.Redis:
    """A Redis client on the broker's server, for keys and pub/sub beside Celery's."""
    url = url or broker_url()
    with _lock:
        client = _redis.get(url)
        if client is None:
            client = redis.Redis.from_url(
                _plain_redis_url(url), socket_timeout=5, socket_connect_timeout=3, health_check_interval=30
            )
            _redis[url] = client
        return client


def _plain_redis_url(url: str) -> str:
    # kombu spells a unix socket "redis+socket:///path"; redis-py spells it "unix:///path".
    if url.startswith("redis+socket://"):
        return "unix://" + url[len("redis+socket://") :]
    return url


def reset_clients() -> None:
    """Forget cached clients (tests, and after fork)."""
    with _lock:
        for client in _redis.values():
            client.close()
        _redis.clear()
        _celery.clear()
