"""``GET /events``: server-sent events for live views (the dashboard's task table and stats)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import Principal, authenticate, presented_key, require_api
from api.envelope import error_responses
from api.events.service import TaskFeed

router = APIRouter(tags=["events"])

KEEPALIVE_SECONDS = 15.0
# How long a browser's EventSource waits before it reconnects after the stream drops.
RETRY_MILLISECONDS = 3000

STREAM_EXAMPLE = (
    "retry: 3000\n\n"
    'event: stats\ndata: {"total": 12, "pending": 3, "running": 2, "completed": 6, "failed": 1}\n\n'
    'event: task\ndata: {"id": 101, "serial": "R58M41ABCDE", "status": 1, "remark": "", "...": "...", '
    '"updated_at": "2026-11-29T21:30:04.120000+01:00"}\n\n'
    ": keepalive\n\n"
)


async def events_principal(
    request: Request,
    key: Annotated[
        str | None,
        Query(
            max_length=200,
            description="the API key, for clients that cannot set headers (a browser's EventSource); "
            "prefer the Authorization header, since URLs end up in access logs",
        ),
    ] = None,
) -> Principal:
    """The caller, authenticated like every endpoint; a ``key`` query parameter counts as a Bearer key."""
    if key and presented_key(request) is None:
        scope = dict(request.scope)
        scope["headers"] = [*request.scope["headers"], (b"authorization", f"Bearer {key}".encode())]
        request = Request(scope)
    return await require_api(await authenticate(request))


async def task_feed(request: Request) -> TaskFeed:
    """The process's feed: one per app, made on first use (on the event loop, so made once)."""
    feed: TaskFeed | None = getattr(request.app.state, "task_feed", None)
    if feed is None:
        feed = request.app.state.task_feed = TaskFeed()
    return feed


async def event_stream(feed: TaskFeed) -> AsyncIterator[bytes]:
    async with feed.subscribe() as subscription:
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        while not subscription.closed:
            event = await subscription.next(KEEPALIVE_SECONDS)
            if event is not None:
                yield event.encode()
            elif not subscription.closed:
                yield b": keepalive\n\n"


@router.get(
    "/events",
    summary="Live task changes (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": STREAM_EXAMPLE}},
        },
        **error_responses(),
    },
)
async def events(
    feed: Annotated[TaskFeed, Depends(task_feed)],
    _: Annotated[Principal, Depends(events_principal)],
) -> StreamingResponse:
    """A stream of [server-sent events](https://html.spec.whatwg.org/multipage/server-sent-events.html):

    - `stats` — `{"total", "pending", "running", "completed", "failed"}` (as `GET /task/stats`): first
      the current counts, then again whenever they change.
    - `task` — a task that changed (was created, started, finished, stopped, retried...), as
      `GET /task/{id}` shows it plus `updated_at`. Deleted tasks have no event; `stats` shows them gone.
    - `resync` — more changed at once than the stream sends one by one: re-read what you show.
    - `error` — the feed cannot read the database: the envelope (`code` 50301, `message`); it keeps
      trying and sends `resync` once it can again.

    A comment line (`: keepalive`) every 15 s keeps proxies from closing an idle stream. Changes show
    within about a second. Authenticate as everywhere, or, from a browser's `EventSource` (which cannot
    set headers), with `?key=<key>`.
    """
    return StreamingResponse(
        event_stream(feed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
