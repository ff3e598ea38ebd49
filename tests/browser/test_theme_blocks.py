"""The theme app extension on devstore's storefront in Chromium, its Liquid rendered by a real Liquid
engine and its app embed asking the app for a logged-out visitor's segments through the app proxy
(signed by devstore as Shopify signs it): a segment's members see the member banner, everyone else,
held-out members included, the default, and nobody sees the wrong one first."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from segments.membership.definitions import segment_create
from segments.membership.models import Membership, VisitorMembership
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.tags.sync import shop_tags_sync
from tests.browser.conftest import screenshot
from tests.browser.test_storefront import CARTERS, names_arrived, refresh
from tests.conftest import install_live, settle

pytestmark = pytest.mark.django_db(transaction=True)
MEMBER, DEFAULT = "Still thinking it over?", "New this season"


@pytest.fixture
def store(devstore, live_server, settings, django_capture_on_commit_callbacks):
    domain, _ = install_live(devstore, live_server, settings, customers=12)
    settle(devstore, domain)
    with django_capture_on_commit_callbacks(execute=True):
        carters = segment_create(shop=Shop.objects.get(domain=domain), name="Carters", rules=CARTERS, author="test")
    base = f"{devstore.url}/shops/{domain}/store"
    theme = devstore.control("PUT", f"/shops/{domain}/theme", json={
        "embed": {"enabled": True, "settings": {"proxy_path": f"/shops/{domain}/store/apps/shopseg"}},
        "templates": {"index": [{"block": "segment-banner", "settings": {
            "segments": f"seg:{carters.handle}", "member_heading": MEMBER, "default_heading": DEFAULT}}]}})
    assert theme["embed"]["enabled"]
    return domain, base, carters


def forget_answers(page: Page) -> None:
    """What 15 s would do: the proxy's answers are kept that long by the browser (its HTTP cache,
    Cache-Control: private, max-age=15) and by the embed (sessionStorage)."""
    page.context.new_cdp_session(page).send("Network.clearBrowserCache")
    page.evaluate("sessionStorage.clear()")


def banner(page: Page):
    return page.locator(".shopseg-banner:visible h2")


def test_an_anonymous_visitor_sees_the_default_until_they_are_a_member(page: Page, store):
    domain, base, carters = store
    seen = []
    page.on("request", lambda r: seen.append(r.url) if "/apps/shopseg/segments" in r.url else None)
    page.goto(f"{base}/")
    expect(banner(page)).to_have_text(DEFAULT)
    assert page.locator(f"text={MEMBER}").is_hidden()
    page.click("#consent-accept")
    page.locator(".card a").first.click()
    page.click("#add-to-cart")
    names_arrived({"product_added_to_cart"})
    refresh()
    assert VisitorMembership.objects.filter(segment=carters, holdout=False).count() == 1

    forget_answers(page)
    page.goto(f"{base}/")
    expect(banner(page)).to_have_text(MEMBER)
    assert page.locator(f"text={DEFAULT}").is_hidden()
    assert any("client_id=" in url for url in seen)     # asked through the proxy, by the pixel's clientId
    screenshot(page, "storefront-banner-member")

    # Held out of the segment, the same visitor sees what everyone else sees.
    VisitorMembership.objects.filter(segment=carters).update(holdout=True)
    forget_answers(page)
    page.goto(f"{base}/")
    expect(banner(page)).to_have_text(DEFAULT)
    assert page.locator(f"text={MEMBER}").is_hidden()


def test_a_logged_in_member_gets_the_member_banner_from_their_tags(page: Page, store, devstore):
    domain, base, carters = store
    member, other = Customer.objects.filter(shop__domain=domain).order_by("shopify_id")[:2]
    page.goto(f"{base}/account/login?customer={member.shopify_id}")
    page.click("#consent-accept")
    page.locator(".card a").first.click()
    page.click("#add-to-cart")
    names_arrived({"product_added_to_cart"})
    refresh()
    assert list(Membership.objects.filter(segment=carters).values_list("customer_id", flat=True)) == [member.pk]
    shop_tags_sync(shop_id=carters.shop_id)       # what the worker does next: the tag reaches Shopify
    tags = devstore.control("GET", f"/shops/{domain}/customers/{member.shopify_id}/tags")["tags"]
    assert f"seg:{carters.handle}" in tags

    proxied = []
    page.on("request", lambda r: proxied.append(r.url) if "/apps/shopseg/" in r.url else None)
    page.goto(f"{base}/")
    # Liquid decided from customer.tags: only the member banner is in the page, and no proxy call.
    expect(banner(page)).to_have_text(MEMBER)
    assert page.locator(f"text={DEFAULT}").count() == 0 and proxied == []
    screenshot(page, "storefront-banner-logged-in-member")

    page.goto(f"{base}/account/login?customer={other.shopify_id}")
    expect(banner(page)).to_have_text(DEFAULT)
    assert page.locator(f"text={MEMBER}").count() == 0
