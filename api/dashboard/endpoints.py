"""The operators' web dashboard: ``/`` serves its page, ``/ui/...`` its scripts and styles.

Plain HTML, CSS and JavaScript modules shipped as package data: nothing to build. The page talks to
the public API like any other client (it has no endpoint of its own) and keeps the operator's key in
the browser's localStorage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).with_name("static")

# The page loads nothing from elsewhere and runs no inline script; screenshots arrive as blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (cheap: ETag): after an upgrade the browser never mixes old and new modules.
    "Cache-Control": "no-cache",
}


class DashboardFiles(StaticFiles):
    """Static files with the dashboard's security and caching headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
                ]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


router = APIRouter(include_in_schema=False)
router.mount("/ui", DashboardFiles(directory=STATIC), name="dashboard-files")


@router.get("/")
def dashboard() -> FileResponse:
    """The dashboard's single page; its views live behind ``#/tasks``, ``#/devices``, ``#/accounts``."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)
