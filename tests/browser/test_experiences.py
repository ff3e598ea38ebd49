"""The four experience presets on devstore's storefront in Chromium. Each is picked in a playbook, written
by the app to Shopify (the experiences metafield, and for cart abandoners two real discount codes
limited to a native segment), and shown by the theme's "Segment experience" block: a member sees
the member side (a logged-in one from their tag, an anonymous one through the app proxy), a
non-member, a held-out member and an unknown visitor see the default side."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from devstore.storefront import collection_handle
from segments.experiences.playbooks import playbook_update
from segments.experiences.publish import shop_storefront_publish
from segments.membership.models import Segment, VisitorMembership
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.storefront.models import Visitor
from tests.browser.conftest import TIMEOUT_MS, screenshot
from tests.conftest import install_live, settle

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Storefront:
    chromium: Browser
    devstore: object
    shop: Shop
    base: str
    segment: Segment
    member: int          # Shopify ids of two customers: one carries the segment's tag
    other: int

    def visit(self, path: str = "/", *, customer: int | None = None, client_id: str | None = None) -> Page:
        """A new browser (no cookies, no cache) on the storefront, signed in as `customer` or carrying
        the web pixel's `shopseg_cid` cookie."""
        context = self.chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        if client_id:
            context.add_cookies([{"name": "shopseg_cid", "value": client_id, "url": self.devstore.url}])
        page = context.new_page()
        if customer:
            page.goto(f"{self.base}/account/login?customer={customer}")
        page.goto(self.base + path)
        return page

    def visitor(self, client_id: str, *, holdout: bool) -> str:
        """An anonymous visitor the app has put in the segment (treated, or held out)."""
        now = timezone.now()
        visitor = Visitor.objects.create(shop=self.shop, client_id=client_id, first_seen_at=now, last_seen_at=now)
        VisitorMembership.objects.create(segment=self.segment, visitor=visitor, holdout=holdout, entered_at=now)
        return client_id


@pytest.fixture
def storefront(chromium, devstore, live_server, settings):
    """An installed shop whose playbook for "Favourites" picks `request.param`'s preset, written to
    devstore, with the Segment experience block on the home page and the app embed on."""
    def make(experience: dict) -> Storefront:
        domain, _ = install_live(devstore, live_server, settings, customers=4)
        settle(devstore, domain)
        shop = Shop.objects.get(domain=domain)
        segment = Segment.objects.create(shop=shop, name="Favourites", handle="favourites")
        playbook_update(segment=segment, changes={"experience": experience}, author="test")
        assert shop_storefront_publish(shop_id=shop.pk) == ""
        devstore.control("PUT", f"/shops/{domain}/theme", json={
            "embed": {"enabled": True, "settings": {"proxy_path": f"/shops/{domain}/store/apps/shopseg"}},
            "templates": {"index": [{"block": "segment-experience", "settings": {"segment": segment.tag}}]}})
        member, other = Customer.objects.filter(shop=shop).order_by("shopify_id").values_list("shopify_id", flat=True)[:2]
        devstore.control("POST", f"/shops/{domain}/customers/{member}/tags", json={"add": [segment.tag]})
        return Storefront(chromium, devstore, shop, f"{devstore.url}/shops/{domain}/store", segment, member, other)
    return make


def shown(page: Page, selector: str):
    return page.locator(f"{selector}:visible")


def each_audience(store: Storefront, member_sees, default_sees) -> None:
    """Every kind of shopper: the members pass `member_sees(page)`, the others `default_sees(page)`."""
    audiences = [("logged-in member", member_sees, lambda: store.visit(customer=store.member)),
                 ("anonymous member", member_sees, lambda: store.visit(client_id=store.visitor("fan", holdout=False))),
                 ("non-member", default_sees, lambda: store.visit(customer=store.other)),
                 ("held-out member", default_sees, lambda: store.visit(client_id=store.visitor("held", holdout=True))),
                 ("unknown visitor", default_sees, lambda: store.visit())]
    for who, sees, visit in audiences:
        page = visit()
        page.wait_for_function("document.querySelector('.shopseg-block[hidden]') === null")   # the embed decided
        try:
            sees(page)
        except AssertionError as failed:
            raise AssertionError(f"{who}: {failed}") from failed
        finally:
            page.context.close()


def test_vip_hero_shows_new_arrivals_to_vips_and_the_sale_to_everyone_else(storefront):
    store = storefront({"preset": "vip_hero"})

    def member(page: Page):
        expect(shown(page, ".shopseg-banner h2")).to_have_text("New arrivals, first for our VIPs")
        expect(shown(page, ".shopseg-products__card")).to_have_count(4)
        assert shown(page, "text=Winter sale: 20% off").count() == 0

    def default(page: Page):
        expect(shown(page, ".shopseg-banner h2")).to_have_text("Winter sale: 20% off")
        assert shown(page, ".shopseg-products__card").count() == 0

    page = store.visit(customer=store.member)
    member(page)
    screenshot(page, "storefront-experience-vip-hero")
    page.context.close()
    each_audience(store, member, default)


def test_cart_abandoners_get_a_real_code_by_cart_value(storefront, devstore):
    store = storefront({"preset": "cart_value", "threshold": 1, "percent": 10})
    codes = {o["codes"][0]: o for o in devstore.control("GET", f"/shops/{store.shop.domain}/discounts")["discounts"]}
    assert set(codes) == {"FAVOURITES-FREESHIP", "FAVOURITES-10OFF"}

    def member(page: Page):       # an empty cart is below any threshold: the percentage code
        expect(shown(page, ".shopseg-offer h2")).to_have_text("10% off your cart")
        expect(shown(page, ".shopseg-offer__code strong")).to_have_text("FAVOURITES-10OFF")

    def default(page: Page):
        expect(shown(page, "nav.chips")).to_have_count(1)
        assert shown(page, ".shopseg-offer").count() == 0 and shown(page, "text=FAVOURITES-").count() == 0

    each_audience(store, member, default)

    # With something in the cart the member is above the threshold: free shipping, and the code works
    # at checkout for them.
    page = store.visit(customer=store.member)
    page.locator(".card a").first.click()
    page.click("#add-to-cart")
    page.goto(f"{store.base}/")
    expect(shown(page, ".shopseg-offer h2")).to_have_text("Free shipping on your cart")
    expect(shown(page, ".shopseg-offer__code strong")).to_have_text("FAVOURITES-FREESHIP")
    screenshot(page, "storefront-experience-cart-value")
    page.goto(f"{store.base}/checkout")
    page.fill("#discount-code", "FAVOURITES-FREESHIP")
    page.click("#pay")
    expect(page.locator("#thanks")).to_be_visible()
    page.context.close()

    # A customer outside the segment cannot use it: refused at checkout, no order.
    orders = devstore.control("GET", f"/shops/{store.shop.domain}/stats")["orders"]
    page = store.visit(customer=store.other)
    page.locator(".card a").first.click()
    page.click("#add-to-cart")
    page.goto(f"{store.base}/checkout")
    page.fill("#discount-code", "FAVOURITES-FREESHIP")
    page.click("#pay")
    expect(page.locator("#checkout-error")).to_be_visible()
    assert page.locator("#thanks").is_hidden()
    page.context.close()
    used = {o["codes"][0]: o["redemptions"] for o in
            devstore.control("GET", f"/shops/{store.shop.domain}/discounts")["discounts"]}
    assert used == {"FAVOURITES-FREESHIP": 1, "FAVOURITES-10OFF": 0}
    assert devstore.control("GET", f"/shops/{store.shop.domain}/stats")["orders"] == orders


def test_category_loyalists_land_on_their_category(storefront, devstore):
    kind = devstore.store.conn().execute("SELECT product_type FROM products ORDER BY id LIMIT 1").fetchone()[0]
    store = storefront({"preset": "category", "collection": collection_handle(kind)})

    def member(page: Page):
        expect(shown(page, ".shopseg-products__heading")).to_have_text(
            "Back for more? The latest in your favourite category")
        expect(shown(page, ".shopseg-category__link")).to_have_text(f"Shop all {kind}")
        assert shown(page, ".shopseg-products__card").count() >= 1

    def default(page: Page):
        expect(shown(page, "nav.chips")).to_have_count(1)
        assert shown(page, ".shopseg-category").count() == 0

    each_audience(store, member, default)


def test_ad_driven_visitors_see_their_campaigns_hero_for_the_whole_visit(storefront):
    store = storefront({"preset": "utm_campaign", "campaigns": [
        {"campaign": "Winter-Boots", "heading": "Boots built for snow", "link": "/collections/all"},
        {"campaign": "rain", "heading": "Ready for rain", "link": ""}]})

    def member(page: Page):       # no campaign in the URL: the general heading
        expect(shown(page, ".shopseg-banner h2")).to_have_text("Welcome! Here is what you came for")

    def default(page: Page):
        expect(shown(page, "nav.chips")).to_have_count(1)
        assert shown(page, ".shopseg-campaigns").count() == 0

    each_audience(store, member, default)

    page = store.visit("/?utm_campaign=winter-boots", client_id=store.visitor("ad-1", holdout=False))
    expect(shown(page, ".shopseg-banner h2")).to_have_text("Boots built for snow")
    page.goto(f"{store.base}/")       # the campaign is kept for the visit
    expect(shown(page, ".shopseg-banner h2")).to_have_text("Boots built for snow")
    screenshot(page, "storefront-experience-campaign")
    page.context.close()
    held = store.visit("/?utm_campaign=winter-boots", client_id=store.visitor("ad-2", holdout=True))
    held.wait_for_function("document.querySelector('.shopseg-block[hidden]') === null")
    assert shown(held, "text=Boots built for snow").count() == 0
    held.context.close()
