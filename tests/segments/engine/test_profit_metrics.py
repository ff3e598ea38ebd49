"""Gross profit, margin and discount cost (segments.engine.profit): line revenue after discounts, less the
variants' unit costs and the refunds; a line without a cost is filled by the shop's default margin or
leaves the customer without a value, never counted as free. The compiler's values equal the reference's
and the hand-computed ones."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection

from segments.engine import compiler
from segments.engine.rules import parse
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer, LineItem, Order, VariantCost
from segments.mirror.order_costs import order_costs_refresh
from segments.predictions.models import CustomerPrediction
from segments.shops.models import Shop
from tests.segments.engine.reference import reference_values

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.timezone.utc)
IDS = itertools.count(500_000)
COSTED, UNCOSTED = 7001, 7002       # variant ids: one with a unit cost of 6.00, one without


@pytest.fixture
def shop() -> Shop:
    shop = Shop.objects.create(domain="profit.myshopify.com", iana_timezone="UTC")
    VariantCost.objects.create(shop=shop, inventory_item_id=1, variant_id=COSTED, unit_cost=Decimal("6.00"))
    VariantCost.objects.create(shop=shop, inventory_item_id=2, variant_id=UNCOSTED, unit_cost=None)
    return shop


def order(shop, customer, days_ago: int, lines, *, refunded="0", discounts="0", cancelled=False) -> None:
    at = NOW - dt.timedelta(days=days_ago)
    made = Order.objects.create(shop=shop, shopify_id=next(IDS), customer=customer, created_at=at, updated_at=at,
                                total=Decimal("100"), total_refunded=Decimal(refunded),
                                total_discounts=Decimal(discounts), cancelled_at=at if cancelled else None)
    LineItem.objects.bulk_create([LineItem(shop=shop, order=made, shopify_id=next(IDS), variant_id=variant,
                                           quantity=quantity, price=Decimal(price), total_discount=Decimal(off))
                                  for variant, quantity, price, off in lines])
    order_costs_refresh(shop=shop)


def values(shop, key, window=None) -> dict[int, object]:
    condition = {"metric": key, "op": "gte", "value": "0"} | ({"window": window} if window else {})
    ruleset = parse({"version": 1, "include": condition})
    comp = compiler.Compiler(compiler.context_for(shop, NOW))
    sql, params = comp.statement({"v": comp.value(ruleset.include)}, None)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = dict(cursor.fetchall())
    reference = {pk: row[0] for pk, row in reference_values(ruleset, shop=shop, now=NOW).items()}
    assert set(found) == set(reference)
    for pk in found:        # the compiler and the reference agree, to the cent or the last binary place
        want, got = reference[pk], found[pk]
        assert (want is None and got is None) or float(got) == pytest.approx(float(want), abs=1e-9), (key, pk)
    names = dict(Customer.objects.filter(shop=shop).values_list("pk", "shopify_id"))
    return {names[pk]: value for pk, value in found.items()}


def test_profit_counts_costs_discounts_refunds_and_leaves_the_uncosted_without_a_value(shop):
    a, b, c = (Customer.objects.create(shop=shop, shopify_id=sid) for sid in (1, 2, 3))
    # a: 2 x 20.00 less 4.00 off and 1 x 10.00, costs 2 x 6 + 6; 5.00 refunded; a cancelled order ignored
    order(shop, a, 10, [(COSTED, 2, "20.00", "4.00"), (COSTED, 1, "10.00", "0")], refunded="5.00", discounts="4.00")
    order(shop, a, 5, [(COSTED, 9, "99.00", "0")], cancelled=True)
    # b: one costed line and one without a cost
    order(shop, b, 3, [(COSTED, 1, "30.00", "0"), (UNCOSTED, 1, "50.00", "0")])
    # c: an old costed order outside a 30-day window, a new one inside
    order(shop, c, 100, [(COSTED, 1, "40.00", "0")])
    order(shop, c, 2, [(COSTED, 1, "16.00", "1.00")], discounts="1.00")
    customer_metrics_rebuild(shop=shop, now=NOW)

    profit = values(shop, "gross_profit")
    assert profit[1] == Decimal("23.00")            # 36 + 10 - 18 - 5
    assert profit[2] is None                        # a line without a cost, no default margin
    assert profit[3] == Decimal("43.00")            # (40 - 6) + (16 - 1 - 6)
    assert values(shop, "gross_profit", {"last_days": 30})[3] == Decimal("9.00")
    margin = values(shop, "gross_margin")
    assert margin[1] == pytest.approx(23 / 41) and margin[2] is None
    discount = values(shop, "discount_cost")
    assert (discount[1], discount[2], discount[3]) == (Decimal("4.00"), Decimal("0"), Decimal("1.00"))


def test_a_default_margin_fills_the_uncosted_lines(shop):
    b = Customer.objects.create(shop=shop, shopify_id=2)
    order(shop, b, 3, [(COSTED, 1, "30.00", "0"), (UNCOSTED, 1, "50.00", "0"), (None, 1, "10.00", "0")])
    shop.default_margin_percent = 40
    shop.save()
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert values(shop, "gross_profit")[2] == Decimal("24.00") + Decimal("24.00")   # 30 - 6, then 60 x 40%
    assert values(shop, "gross_margin")[2] == pytest.approx(48 / 90)


def test_a_rule_on_profit_selects_by_it(shop):
    a, b = (Customer.objects.create(shop=shop, shopify_id=sid) for sid in (1, 2))
    order(shop, a, 10, [(COSTED, 3, "20.00", "0")])        # 60 - 18 = 42
    order(shop, b, 10, [(COSTED, 1, "20.00", "0")])        # 14
    customer_metrics_rebuild(shop=shop, now=NOW)
    rules = parse({"version": 1, "include": {"metric": "gross_profit", "op": "gte", "value": "40"}})
    picked = compiler.evaluate(rules, shop=shop, now=NOW)
    assert set(Customer.objects.filter(pk__in=picked).values_list("shopify_id", flat=True)) == {1}


def test_predicted_profit_is_the_predicted_value_at_the_customers_own_margin(shop):
    a, b, c = (Customer.objects.create(shop=shop, shopify_id=sid) for sid in (1, 2, 3))
    order(shop, a, 10, [(COSTED, 2, "20.00", "0")])         # 40 - 12: a margin of 70%
    order(shop, b, 10, [(UNCOSTED, 1, "20.00", "0")])       # no cost and no default margin: no margin
    customer_metrics_rebuild(shop=shop, now=NOW)
    for customer, value in ((a, "200.00"), (b, "90.00")):   # c bought nothing and was never scored
        CustomerPrediction.objects.create(shop=shop, customer=customer, p_alive=0.9, orders_30d=0.2, orders_90d=0.5,
                                          orders_365d=2.0, value_per_order=Decimal(value) / 2,
                                          predicted_value=Decimal(value), scored_at=NOW)
    profit = values(shop, "predicted_profit")
    assert profit[1] == pytest.approx(140.0) and profit[2] is None and profit[3] is None
    shop.default_margin_percent = 25
    shop.save()
    assert values(shop, "predicted_profit")[2] == pytest.approx(22.5)
