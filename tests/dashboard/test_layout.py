"""The dashboard on a phone-sized screen (390 x 844): everything fits the width, tables turn into cards."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import BROWSER_TEST, PHONE, OpenTab
from tests.e2e.farm import Farm

pytestmark = BROWSER_TEST


def fits_the_width(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"horizontal scrolling: content {widths[0]}px on a {widths[1]}px screen"


def test_every_page_fits_a_phone(open_tab: OpenTab, farm: Farm, serials: list[str]) -> None:
    session = open_tab(key=farm.key, viewport=PHONE)
    page = session.page
    farm.create(serials=[serials[3]], script_name="noop", script_config={"fail_with": "shown on a phone"})
    page.goto(f"{farm.api_url}/#/tasks")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#tasks-table tbody tr[data-task-id]").first).to_be_visible()
    expect(page.locator("#tasks-table thead")).to_be_hidden()
    for stat in ("total", "pending", "running", "completed", "failed"):
        expect(page.locator(f'.stat[data-stat="{stat}"]')).to_be_in_viewport()
    expect(page.locator(".nav")).to_be_in_viewport()
    fits_the_width(page)
    session.shot("phone-tasks")

    page.locator("#new-task").click()
    expect(page.locator('[data-list="serials"] label')).to_have_count(len(serials))
    fits_the_width(page)
    session.shot("phone-new-task")

    page.locator('.nav a[data-section="devices"]').click()
    expect(page.locator("article.device")).to_have_count(len(serials))
    fits_the_width(page)
    session.shot("phone-devices")

    page.locator('.nav a[data-section="accounts"]').click()
    expect(page.locator("#accounts-table tbody tr[data-account-id]").first).to_be_visible()
    expect(page.locator("#accounts-table thead")).to_be_hidden()
    fits_the_width(page)
    session.shot("phone-accounts")
