"""A merchant's first hour in the embedded admin, in real Chromium inside devstore's Shopify admin:
the home page opened from Shopify's signed launch URL keeps its progress current without an error
and clears it once tags are written; a member's name leads to that customer in the shop's admin."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from segments.membership.models import Membership, TagChange
from segments.mirror.models import Customer
from segments.tags.sync import shop_tags_sync
from tests.browser.conftest import app_frame, screenshot
from tests.browser.test_pages import biggest, open_page, seeded  # noqa: F401  (the seeded shop fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every time the error banner shows, however briefly (a refresh that failed once).
WATCH_ERRORS = """() => {
  window.errorsShown = [];
  const banner = document.getElementById("api-error");
  new MutationObserver(() => { if (!banner.hidden) window.errorsShown.push(banner.innerText); })
    .observe(banner, {attributes: true, attributeFilter: ["hidden"], childList: true, subtree: true});
}"""


def test_home_opened_from_the_signed_launch_url_clears_its_progress_once_tags_are_written(page, seeded):
    shop, admin_url = seeded
    # Given tag changes waiting, and the app opened as Shopify opens it: /?…&id_token=…&hmac=…
    assert TagChange.objects.filter(shop=shop, processed_at__isnull=True).exists()
    page.goto(admin_url)
    frame = app_frame(page)
    assert "hmac=" in frame.url
    jobs = frame.locator("#jobs")
    expect(jobs).to_contain_text("Writing tags to Shopify")
    frame.evaluate(WATCH_ERRORS)
    # When tag sync writes them all to devstore
    for _ in range(5):
        shop_tags_sync(shop_id=shop.pk)
        if not TagChange.objects.filter(shop=shop, processed_at__isnull=True).exists():
            break
    assert not TagChange.objects.filter(shop=shop, processed_at__isnull=True).exists()
    # Then the card goes away in place (no reload), and no refresh ever failed
    expect(jobs).to_be_hidden()
    expect(frame.locator("#jobs")).to_have_attribute("data-running", "false")
    expect(frame.locator("#api-error")).to_be_hidden()
    assert frame.evaluate("window.errorsShown") == []
    assert "hmac=" in frame.url                                   # the same document, refreshed in place
    screenshot(page, "first-hour-home-progress-cleared")


def test_a_members_name_opens_the_customer_in_the_shops_admin(page, seeded, devstore):
    shop, admin_url = seeded
    segment = biggest(shop)
    frame = open_page(page, admin_url, f"admin/segments/{segment.pk}")
    first = frame.locator("#members tbody tr").first
    customer = Customer.objects.get(pk=first.get_attribute("data-customer"))
    assert Membership.objects.filter(segment=segment, customer=customer).exists()
    # When the merchant clicks the member's name
    first.locator("td.name a").click()
    # Then the whole window shows that customer in devstore's admin (no DNS error, no app frame)
    customer_page = f"{devstore.url}/shops/{shop.domain}/admin/customers/{customer.shopify_id}"
    page.wait_for_url(customer_page)
    name = f"{customer.first_name} {customer.last_name}".strip() or f"Customer {customer.shopify_id}"
    expect(page.locator("h1")).to_have_text(name)
    expect(page.locator("#customer-id")).to_have_text(str(customer.shopify_id))
    if customer.email:
        expect(page.locator("#customer-email")).to_have_text(customer.email)
    screenshot(page, "first-hour-member-link")
