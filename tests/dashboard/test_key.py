"""The API key: asked for when the api wants one, kept in the browser, and not needed in single-machine mode."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.dashboard.conftest import BROWSER_TEST, OpenTab
from tests.e2e.farm import Farm

pytestmark = BROWSER_TEST


def test_the_dashboard_asks_for_a_key_and_keeps_it(open_tab: OpenTab, farm: Farm) -> None:
    session = open_tab(key=None)
    page = session.page
    page.goto(f"{farm.api_url}/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("no API key: send `Authorization: Bearer <key>`")

    page.locator("#key-input").fill("pf_not-a-real-key")
    page.locator("#key-save").click()
    expect(page.locator("#key-reason")).to_have_text("unknown or revoked API key")
    session.shot("key-dialog")

    page.locator("#key-input").fill(farm.key)
    page.locator("#key-save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#key-button")).to_have_text("Key · Business")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator('.stat[data-stat="total"] .value')).to_have_text(
        str(farm.call("GET", "/task/stats")["data"]["total"])
    )
    assert page.evaluate("localStorage.getItem('phonefleet.apiKey')") == farm.key

    page.reload()
    expect(page.locator("#live")).to_have_text("live")
    expect(dialog).to_be_hidden()


def test_single_machine_mode_needs_no_key(open_tab: OpenTab, loopback_url: str) -> None:
    session = open_tab(key=None)
    page = session.page
    page.goto(f"{loopback_url}/#/devices")
    expect(page.locator("#key-button")).to_have_text("No key · Business")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("article.device").first).to_be_visible()
    expect(page.locator("#key-dialog")).to_be_hidden()
