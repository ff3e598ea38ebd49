"""A shopper on devstore's storefront in Chromium, with shopseg's real pixel bundle running in
devstore's sandbox the way Shopify runs app pixels: with consent, what they view, search and add to
cart arrives at the app (page by page, in batches) and rolls up into their day; once they sign in,
the browser joins the customer and its earlier history counts for them. Without consent, and after
it is withdrawn, nothing leaves the browser."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from segments.membership.definitions import segment_create
from segments.membership.models import Membership, VisitorMembership
from segments.membership.visitors import dirty_visitors_refresh
from segments.metrics.refresh import dirty_shops_refresh
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.storefront.models import StorefrontEvent, Visitor, VisitorDay
from segments.storefront.rollup import visitor_days_rollup
from tests.browser.conftest import app_frame, screenshot
from tests.conftest import install_live, settle

pytestmark = pytest.mark.django_db(transaction=True)


def names_arrived(expected: set[str], *, timeout: float = 20) -> list[str]:
    """The stored event names, once they include `expected` (the pixel sends within a fraction of a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = list(StorefrontEvent.objects.order_by("occurred_at", "seq").values_list("name", flat=True))
        if expected <= set(names):
            return names
        time.sleep(0.1)
    raise AssertionError(f"{sorted(expected - set(names))} never arrived; got {names}")


@pytest.fixture
def store(devstore, live_server, settings):
    domain, admin = install_live(devstore, live_server, settings, customers=12)
    settle(devstore, domain)
    return domain, f"{devstore.url}/shops/{domain}/store", admin.split("?")[0].rstrip("/")


CARTERS = {"version": 1, "include": {"metric": "add_to_carts", "op": "gte", "value": 1, "window": {"last_days": 7}}}


def refresh() -> None:
    """What the worker's beat does every 2 s: roll visitor-days up, then the marked visitors' segments
    and the dirty customers'."""
    while visitor_days_rollup() or dirty_visitors_refresh():
        pass
    dirty_shops_refresh()


def test_a_shoppers_browsing_arrives_and_joins_them_when_they_sign_in(page: Page, store, devstore,
                                                                      django_capture_on_commit_callbacks):
    domain, base, admin = store
    with django_capture_on_commit_callbacks(execute=True):
        carters = segment_create(shop=Shop.objects.get(domain=domain), name="Carters", rules=CARTERS, author="test")
    page.goto(f"{base}/")
    expect(page.locator("#consent")).to_be_visible()
    screenshot(page, "storefront-consent")
    page.click("#consent-accept")
    names_arrived({"page_viewed"})

    page.locator(".chip").first.click()
    names_arrived({"collection_viewed"})
    page.locator(".card a").first.click()
    expect(page.locator("#add-to-cart")).to_be_visible()
    page.click("#add-to-cart")
    names_arrived({"product_viewed", "product_added_to_cart"})
    screenshot(page, "storefront-product")
    page.fill("header input[name=q]", page.locator("h1").inner_text().split()[0])
    page.click("header button")
    names_arrived({"search_submitted"})
    page.click("text=Cart (")
    names_arrived({"cart_viewed"})
    screenshot(page, "storefront-cart")

    visitor = Visitor.objects.get()
    assert visitor.customer_id is None and visitor.customer_shopify_id is None
    refresh()
    day = VisitorDay.objects.get(visitor=visitor)
    assert (day.collection_views, day.product_views, day.add_to_carts, day.searches, day.cart_views) == (1, 1, 1, 1, 1)
    assert day.page_views == 5 and day.sessions == 1
    # Still anonymous, they are in the segment as a visitor (no customer is).
    assert list(VisitorMembership.objects.filter(segment=carters).values_list("visitor_id", flat=True)) == [visitor.pk]
    assert not Membership.objects.filter(segment=carters).exists()
    frame = app_frame_at(page, admin, f"admin/segments/{carters.pk}")
    expect(frame.locator("dt", has_text="Anonymous visitors").locator("xpath=..").locator(".stat")).to_have_text("1")
    screenshot(page, "segment-anonymous-visitors")
    frame = app_frame_at(page, admin, "admin/")
    expect(frame.locator(f"tr[data-segment='{carters.pk}']")).to_contain_text("+ 1 visitor")
    screenshot(page, "home-anonymous-visitors")

    # Later they sign in: the same browser now names the customer, and its history is theirs.
    customer = Customer.objects.filter(shop__domain=domain).order_by("shopify_id").first()
    page.goto(f"{base}/account/login?customer={customer.shopify_id}")
    names_arrived({"page_viewed"})
    deadline = time.monotonic() + 20
    while Visitor.objects.get(pk=visitor.pk).customer_id is None and time.monotonic() < deadline:
        time.sleep(0.1)
    joined = Visitor.objects.get(pk=visitor.pk)
    assert (joined.customer_id, joined.identified_by) == (customer.pk, "login")
    refresh()
    assert VisitorDay.objects.get(visitor__customer=customer).product_views == 1     # from before they signed in
    # The customer is in the segment now, with the cart from before they signed in; the visitor is not.
    assert list(Membership.objects.filter(segment=carters).values_list("customer_id", flat=True)) == [customer.pk]
    assert not VisitorMembership.objects.filter(segment=carters).exists()


def app_frame_at(page: Page, admin: str, path: str):
    page.goto(f"{admin}/{path}")
    return app_frame(page)


def test_nothing_leaves_the_browser_without_consent_or_after_it_is_withdrawn(page: Page, store):
    _, base, _ = store
    page.goto(f"{base}/")
    page.click("#consent-decline")
    page.locator(".card a").first.click()
    page.click("#add-to-cart")
    page.wait_for_timeout(1000)                      # what a pixel would have sent by now
    assert list(StorefrontEvent.objects.values_list("name", "url")) == []
    assert "shopseg_cid" not in page.evaluate("document.cookie")     # no id for the theme's blocks either

    page.evaluate("window.Shopify.customerPrivacy.setTrackingConsent({analytics: true})")
    names_arrived({"page_viewed", "product_viewed", "product_added_to_cart"})   # this page's, replayed
    client_id = StorefrontEvent.objects.values_list("visitor__client_id", flat=True).first()
    assert f"shopseg_cid={client_id}" in page.evaluate("document.cookie")
    sent = StorefrontEvent.objects.count()
    page.evaluate("window.Shopify.customerPrivacy.setTrackingConsent({analytics: false})")
    page.click("#add-to-cart")
    page.evaluate("window.Shopify.analytics.publish('size_finder:opened', {size: 'M'})")
    page.wait_for_timeout(1000)
    assert StorefrontEvent.objects.count() == sent
    assert "shopseg_cid" not in page.evaluate("document.cookie")     # withdrawn: the id is erased


def test_a_themes_custom_event_arrives_with_its_plain_values(page: Page, store):
    _, base, _ = store
    page.goto(f"{base}/")
    page.click("#consent-accept")
    names_arrived({"page_viewed"})
    page.evaluate("window.Shopify.analytics.publish('size_finder:opened', "
                  "{size: 'M', fit: {nested: true}, away: 'x'.repeat(400)})")
    page.evaluate("window.Shopify.analytics.publish('not a namespaced name', {})")
    names_arrived({"size_finder:opened"})
    custom = StorefrontEvent.objects.get(name="size_finder:opened")
    assert custom.data == {"size": "M", "away": "x" * 256}
    assert not StorefrontEvent.objects.filter(name="not a namespaced name").exists()
