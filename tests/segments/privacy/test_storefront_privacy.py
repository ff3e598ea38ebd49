"""The storefront in privacy compliance: a customer's browsers, raw events and rollups are in their
data-request export and erased by customers/redact (another customer's and another shop's stay);
shop/redact takes the shop's whole storefront."""
from __future__ import annotations

import pytest

from segments.mirror.models import Customer
from segments.privacy.compliance import compliance_customer_redact, compliance_data_request, compliance_shop_redact
from segments.shops.models import Shop, ShopStatus
from segments.storefront.models import Pixel, Visitor, VisitorDay
from segments.storefront.rollup import visitor_days_rollup
from tests.segments.storefront.conftest import batch, event, pixel, post, raw_events  # noqa: F401

pytestmark = pytest.mark.django_db
JANE, JOHN = 7_000_000_101, 7_000_000_102


@pytest.fixture
def browsing(client, pixel):
    """Jane on two browsers (one before she logged in), John on one, an anonymous visitor."""
    for shopify_id in (JANE, JOHN):
        Customer.objects.create(shop=pixel.shop, shopify_id=shopify_id, email=f"{shopify_id}@example.com")
    sends = [("jane-phone", JANE, "product_viewed"), ("jane-laptop", None, "page_viewed"),
             ("jane-laptop", JANE, "checkout_completed"), ("john", JOHN, "page_viewed"), ("anon", None, "cart_viewed")]
    for seq, (client_id, customer, name) in enumerate(sends):
        body = batch(pixel, [event(name, client=client_id, seq=seq, customer=str(customer) if customer else None,
                                   url="https://pixel-shop.myshopify.com/products/socks?q=jane")])
        assert post(client, body).status_code == 202
    visitor_days_rollup()
    return pixel


def redact_payload(shop: Shop, shopify_id: int) -> dict:
    return {"shop_id": 1, "shop_domain": shop.domain, "customer": {"id": shopify_id, "email": None, "phone": None},
            "orders_to_redact": []}


def test_browsers_join_the_customer_by_login_or_checkout(browsing):
    joined = dict(Visitor.objects.filter(customer__shopify_id=JANE).values_list("client_id", "identified_by"))
    assert joined == {"jane-phone": "login", "jane-laptop": "checkout"}


def test_a_data_request_exports_the_customers_browsers_events_and_days(browsing):
    request = compliance_data_request(shop_domain=browsing.shop.domain, payload={
        "shop_id": 1, "shop_domain": browsing.shop.domain, "customer": {"id": JANE, "email": None, "phone": None},
        "orders_requested": [], "data_request": {"id": 77}})
    section = request.export["storefront_visitors"]
    assert sorted(v["client_id"] for v in section) == ["jane-laptop", "jane-phone"]
    laptop = next(v for v in section if v["client_id"] == "jane-laptop")
    assert sorted(e["name"] for e in laptop["events"]) == ["checkout_completed", "page_viewed"]
    assert laptop["days"][0]["events"] == 2


def test_customers_redact_erases_the_customers_storefront_and_nothing_else(browsing):
    request = compliance_customer_redact(shop_domain=browsing.shop.domain, payload=redact_payload(browsing.shop, JANE))
    assert request.summary["storefront_events"] == 3 and request.summary["visitors"] == 2
    assert sorted(Visitor.objects.values_list("client_id", flat=True)) == ["anon", "john"]
    assert len(raw_events()) == 2
    assert VisitorDay.objects.count() == 2


def test_shop_redact_erases_the_whole_storefront(browsing):
    Shop.objects.filter(pk=browsing.shop_id).update(status=ShopStatus.UNINSTALLED)
    compliance_shop_redact(shop_domain=browsing.shop.domain, payload={"shop_id": 1, "shop_domain": browsing.shop.domain})
    assert raw_events() == [] and not Visitor.objects.exists() and not VisitorDay.objects.exists()
    assert not Pixel.objects.exists()
