"""The inactive-customer retention on the settings page, in real Chromium inside devstore's admin at
1280 px: the statement of what anonymising does is on screen and not cut off, a refused period is
shown beside its field and saves nothing, a valid one is saved."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from segments.shops.models import Shop
from tests.browser.conftest import app_frame, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_merchant_sets_the_inactive_customer_period(page, embedded_app):
    domain, admin_url = embedded_app
    page.goto(f"{admin_url.split('?')[0].rstrip('/')}/admin/settings")
    frame = app_frame(page)
    expect(frame.locator("h1")).to_have_text("Settings")
    statement = frame.locator("#anonymise-effect")
    expect(statement).to_be_visible()
    expect(statement).to_contain_text("Their segments, tags and KPIs do not change")
    # nothing of the statement or the field runs past the frame's right edge
    width = frame.evaluate("document.documentElement.clientWidth")
    for selector in ("#anonymise-effect", "#anonymise-effect p", "#inactive_customer_days", "#inactive-help"):
        for box in frame.eval_on_selector_all(selector, "els => els.map(e => e.getBoundingClientRect().toJSON())"):
            assert box["left"] >= 0 and box["right"] <= width, (selector, box, width)
    field = frame.locator("#inactive_customer_days")
    expect(field).to_have_value("730")

    field.fill("10")
    frame.click("button[type=submit]")
    expect(frame.locator("#inactive_customer_days-error")).to_contain_text("0 (never)")
    assert Shop.objects.get(domain=domain).inactive_customer_days == 730

    field.fill("400")
    frame.click("button[type=submit]")
    expect(frame.locator("#save-status")).to_have_text("Saved")
    assert Shop.objects.get(domain=domain).inactive_customer_days == 400
    # the whole page, 1280 px wide: tall enough that the admin's frame shows all of it
    page.set_viewport_size({"width": 1280, "height": frame.evaluate("document.documentElement.scrollHeight") + 60})
    frame.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "settings-inactive-customers")
