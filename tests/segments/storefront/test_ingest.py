"""POST /storefront/events: a pixel batch is stored once, with its visitor and the visitor-days to
roll up; hostile input (a wrong or unknown key, another shop, no consent, malformed, oversized or
deeply nested batches, a flood from one browser) gets a 4xx and stores nothing."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from segments.shops.models import Shop, ShopStatus
from segments.storefront.models import StorefrontEvent, Visitor, VisitorDayDirty
from tests.segments.storefront.conftest import URL, batch, event, pixel, post, raw_events  # noqa: F401

pytestmark = pytest.mark.django_db


def nothing_stored() -> bool:
    return raw_events() == [] and not Visitor.objects.exists() and not VisitorDayDirty.objects.exists()


def test_a_batch_is_stored_with_its_visitor_and_days_to_roll_up(client, pixel):
    events = [event("page_viewed", seq=0), event("product_viewed", seq=1, data={"productId": "7"}),
              event("search_submitted", seq=2, data={"query": "wool socks"})]
    response = post(client, batch(pixel, events))
    assert response.status_code == 202, response.content
    assert response.json() == {"received": 3, "stored": 3}
    assert response["Access-Control-Allow-Origin"] == "*"
    visitor = Visitor.objects.get()
    assert (visitor.shop_id, visitor.client_id, visitor.customer_id) == (pixel.shop_id, "client-1", None)
    assert [(name, v) for _, _, name, v in raw_events()] == [
        ("page_viewed", visitor.pk), ("product_viewed", visitor.pk), ("search_submitted", visitor.pk)]
    assert VisitorDayDirty.objects.filter(visitor=visitor).count() == 1


def test_a_batch_sent_twice_is_stored_once(client, pixel):
    body = batch(pixel, [event(event_id="sh-1"), event(event_id="sh-2", seq=1)])
    assert post(client, body).json() == {"received": 2, "stored": 2}
    assert post(client, body).json() == {"received": 2, "stored": 0}
    assert len(raw_events()) == 2


def test_the_preflight_is_answered_for_any_origin(client):
    response = client.options(URL, HTTP_ORIGIN="https://pixel-shop.myshopify.com",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert response.status_code == 204 and response.content == b""
    assert response["Access-Control-Allow-Origin"] == "*" and "POST" in response["Access-Control-Allow-Methods"]


def test_a_logged_in_visitor_names_the_customer(client, pixel):
    post(client, batch(pixel, [event(customer="gid://shopify/Customer/7000000101")]))
    visitor = Visitor.objects.get()
    assert (visitor.customer_shopify_id, visitor.identified_by) == (7000000101, "login")


@pytest.mark.parametrize("change, status, code", [
    ({"key": "not-a-key"}, 403, "unknown_key"),
    ({"key": "a\u0000b"}, 400, "invalid_batch"),
    ({"shop": "another-shop.myshopify.com"}, 403, "wrong_shop"),
    ({"shop": "https://evil.example"}, 400, "invalid_batch"),
    ({"analytics": False}, 400, "invalid_batch"),
    ({"events": []}, 400, "invalid_batch"),
    ({"events": "page_viewed"}, 400, "invalid_batch"),
    ({"extra": 1}, 400, "invalid_batch"),
], ids=["unknown-key", "nul-key", "other-shop", "bad-shop", "no-consent", "no-events", "events-not-a-list", "unknown-field"])
def test_a_refused_batch_stores_nothing(client, pixel, change, status, code):
    response = post(client, {**batch(pixel, [event()]), **change})
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert nothing_stored()


@pytest.mark.parametrize("change, path", [
    ({"name": "purchase_made"}, "events[0].name"),
    ({"name": "Shopify:PageViewed"}, "events[0].name"),
    ({"clientId": "a b"}, "events[0].clientId"),
    ({"timestamp": "yesterday"}, "events[0].timestamp"),
    ({"timestamp": "2026-01-01T00:00:00"}, "events[0].timestamp"),            # no offset
    ({"seq": "1"}, "events[0].seq"),
    ({"url": "javascript:alert(1)"}, "events[0].url"),
    ({"url": "https://x/" + "a" * 2100}, "events[0].url"),
    ({"customerId": "someone@example.com"}, "events[0].customerId"),
    ({"customerId": "9" * 19}, "events[0].customerId"),                        # past a bigint
    ({"data": {"nested": {"deep": 1}}}, "events[0].data"),
    ({"data": {"long": "x" * 300}}, "events[0].data"),
    ({"data": {f"k{i}": i for i in range(17)}}, "events[0].data"),
    ({"tracking": "extra"}, "events[0].tracking"),
    ({"url": "https://pixel-shop.myshopify.com/\u0000"}, "events[0]"),
    ({"url": "https://pixel-shop.myshopify.com/\ud800"}, "events[0]"),        # a lone surrogate: not storable
    ({"data": {"query": "socks \udfff"}}, "events[0]"),
])
def test_an_event_the_pixel_would_not_send_is_refused_at_its_path(client, pixel, change, path):
    response = post(client, batch(pixel, [{**event(), **change}]))
    assert response.status_code == 400, response.content
    assert path in [p["path"] for p in response.json()["error"]["problems"]]
    assert nothing_stored()


def test_events_from_days_ago_or_the_future_are_refused(client, pixel):
    for ago in (dt.timedelta(days=4), dt.timedelta(minutes=-30)):
        response = post(client, batch(pixel, [event(ago=ago)]))
        assert response.status_code == 400
    assert nothing_stored()


def test_a_batch_from_two_browsers_is_refused(client, pixel):
    response = post(client, batch(pixel, [event(client="a"), event(client="b")]))
    assert response.status_code == 400 and nothing_stored()


@pytest.mark.parametrize("raw, status", [
    (b"{\"key\": ", 400), (b"[1, 2]", 400), (b"\xff\xfe", 400), (b"{\"n\": NaN}", 400),
    (b"[" * 100_000 + b"]" * 100_000, 413), (b"[" * 30_000 + b"]" * 30_000, 400),
], ids=["truncated", "array", "not-utf8", "nan", "oversized", "deeply-nested"])
def test_malformed_oversized_and_deeply_nested_bodies_are_refused(client, pixel, raw, status):
    response = post(client, raw)
    assert response.status_code == status, response.content
    assert set(response.json()) == {"error"} and nothing_stored()


def test_more_than_a_hundred_events_are_refused(client, pixel):
    response = post(client, batch(pixel, [event(seq=i) for i in range(101)]))
    assert response.status_code == 400 and nothing_stored()


def test_a_flood_from_one_browser_is_refused_and_stores_nothing_more(client, pixel, settings):
    settings.STOREFRONT_CLIENT_EVENTS = 5
    assert post(client, batch(pixel, [event(seq=i) for i in range(5)])).status_code == 202
    flooded = post(client, batch(pixel, [event(seq=9)]))
    assert flooded.status_code == 429 and flooded["Retry-After"] == "10"
    assert flooded.json()["error"]["code"] == "rate_limited"
    assert len(raw_events()) == 5
    other = post(client, batch(pixel, [event(client="client-2")]))    # another browser is not held back
    assert other.status_code == 202


def test_a_shop_that_uninstalled_takes_no_events(client, pixel):
    Shop.objects.filter(pk=pixel.shop_id).update(status=ShopStatus.UNINSTALLED)
    response = post(client, batch(pixel, [event()]))
    assert response.status_code == 403 and nothing_stored()


def test_only_post_and_options(client):
    response = client.get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"


def test_text_beyond_the_basic_plane_is_stored_as_sent(client, pixel):
    """An emoji arrives as a surrogate pair escape (JSON.stringify's output for it is either form)."""
    body = json.dumps(batch(pixel, [event(data={"query": "gift \U0001F381"})]))     # ensure_ascii: \ud83c\udf81
    assert "\\ud83c\\udf81" in body
    assert post(client, body).status_code == 202
    assert StorefrontEvent.objects.get().data == {"query": "gift \U0001F381"}


def test_the_stored_data_is_what_was_sent(client, pixel):
    post(client, batch(pixel, [event("product_added_to_cart", data={"productId": "7", "quantity": 2,
                                                                     "amount": 19.5})]))
    stored = StorefrontEvent.objects.get()
    assert stored.data == {"productId": "7", "quantity": 2, "amount": 19.5}
    assert json.dumps(stored.data)
