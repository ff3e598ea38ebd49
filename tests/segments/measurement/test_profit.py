"""Segments measured in profit: gross profit from line revenue after discounts less unit costs and
refunds, per member, per visitor and orders per visit; the store's profit per customer; the review's
flag for segments below it; the lift's profit per member; nothing measured while lines lack costs and
no default margin is set."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from segments.measurement.lift import segment_lift
from segments.measurement.profit import segments_profit, store_profit
from segments.measurement.review import monthly_review
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer, LineItem, Order, VariantCost
from segments.mirror.order_costs import order_costs_refresh
from segments.shops.calendar import shop_today
from segments.storefront.models import Visitor, VisitorDay
from tests.segments.measurement.conftest import make_segment

pytestmark = pytest.mark.django_db
IDS = itertools.count(900_000)
EVERYONE = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 0}}
BIG = {"version": 1, "include": {"metric": "customer_age_days", "op": "gte", "value": 0}}


def shop_zone(shop):
    return ZoneInfo(shop.iana_timezone)


def buy(shop, customer, at, lines, refunded="0"):
    order = Order.objects.create(shop=shop, shopify_id=next(IDS), customer=customer, created_at=at, updated_at=at,
                                 total=Decimal("1"), total_refunded=Decimal(refunded))
    LineItem.objects.bulk_create([LineItem(shop=shop, order=order, shopify_id=next(IDS), variant_id=variant,
                                           quantity=quantity, price=Decimal(price)) for variant, quantity, price in lines])
    order_costs_refresh(shop=shop)


@pytest.fixture
def world(shop):
    today = shop_today(shop)
    start = today - dt.timedelta(days=9)
    at = timezone.now() - dt.timedelta(days=3)
    VariantCost.objects.create(shop=shop, inventory_item_id=1, variant_id=11, unit_cost=Decimal("4.00"))
    VariantCost.objects.create(shop=shop, inventory_item_id=2, variant_id=12, unit_cost=None)
    customers = [Customer.objects.create(shop=shop, shopify_id=sid, created_at=at - dt.timedelta(days=60))
                 for sid in range(1, 5)]
    segment = make_segment(shop, "Everyone", EVERYONE)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop, now=timezone.now() - dt.timedelta(days=20))
    buy(shop, customers[0], at, [(11, 2, "10.00")])                   # 20 - 8 = 12
    buy(shop, customers[1], at, [(11, 1, "10.00")], refunded="10.00")  # 10 - 4 - 10 = -4
    visitor = Visitor.objects.create(shop=shop, client_id="c1", customer=customers[0], first_seen_at=at, last_seen_at=at)
    VisitorDay.objects.create(shop=shop, visitor=visitor, day=at.date(), first_at=at, last_at=at, sessions=4)
    return segment, customers, start, today


def test_profit_per_member_visitor_and_visit(world, shop):
    segment, _, start, today = world
    (row,) = segments_profit(shop=shop, segments=[segment], start=start, end=today).values()
    assert (row["members"], row["gross_profit"], row["orders"]) == (4, 8.0, 2)
    assert row["profit_per_member"] == 2.0 and (row["visits"], row["visitors"]) == (4, 1)
    assert row["profit_per_visitor"] == 8.0 and row["orders_per_visit"] == 0.5
    assert store_profit(shop=shop, start=start, end=today)["profit_per_customer"] == 2.0


def test_uncosted_lines_leave_profit_unmeasured_until_a_default_margin_is_set(world, shop):
    segment, customers, start, today = world
    buy(shop, customers[2], timezone.now() - dt.timedelta(days=2), [(12, 1, "50.00")])
    (row,) = segments_profit(shop=shop, segments=[segment], start=start, end=today).values()
    assert row["gross_profit"] is None and row["uncosted_lines"] == 1
    assert store_profit(shop=shop, start=start, end=today)["profit_per_customer"] is None
    shop.default_margin_percent = 30
    shop.save()
    (row,) = segments_profit(shop=shop, segments=[segment], start=start, end=today).values()
    assert row["gross_profit"] == pytest.approx(8.0 + 15.0)


def test_the_review_flags_segments_below_the_stores_profit_per_customer(world, shop):
    segment, customers, _, _ = world
    laggard = make_segment(shop, "Refunders", {"version": 1, "include": {"metric": "refund_rate", "op": "gt",
                                                                        "value": "0.5"}})
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop)
    bought = timezone.now() - dt.timedelta(days=3)       # the orders' month, whatever today's date
    review = monthly_review(shop=shop, month=bought.astimezone(shop_zone(shop)).strftime("%Y-%m"))
    lags = {x["name"] for x in review.profit_lags}
    assert "Refunders" in lags and "Everyone" not in lags
    assert laggard.pk in {r["segment"] for r in review.rows}


def test_the_lift_compares_profit_per_member(world, shop):
    segment, _, start, today = world
    lift = segment_lift(segment=segment, start=start, end=today)
    assert lift.profit_per_member is not None and lift.to_dict()["profit_per_member"]["treatment"] is not None
