"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright) against a running
farm: the api, a dispatcher and one hub with four simulated phones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from shared.embedded import free_port, wait_for_port
from tests.e2e.farm import Farm, Process, start_farm
from tests.services import ServiceUrls, drop_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
REDIS_DB = 15
HUB = "hub-d"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

# Every browser test module sets `pytestmark = BROWSER_TEST`.
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium chromium-driver` (.ci/run does it)",
)
BROWSER_TEST = [requires_chromium, pytest.mark.e2e]

# Waiting assertions (expect) poll until this deadline; nothing here sleeps to synchronise.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="package")
def farm(services: ServiceUrls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One hub of four simulated phones, each logged in to 2 TikTok and 2 Instagram accounts."""
    started = start_farm(services, tmp_path_factory.mktemp("dashboard-farm"), REDIS_DB, {HUB: 4})
    yield started
    started.stop()
    drop_database(services.admin_database_url, started.database_url)


@pytest.fixture(scope="package")
def serials(farm: Farm) -> list[str]:
    return farm.hubs[HUB].serials


@pytest.fixture(scope="package")
def loopback_url(farm: Farm) -> Iterator[str]:
    """A second api on the farm's database in single-machine mode: loopback callers need no key."""
    port = free_port()
    process = Process(
        "api-loopback",
        ["api", "--port", str(port)],
        farm.env(PHONEFLEET_ALLOW_LOOPBACK_WITHOUT_KEY="true"),
        farm.logs / "api-loopback.log",
    ).start()
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Session:
    """A browser tab on the dashboard, and what went wrong in it."""

    page: Page
    context: BrowserContext
    errors: list[str]

    def shot(self, name: str) -> Path:
        """Save a screenshot of the whole page as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_session(browser: Browser, *, key: str | None, viewport: dict[str, int]) -> Session:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(20_000)
    if key is not None:
        context.add_init_script(f"window.localStorage.setItem('phonefleet.apiKey', {key!r});")
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The browser logs every non-2xx response; the dashboard shows those itself.
        if message.type == "error" and not re.search(r"status of [45]\d\d", message.text):
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return Session(page=page, context=context, errors=errors)


@pytest.fixture
def dashboard(browser: Browser, farm: Farm) -> Iterator[Session]:
    """A desktop-sized tab holding the farm's key, on the task list."""
    session = open_session(browser, key=farm.key, viewport=DESKTOP)
    session.page.goto(f"{farm.api_url}/#/tasks")
    expect(session.page.locator("#live")).to_have_text("live")
    yield session
    session.context.close()
    assert not session.errors, session.errors


class OpenTab(Protocol):
    def __call__(self, *, key: str | None, viewport: dict[str, int] = ...) -> Session: ...


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[OpenTab]:
    """Open more tabs (another key, another size); they are closed and checked for errors afterwards."""
    sessions: list[Session] = []

    def make(*, key: str | None, viewport: dict[str, int] = DESKTOP) -> Session:
        session = open_session(browser, key=key, viewport=viewport)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.context.close()
    for session in sessions:
        assert not session.errors, session.errors
