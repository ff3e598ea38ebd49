"""Visitor-days rolled up from raw events: counts, sessions split by 30 minutes without an event, the
day's landing page and campaign, custom events; the same rollup whatever order events arrive in,
and none once the day's events are gone. Days are the shop's (New York) calendar days."""
from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.utils import timezone

from segments.membership.definitions import segment_create
from segments.membership.models import Membership, MembershipEvent
from segments.metrics.refresh import customer_metrics_rebuild, dirty_shops_refresh
from segments.mirror.models import Customer, Order
from segments.storefront.models import Visitor, VisitorDay, VisitorDayDirty
from segments.storefront.rollup import visitor_days_rollup
from tests.segments.storefront.conftest import batch, event, pixel, post  # noqa: F401

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo("America/New_York")


def noon_two_days_ago() -> dt.datetime:
    day = timezone.now().astimezone(ZONE).date() - dt.timedelta(days=2)
    return dt.datetime.combine(day, dt.time(12), ZONE)


def at(moment: dt.datetime, name: str, **fields) -> dict:
    return event(name, ago=timezone.now() - moment, **fields)


def day_row() -> VisitorDay:
    return VisitorDay.objects.get()


def test_a_day_is_rolled_up_with_sessions_counts_landing_and_campaign(client, pixel):
    noon = noon_two_days_ago()
    landing = "https://pixel-shop.myshopify.com/collections/socks?utm_source=ig&utm_medium=paid&utm_campaign=winter"
    post(client, batch(pixel, [
        at(noon, "page_viewed", url=landing, seq=0, referrer="https://instagram.com/p/1"),
        at(noon + dt.timedelta(minutes=5), "collection_viewed", seq=1),
        at(noon + dt.timedelta(minutes=10), "product_viewed", seq=2, data={"productId": "7"}),
        at(noon + dt.timedelta(minutes=50), "search_submitted", seq=3, data={"query": "merino"}),   # a new session
        at(noon + dt.timedelta(minutes=55), "product_added_to_cart", seq=4),
        at(noon + dt.timedelta(minutes=56), "size_finder:opened", seq=5),
        at(noon + dt.timedelta(minutes=57), "size_finder:opened", seq=6),
    ]))
    assert visitor_days_rollup() == 1
    row = day_row()
    assert row.day == noon.date() and row.visitor == Visitor.objects.get()
    assert (row.events, row.sessions, row.page_views, row.collection_views, row.product_views, row.searches,
            row.add_to_carts, row.checkouts_started) == (7, 2, 1, 1, 1, 1, 1, 0)
    assert row.custom == {"size_finder:opened": 2}
    assert (row.landing_path, row.referrer_host, row.utm_source, row.utm_medium, row.utm_campaign) == (
        "/collections/socks", "instagram.com", "ig", "paid", "winter")
    assert not VisitorDayDirty.objects.exists()


def test_intent_purchases_and_the_days_last_arrival_are_rolled_up(client, pixel):
    noon, shop = noon_two_days_ago(), "https://pixel-shop.myshopify.com"
    minutes = iter(range(0, 600, 2))

    def then(name: str, **fields) -> dict:
        return at(noon + dt.timedelta(minutes=next(minutes)), name, **fields)

    post(client, batch(pixel, [
        # Visit 1, from a campaign link: a vague search that leads to a view and an add to cart (high
        # intent), a vague one that does not, a specific one (three words) on its own.
        then("page_viewed", url=f"{shop}/?utm_source=news&utm_campaign=spring", referrer="https://mail.example.com/"),
        then("search_submitted", data={"query": "socks"}), then("product_viewed"), then("product_added_to_cart"),
        then("search_submitted", data={"query": "hats"}), then("product_added_to_cart"),
        then("search_submitted", data={"query": "red wool scarf"}),
        # Visit 2, an hour later, straight in and bought: internal referrer, no campaign.
        at(noon + dt.timedelta(hours=2), "page_viewed", url=f"{shop}/products/mug", referrer=f"{shop}/cart"),
        at(noon + dt.timedelta(hours=2, minutes=1), "checkout_started"),
        at(noon + dt.timedelta(hours=2, minutes=2), "checkout_completed", data={"orderId": "1"}),
        # Visit 3: a search, a view, no add to cart.
        at(noon + dt.timedelta(hours=4), "search_submitted", url=f"{shop}/search?q=tea", data={"query": "tea"}),
        at(noon + dt.timedelta(hours=4, minutes=1), "product_viewed"),
    ]))
    visitor_days_rollup()
    row = day_row()
    assert (row.sessions, row.searches, row.high_intent_searches, row.buying_sessions) == (3, 4, 2, 1)
    assert (row.landing_path, row.last_landing_path) == ("/", "/search")
    assert (row.referrer_host, row.utm_source, row.utm_campaign, row.utm_medium) == (
        "mail.example.com", "news", "spring", "")


def test_days_follow_the_shops_calendar(client, pixel):
    midnight = dt.datetime.combine(noon_two_days_ago().date(), dt.time(), ZONE)
    post(client, batch(pixel, [at(midnight - dt.timedelta(minutes=10), "page_viewed", seq=0),
                               at(midnight + dt.timedelta(minutes=10), "page_viewed", seq=1)]))
    visitor_days_rollup()
    assert sorted(VisitorDay.objects.values_list("day", "page_views", "sessions")) == [
        (midnight.date() - dt.timedelta(days=1), 1, 1), (midnight.date(), 1, 1)]


def test_a_late_event_gives_the_rollup_it_would_have_had_in_order(client, pixel):
    noon = noon_two_days_ago()
    post(client, batch(pixel, [at(noon, "page_viewed", seq=0), at(noon + dt.timedelta(minutes=40), "cart_viewed",
                                                                  seq=2)]))
    visitor_days_rollup()
    assert day_row().sessions == 2
    post(client, batch(pixel, [at(noon + dt.timedelta(minutes=20), "product_viewed", seq=1)]))   # fills the gap
    assert visitor_days_rollup() == 1
    row = day_row()
    assert (row.events, row.sessions, row.product_views, row.cart_views) == (3, 1, 1, 1)


def test_a_day_whose_events_are_gone_loses_its_rollup(client, pixel):
    post(client, batch(pixel, [at(noon_two_days_ago(), "page_viewed")]))
    visitor_days_rollup()
    row = day_row()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_storefrontevent")
    VisitorDayDirty.objects.create(shop_id=row.shop_id, visitor_id=row.visitor_id, day=row.day)
    visitor_days_rollup()
    assert not VisitorDay.objects.exists()


def test_nothing_behind_is_nothing_to_do(db):
    assert visitor_days_rollup() == 0


def test_a_guests_completed_checkout_joins_the_browser_to_its_orders_customer(client, pixel):
    buyer = Customer.objects.create(shop=pixel.shop, shopify_id=7_000_000_555, email="buyer@example.com")
    Order.objects.create(shop=pixel.shop, shopify_id=5_000_000_777, customer=buyer, created_at=timezone.now())
    post(client, batch(pixel, [at(noon_two_days_ago(), "page_viewed", seq=0, client="guest"),
                               at(noon_two_days_ago(), "checkout_completed", seq=1, client="guest",
                                  data={"orderId": "gid://shopify/Order/5000000777", "amount": 20.0})]))
    post(client, batch(pixel, [at(noon_two_days_ago(), "page_viewed", seq=0, client="other")]))
    visitor_days_rollup()
    joined = Visitor.objects.get(client_id="guest")
    assert (joined.customer_id, joined.customer_shopify_id, joined.identified_by) == (buyer.pk, 7_000_000_555,
                                                                                     "checkout")
    assert Visitor.objects.get(client_id="other").customer_id is None


def test_a_signed_in_shoppers_browsing_moves_them_into_a_browsing_segment(client, pixel,
                                                                         django_capture_on_commit_callbacks):
    customer = Customer.objects.create(shop=pixel.shop, shopify_id=7_000_000_999, email="ann@example.com")
    customer_metrics_rebuild(shop=pixel.shop)
    rules = {"version": 1, "include": {"metric": "product_views", "op": "gte", "value": 2,
                                       "window": {"last_days": 7}}}
    with django_capture_on_commit_callbacks(execute=True):
        segment = segment_create(shop=pixel.shop, name="Browsers", rules=rules, author="test")
    assert not Membership.objects.filter(segment=segment).exists()

    noon = noon_two_days_ago()
    post(client, batch(pixel, [at(noon, "product_viewed", seq=0, customer="7000000999"),
                               at(noon + dt.timedelta(minutes=1), "product_viewed", seq=1, customer="7000000999")]))
    visitor_days_rollup()
    assert Customer.objects.get(pk=customer.pk).dirty_at is not None       # its browsing changed
    with django_capture_on_commit_callbacks(execute=True):
        dirty_shops_refresh()
    member = Membership.objects.get(segment=segment)
    assert member.customer_id == customer.pk
    assert MembershipEvent.objects.get(segment=segment, entered=True).cause == "storefront events"


@pytest.mark.django_db(transaction=True)
def test_the_rollup_skips_a_visitor_an_ingest_is_writing(client, pixel):
    # An ingest holds its visitor's row until it commits, and would then insert the visitor's dirty
    # days: a rollup that deleted those days and waited for the visitor would deadlock with it.
    post(client, batch(pixel, [at(noon_two_days_ago(), "page_viewed")]))
    holding, release = threading.Event(), threading.Event()

    def ingest_in_flight():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT id FROM segments_visitor FOR NO KEY UPDATE")
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=ingest_in_flight)
    thread.start()
    assert holding.wait(10)
    try:
        assert visitor_days_rollup() == 0 and VisitorDayDirty.objects.count() == 1    # skipped, not waited for
    finally:
        release.set()
        thread.join(10)
    assert visitor_days_rollup() == 1 and day_row().page_views == 1
