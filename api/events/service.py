"""The live feed: one poller per api process, fanned out to every open event stream.

However many dashboards are open, PostgreSQL sees one pair of small queries per ``poll_seconds``
from each api process, and none at all while nobody listens: the poller starts with the first
subscriber and stops with the last. Each poll reads the task counts (``task_count``, a few hundred
rows) and the tasks stamped since the previous poll (``ix_task_updated_at``).

A row is stamped when it is written but becomes visible when its transaction commits, a little
later; so each poll looks ``overlap`` further back than the previous one and skips what it has
already sent. When more tasks changed at once than one poll sends, subscribers get ``resync``
instead (re-read what you show), and the same when a subscriber falls too far behind.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
import structlog
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from api.errors import UNAVAILABLE_HINT
from api.events import repository
from api.events.schemas import TaskEvent
from api.tasks import service as tasks_service
from api.tasks.schemas import TaskStats
from shared.db.engine import transaction
from shared.db.models import Task
from shared.errors import Code
from shared.settings import Settings, get_settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name and its JSON data."""

    name: str
    data: str

    def encode(self) -> bytes:
        return f"event: {self.name}\ndata: {self.data}\n\n".encode()


def stats_event(stats: TaskStats) -> Event:
    return Event("stats", stats.model_dump_json())


RESYNC = Event("resync", "{}")


class Subscription:
    """One stream's queue of events. Never blocks the poller: past ``limit`` waiting events the
    queue is replaced by a single ``resync``."""

    def __init__(self, limit: int) -> None:
        self._events: deque[Event] = deque()
        self._limit = limit
        self._wakeup = asyncio.Event()
        self.closed = False

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if len(self._events) >= self._limit:
            self._events.clear()
            event = RESYNC
        self._events.append(event)
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def next(self, idle_seconds: float) -> Event | None:
        """The next event, or None after ``idle_seconds`` without one, or when the feed closed."""
        if not self._events and not self.closed:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), idle_seconds)
            except TimeoutError:
                return None
        return self._events.popleft() if self._events else None


def server_is_exiting() -> bool:
    """True once uvicorn has been told to stop.

    uvicorn lets every open response finish before it exits, and an event stream never finishes by
    itself. Its signal handler is a bound method of its ``Server``, whose ``should_exit`` says a stop
    was asked; reading it (never patching anything) lets the streams end so that the process can exit.
    """
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


@dataclass
class _Poll:
    stats: TaskStats
    tasks: list[TaskEvent]
    read_at: datetime
    truncated: bool


class TaskFeed:
    """Task changes and task counts, read once per poll and pushed to every subscriber."""

    def __init__(
        self,
        *,
        poll_seconds: float = 0.5,
        overlap: timedelta = timedelta(seconds=2),
        max_tasks_per_poll: int = 1000,
        queue_limit: int = 2000,
    ) -> None:
        self.poll_seconds = poll_seconds
        self.overlap = overlap
        self.max_tasks_per_poll = max_tasks_per_poll
        self.queue_limit = queue_limit
        self._subscribers: set[Subscription] = set()
        self._poller: asyncio.Task[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._cursor: datetime | None = None
        self._sent: dict[int, datetime] = {}
        self._stats: TaskStats | None = None
        self._failing = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """A subscription for the duration of the block; the current counts come first."""
        subscription = Subscription(self.queue_limit)
        if self._stats is not None:
            subscription.push(stats_event(self._stats))
        self._subscribers.add(subscription)
        self._ensure_polling()
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)
            if not self._subscribers and self._poller is not None:
                self._poller.cancel()
                self._poller = None
                self._reset()

    def _ensure_polling(self) -> None:
        loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:
            self._reset()
            self._poller = loop.create_task(self._run(), name="phonefleet-task-feed")

    def _publish(self, event: Event) -> None:
        for subscription in self._subscribers:
            subscription.push(event)

    async def _run(self) -> None:
        while self._subscribers:
            if server_is_exiting():
                for subscription in self._subscribers:
                    subscription.close()
                return
            since = None if self._cursor is None else self._cursor - self.overlap
            try:
                self._deliver(await anyio.to_thread.run_sync(self._poll, since))
            except Exception as exc:
                self._report_failure(exc)
            await asyncio.sleep(self.poll_seconds)

    def _poll(self, since: datetime | None) -> _Poll:
        """Runs in a worker thread: one short transaction, two queries."""
        settings = get_settings()
        with transaction() as session:
            if since is None:
                tasks, read_at, truncated = [], repository.database_now(session), False
            else:
                changes = repository.tasks_changed_since(session, since, limit=self.max_tasks_per_poll + 1)
                rows, read_at = changes.tasks, changes.read_at
                truncated = len(rows) > self.max_tasks_per_poll
                tasks = [_task_event(row, settings) for row in rows[: self.max_tasks_per_poll]]
            stats = tasks_service.stats(session)
        return _Poll(stats=stats, tasks=tasks, read_at=read_at, truncated=truncated)

    def _deliver(self, poll: _Poll) -> None:
        if self._failing:
            self._failing = False
            log.info("task_feed_recovered")
            self._publish(RESYNC)
        window_start = poll.read_at - self.overlap
        self._sent = {task_id: at for task_id, at in self._sent.items() if at >= window_start}
        fresh = [t for t in poll.tasks if self._sent.get(t.id) != t.updated_at]
        for task in poll.tasks:
            self._sent[task.id] = task.updated_at
        if poll.truncated:
            self._publish(RESYNC)
        else:
            for task in fresh:
                self._publish(Event("task", task.model_dump_json()))
        if poll.stats != self._stats:
            self._stats = poll.stats
            self._publish(stats_event(poll.stats))
        self._cursor = poll.read_at

    def _report_failure(self, exc: Exception) -> None:
        """Tell subscribers once per outage, in the envelope's words; the poller keeps trying."""
        if self._failing:
            return
        self._failing = True
        if isinstance(exc, OperationalError | PoolTimeoutError):
            log.warning("task_feed_database_unavailable", error=str(exc).splitlines()[0] if str(exc) else "")
            code, message = Code.UNAVAILABLE, UNAVAILABLE_HINT.format(service="database")
        else:
            error_id = uuid.uuid4().hex[:12]
            log.error("task_feed_failed", error_id=error_id, exc_info=exc)
            code, message = Code.INTERNAL, f"live updates failed (error id {error_id}); the server log has the details"
        self._publish(Event("error", json.dumps({"code": int(code), "message": message, "data": None})))


def _task_event(row: Task, settings: Settings) -> TaskEvent:
    public = tasks_service.to_public(row, settings)
    return TaskEvent.model_validate({**public.model_dump(), "updated_at": row.updated_at})
