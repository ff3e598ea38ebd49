"""The browsing metrics in rules: what a customer's joined browsers did, summed over their days
(windowed by each day's first event), never a stranger's browsing; a segment of high-intent
browsers who never ordered, compiled and checked against the reference."""
from __future__ import annotations

import datetime as dt

import pytest

from segments.engine import compiler
from segments.engine.rules import parse
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.storefront.models import Visitor, VisitorDay
from tests.segments.engine.reference import reference_members

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 6, 10, 15, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def shop():
    shop = Shop.objects.create(domain="browsing.myshopify.com", iana_timezone="America/New_York")
    return shop


def browse(shop, customer, client: str, days_ago: int, **counts) -> None:
    visitor, _ = Visitor.objects.get_or_create(shop=shop, client_id=client, defaults={
        "customer": customer, "first_seen_at": NOW, "last_seen_at": NOW})
    first = NOW - dt.timedelta(days=days_ago)
    VisitorDay.objects.create(shop=shop, visitor=visitor, day=first.date(), first_at=first, last_at=first, **counts)


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
