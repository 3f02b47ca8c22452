"""The devices grid: phones by hub, online, busy with which task, and the last failure screenshot."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.dashboard.conftest import BROWSER_TEST, HUB, Session
from tests.e2e.farm import Farm

pytestmark = BROWSER_TEST


def test_the_grid_shows_every_phone_and_what_it_does(dashboard: Session, farm: Farm, serials: list[str]) -> None:
    page = dashboard.page
    page.locator('.nav a[data-section="devices"]').click()
    hub = page.locator(f'section.hub[data-hub="{HUB}"]')
    expect(hub.locator("h2 .muted")).to_have_text("4 phones, 4 online")
    expect(hub.locator("article.device")).to_have_count(len(serials))
    for serial in serials:
        card = hub.locator(f'article.device[data-serial="{serial}"]')
        expect(card.locator(".badge.online")).to_have_text("online")
        expect(card.locator(".model")).to_have_text(farm.devices()[serial]["model"])
        expect(card.locator('[data-role="screen"]')).to_contain_text("on-demand screenshots are not available yet")

    busy_serial, failing_serial = serials[1], serials[2]
    (busy_id,) = farm.create(serials=[busy_serial], script_name="noop", script_config={"duration": 2})
    activity = hub.locator(f'article.device[data-serial="{busy_serial}"] [data-role="activity"]')
    expect(activity).to_contain_text(f"busy task #{busy_id}")
    dashboard.shot("devices")
    expect(activity).to_have_text("idle", timeout=30_000)

    (failed_id,) = farm.create(
        serials=[failing_serial], script_name="noop", script_config={"fail_with": "for the grid"}
    )
    farm.wait_tasks([failed_id], timeout=30)
    card = hub.locator(f'article.device[data-serial="{failing_serial}"]')
    card.locator('button[data-action="screenshot"]').click()
    expect(card.locator('[data-role="screen"] img')).to_be_visible()
    expect(card.locator('[data-role="screen-caption"]')).to_have_text(
        f"Failure screenshot of task #{failed_id}, not a live view."
    )
    natural_width = card.locator('[data-role="screen"] img').evaluate("img => img.naturalWidth")
    assert natural_width > 0, "the PNG decoded"
    dashboard.shot("devices-screenshot")
