"""The browsing metrics in rules: what a customer's joined browsers did, summed over their days
(windowed by each day's first event), never a stranger's browsing; a segment of high-intent
browsers who never ordered, compiled and checked against the reference."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from django.db import connection

from segments.engine import compiler
from segments.engine.context import context_for
from segments.engine.registry import METRICS
from segments.engine.rules import parse
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer, Order
from segments.shops.models import Shop
from segments.storefront.models import Visitor, VisitorDay
from tests.segments.engine.reference import reference_members
from tests.segments.engine.test_compiler import _sample_condition

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 10, 15, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def shop():
    shop = Shop.objects.create(domain="browsing.myshopify.com", iana_timezone="America/New_York")
    return shop


def browse(shop, customer, client: str, days_ago: int, lasted: dt.timedelta = dt.timedelta(), **fields) -> None:
    visitor, _ = Visitor.objects.get_or_create(shop=shop, client_id=client, defaults={
        "customer": customer, "first_seen_at": NOW, "last_seen_at": NOW})
    first = NOW - dt.timedelta(days=days_ago)
    VisitorDay.objects.create(shop=shop, visitor=visitor, day=first.date(), first_at=first, last_at=first + lasted,
                              **fields)


def members(shop, condition: dict) -> set[int]:
    """The Shopify ids in a one-condition segment, the compiler's and the reference's (which must agree)."""
    ruleset = parse({"version": 1, "include": condition})
    found = shopify_ids(shop, compiler.evaluate(ruleset, shop=shop, now=NOW))
    assert found == shopify_ids(shop, reference_members(ruleset, shop=shop, now=NOW)), condition
    return found


@pytest.fixture
def people(shop):
    """Customers 1 (ann), 2 (bob) and 3 (never browsed)."""
    made = [Customer.objects.create(shop=shop, shopify_id=n, created_at=NOW - dt.timedelta(days=400))
            for n in (1, 2, 3)]
    return made


def shopify_ids(shop, pks) -> set[int]:
    return set(Customer.objects.filter(pk__in=pks).values_list("shopify_id", flat=True))


def test_browsing_counts_the_customers_browsers_only_and_windows_by_day(shop):
    ann, bob, _ = (Customer.objects.create(shop=shop, shopify_id=n, created_at=NOW - dt.timedelta(days=400))
                    for n in (1, 2, 3))
    browse(shop, ann, "ann-phone", 2, product_views=2, add_to_carts=1, sessions=1)
    browse(shop, ann, "ann-laptop", 3, product_views=2, sessions=2)            # two browsers: 4 views
    browse(shop, bob, "bob", 20, product_views=9, sessions=3)                  # long ago
    browse(shop, None, "stranger", 1, product_views=50, add_to_carts=5)        # nobody's
    customer_metrics_rebuild(shop=shop, now=NOW)
    high_intent = {"version": 1, "include": {"all": [
        {"metric": "product_views", "op": "gte", "value": 4, "window": {"last_days": 7}},
        {"metric": "add_to_carts", "op": "gte", "value": 1, "window": {"last_days": 7}},
        {"metric": "orders_count", "op": "eq", "value": 0}]}}
    ruleset = parse(high_intent)
    assert shopify_ids(shop, compiler.evaluate(ruleset, shop=shop, now=NOW)) == {1}
    assert shopify_ids(shop, reference_members(ruleset, shop=shop, now=NOW)) == {1}
    all_time = parse({"version": 1, "include": {"metric": "storefront_visits", "op": "gte", "value": 3}})
    assert shopify_ids(shop, compiler.evaluate(all_time, shop=shop, now=NOW)) == {1, 2}
    none = parse({"version": 1, "include": {"metric": "searches", "op": "eq", "value": 0}})
    assert shopify_ids(shop, compiler.evaluate(none, shop=shop, now=NOW)) == {1, 2, 3} == shopify_ids(
        shop, reference_members(none, shop=shop, now=NOW))


def test_visit_times_and_landing_pages(shop, people):
    ann, bob, _ = people
    browse(shop, ann, "ann", 10, landing_path="/collections/sale", last_landing_path="/products/mug", sessions=1)
    browse(shop, ann, "ann", 2, lasted=dt.timedelta(hours=3), landing_path="/", last_landing_path="/search")
    browse(shop, bob, "bob", 40, landing_path="/", last_landing_path="")     # a blank page names nothing
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert members(shop, {"metric": "first_landing_page", "op": "eq", "value": "/collections/sale"}) == {1}
    assert members(shop, {"metric": "last_landing_page", "op": "in", "value": ["/search", "/x"]}) == {1}
    assert members(shop, {"metric": "last_landing_page", "op": "not_in", "value": ["/x"]}) == {1}   # bob: none
    assert members(shop, {"metric": "days_since_first_visit", "op": "eq", "value": 10}) == {1}
    assert members(shop, {"metric": "days_since_last_visit", "op": "lte", "value": 2}) == {1}
    assert members(shop, {"metric": "days_since_last_visit", "op": "gte", "value": 30}) == {2}
    first = (NOW - dt.timedelta(days=40)).astimezone(ZoneInfo("America/New_York")).date().isoformat()
    assert members(shop, {"metric": "first_visit_date", "op": "between", "value": [first, first]}) == {2}
    assert members(shop, {"metric": "first_visit_date", "op": "within_last_days", "value": 30}) == {1}


def test_arrivals_are_the_latest_days_in_the_window_with_ties_broken_by_value(shop, people):
    ann, bob, _ = people
    browse(shop, ann, "ann", 20, utm_campaign="bfcm", utm_medium="cpc", referrer_host="www.google.com")
    browse(shop, ann, "ann", 5, utm_campaign="Spring", utm_medium="email")
    browse(shop, ann, "ann-phone", 5, utm_campaign="spring")      # the same instant on another browser
    browse(shop, ann, "ann", 1)                                    # came straight in: names no campaign
    browse(shop, bob, "bob", 3, utm_source="newsletter", referrer_host="t.co")
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert members(shop, {"metric": "utm_campaign", "op": "eq", "value": "spring"}) == {1}     # "s" > "S"
    assert members(shop, {"metric": "utm_campaign", "op": "eq", "value": "bfcm",
                          "window": {"last_days": 30}}) == set()
    assert members(shop, {"metric": "utm_campaign", "op": "eq", "value": "bfcm", "window": {
        "between": [(NOW - dt.timedelta(days=25)).date().isoformat(),
                    (NOW - dt.timedelta(days=10)).date().isoformat()]}}) == {1}
    assert members(shop, {"metric": "utm_medium", "op": "eq", "value": "email"}) == {1}
    assert members(shop, {"metric": "utm_source", "op": "eq", "value": "newsletter"}) == {2}
    assert members(shop, {"metric": "referrer_site", "op": "in", "value": ["www.google.com", "t.co"]}) == {1, 2}
    assert members(shop, {"metric": "referrer_site", "op": "eq", "value": "t.co",
                          "window": {"last_days": 2}}) == set()


def test_intent_conversion_and_custom_events(shop, people):
    ann, bob, _ = people
    browse(shop, ann, "ann", 3, sessions=4, buying_sessions=1, checkouts_started=3, checkouts_completed=1,
           high_intent_searches=2, custom={"app:size_finder": 2})
    browse(shop, ann, "ann", 40, sessions=1, buying_sessions=1, checkouts_completed=1, custom={"app:size_finder": 5})
    browse(shop, bob, "bob", 2, sessions=2, checkouts_completed=1, custom={"app:video_played": 1})
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert members(shop, {"metric": "browse_to_buy", "op": "eq", "value": "0.4"}) == {1}          # 2 of 5 visits
    assert members(shop, {"metric": "browse_to_buy", "op": "eq", "value": "0.25",
                          "window": {"last_days": 7}}) == {1}
    assert members(shop, {"metric": "browse_to_buy", "op": "lt", "value": 1}) == {1, 2}         # 3: no visits
    assert members(shop, {"metric": "checkouts_without_order", "op": "eq", "value": 2,
                          "window": {"last_days": 7}}) == {1}
    assert members(shop, {"metric": "checkouts_without_order", "op": "eq", "value": 0}) == {2, 3}   # never < 0
    assert members(shop, {"metric": "high_intent_searches", "op": "gte", "value": 2}) == {1}
    assert members(shop, {"metric": "custom_events", "op": "eq", "value": 7,
                          "params": {"event": "app:size_finder"}}) == {1}
    assert members(shop, {"metric": "custom_events", "op": "gte", "value": 1, "window": {"last_days": 7},
                          "params": {"event": "app:video_played"}}) == {2}


@pytest.mark.parametrize("key", sorted(METRICS))
def test_an_anonymous_visitor_is_judged_as_a_customer_without_history(shop, key):
    """Every metric, with and without a window: a visitor's value is that of a customer with no
    orders, checkouts, tags or account whose browsing is the visitor's."""
    blank = Customer.objects.create(shop=shop, shopify_id=1)           # no created_at, no tags, consent unknown
    buyer = Customer.objects.create(shop=shop, shopify_id=2, created_at=NOW - dt.timedelta(days=300))
    Order.objects.create(shop=shop, shopify_id=9, customer=buyer, created_at=NOW - dt.timedelta(days=3), total=80)
    days = [dict(days_ago=2, lasted=dt.timedelta(hours=1), sessions=3, product_views=5, buying_sessions=1,
                 checkouts_started=2, high_intent_searches=1, landing_path="/", last_landing_path="/cart",
                 utm_campaign="spring", referrer_host="t.co", custom={"app:size_finder": 2}),
            dict(days_ago=20, sessions=1, collection_views=4, landing_path="/collections/sale")]
    for fields in days:
        browse(shop, blank, "known", **fields)
        browse(shop, None, "anonymous", **fields)
    customer_metrics_rebuild(shop=shop, now=NOW)
    visitor = Visitor.objects.get(client_id="anonymous")
    for window in [None, {"last_days": 7}] if METRICS[key].windowed else [None]:
        condition = _sample_condition(key)
        if window:
            condition["window"] = window
        parsed = parse({"version": 1, "include": condition}).include
        c = compiler.Compiler(context_for(shop, NOW))
        metric = METRICS[key]
        value = c.timestamp(metric) if metric.derive == "days_since" or metric.value_type == "date" else c.value(parsed)
        with connection.cursor() as cursor:
            sql, params = c.statement({"v": value}, [blank.pk])
            cursor.execute(f"SELECT v FROM ({sql}) e", params)
            as_customer = cursor.fetchone()[0]
            sql, params = c.visitor_statement({"v": value}, [visitor.pk])
            cursor.execute(f"SELECT v FROM ({sql}) e", params)
            assert cursor.fetchall() == [(as_customer,)], (key, window)
