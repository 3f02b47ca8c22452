"""Accounts in the dashboard: list, filter, add, remove."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.dashboard.conftest import BROWSER_TEST, Session
from tests.e2e.farm import Farm

pytestmark = BROWSER_TEST


def test_add_filter_and_remove_an_account(dashboard: Session, farm: Farm, serials: list[str]) -> None:
    page = dashboard.page
    page.locator('.nav a[data-section="accounts"]').click()
    table = page.locator("#accounts-table")
    expect(table.locator("tbody tr[data-account-id]")).to_have_count(16)  # 4 phones x (2 TikTok + 2 Instagram)

    page.locator("details.add > summary").click()
    form = page.locator("#account-add")
    form.locator('input[name="username"]').fill("@dash_new")
    form.locator('select[name="platform"]').select_option("instagram")
    form.locator('input[name="device"]').fill(serials[0])
    form.locator('input[name="password"]').fill("s3cret")
    form.locator('input[name="tags"]').fill("fr, promo")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#messages")).to_contain_text("Account @dash_new (instagram) added")
    added = table.locator('tr[data-username="dash_new"]')
    expect(added).to_contain_text("fr, promo")
    expect(added.locator(".badge.online")).to_be_visible()
    (account,) = farm.call("GET", "/accounts", params={"username": "dash_new"})["data"]["accounts"]
    assert (account["platform"], account["device"], account["tags"]) == ("instagram", serials[0], ["fr", "promo"])
    assert "password" not in account

    # The same name twice on one platform: the api's message is shown.
    form.locator('input[name="username"]').fill("dash_new")
    form.locator('select[name="platform"]').select_option("instagram")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#messages .message.error")).to_contain_text("already exists on instagram")

    page.locator('#account-filters input[name="tag"]').fill("promo")
    page.locator('#account-filters input[name="tag"]').press("Enter")
    expect(table.locator("tbody tr[data-account-id]")).to_have_count(1)
    dashboard.shot("accounts")

    added.locator('button[data-action="remove"]').click()
    expect(page.locator("#confirm-text")).to_contain_text("Remove @dash_new (instagram)?")
    page.locator("#confirm-ok").click()
    expect(page.locator("#messages")).to_contain_text("Account @dash_new removed")
    expect(table.locator("tbody tr[data-account-id]")).to_have_count(0)
    assert farm.call("GET", "/accounts", params={"username": "dash_new"})["data"]["total"] == 0
