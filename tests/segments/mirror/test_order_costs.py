"""Each order's revenue and cost of goods (segments.mirror.order_costs): set when its line items are
written, recomputed with the buyers marked dirty when a variant's cost changes, and always equal to a
recomputation from the lines and the costs."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from segments.mirror.costs import costs_delete, costs_upsert, variants_link
from segments.mirror.models import Customer, Order
from segments.mirror.order_costs import order_costs_refresh
from segments.mirror.orders import orders_upsert
from segments.mirror.records import CostRecord, CustomerRecord, LineItemRecord, OrderRecord, VariantLink
from segments.mirror.writer import customers_upsert
from segments.shops.models import Shop

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)
TEA, CUP, GIFT = 101, 102, 103         # variants: TEA costs 2.50, CUP has no cost yet, GIFT is unknown

# What each order's columns must be, recomputed from its lines and the costs as they are now.
RECOMPUTED = """
SELECT o.shopify_id, COALESCE(sum(li.price * li.quantity - li.total_discount), 0),
       COALESCE(sum(vc.unit_cost * li.quantity), 0),
       COALESCE(sum(li.price * li.quantity - li.total_discount) FILTER (WHERE vc.unit_cost IS NULL), 0),
       count(li.id) FILTER (WHERE vc.unit_cost IS NULL)
FROM segments_order o LEFT JOIN segments_lineitem li ON li.order_id = o.id
LEFT JOIN segments_variantcost vc ON vc.shop_id = li.shop_id AND vc.variant_id = li.variant_id
WHERE o.shop_id = %s GROUP BY o.shopify_id
"""


def stored(shop: Shop) -> dict[int, tuple]:
    return {o.shopify_id: (o.line_revenue, o.line_cost, o.uncosted_revenue, o.uncosted_lines)
            for o in Order.objects.filter(shop=shop)}


def recomputed(shop: Shop) -> dict[int, tuple]:
    with connection.cursor() as cursor:
        cursor.execute(RECOMPUTED, [shop.pk])
        return {sid: tuple(values) for sid, *values in cursor.fetchall()}


def line(sid: int, variant: int | None, quantity: int, price: str, off: str = "0") -> LineItemRecord:
    return LineItemRecord(shopify_id=sid, quantity=quantity, price=Decimal(price), total_discount=Decimal(off),
                          variant_id=variant)


def buy(shop: Shop, sid: int, customer: int, lines: list[LineItemRecord], minutes: int = 0) -> None:
    orders_upsert(shop=shop, records=[OrderRecord(shopify_id=sid, created_at=T0, customer_shopify_id=customer,
                                                  updated_at=T0 + dt.timedelta(minutes=minutes), line_items=lines)])


def dirty(shop: Shop) -> set[int]:
    return set(Customer.objects.filter(shop=shop, dirty_at__isnull=False).values_list("shopify_id", flat=True))


def clean(shop: Shop) -> None:
    Customer.objects.filter(shop=shop).update(dirty_at=None)


@pytest.fixture
def shop() -> Shop:
    shop = Shop.objects.create(domain="order-costs.myshopify.com")
    customers_upsert(shop=shop, records=[CustomerRecord(shopify_id=k, updated_at=T0) for k in (1, 2, 3)])
    costs_upsert(shop=shop, records=[CostRecord(1, T0, Decimal("2.50"), TEA), CostRecord(2, T0, None, CUP)],
                 current=True)
    buy(shop, 10, 1, [line(1, TEA, 2, "10.00", "1.00"), line(2, CUP, 1, "8.00")])
    buy(shop, 11, 2, [line(3, TEA, 1, "10.00")])
    buy(shop, 12, 3, [line(4, GIFT, 3, "4.00")])
    clean(shop)
    return shop


def test_an_orders_lines_set_its_revenue_and_costs(shop):
    assert stored(shop) == {
        10: (Decimal("27.00"), Decimal("5.00"), Decimal("8.00"), 1),     # 2×10 − 1 + 8; 2×2.50; the cup has no cost
        11: (Decimal("10.00"), Decimal("2.50"), Decimal("0.00"), 0),
        12: (Decimal("12.00"), Decimal("0.00"), Decimal("12.00"), 1)}    # a variant nobody costed
    assert stored(shop) == recomputed(shop)


def test_an_order_whose_lines_are_replaced_follows_them_down_to_none(shop):
    buy(shop, 10, 1, [line(5, TEA, 1, "10.00")], minutes=1)
    assert stored(shop)[10] == (Decimal("10.00"), Decimal("2.50"), Decimal("0.00"), 0)
    buy(shop, 10, 1, [], minutes=2)
    assert stored(shop)[10] == (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), 0)
    assert stored(shop) == recomputed(shop)


def test_a_cost_edit_recomputes_the_orders_holding_the_variant_and_marks_only_their_buyers(shop):
    costs_upsert(shop=shop, records=[CostRecord(2, T0 + dt.timedelta(minutes=1), Decimal("3.00"))])
    assert stored(shop)[10] == (Decimal("27.00"), Decimal("8.00"), Decimal("0.00"), 0)
    assert stored(shop) == recomputed(shop)
    assert dirty(shop) == {1}           # customer 2 bought no cup, customer 3 nothing costed

    clean(shop)                          # the same delivery again, or an older one: nothing moves
    costs_upsert(shop=shop, records=[CostRecord(2, T0 + dt.timedelta(minutes=1), Decimal("3.00"))])
    costs_upsert(shop=shop, records=[CostRecord(2, T0, Decimal("9.00"))])
    assert dirty(shop) == set()
    assert stored(shop)[10][1] == Decimal("8.00")


def test_a_newer_cost_equal_to_the_stored_one_marks_nobody(shop):
    costs_upsert(shop=shop, records=[CostRecord(1, T0 + dt.timedelta(minutes=5), Decimal("2.50"))])
    assert dirty(shop) == set()


def test_linking_an_item_to_its_variant_and_deleting_it_move_the_orders_both_ways(shop):
    costs_upsert(shop=shop, records=[CostRecord(3, T0, Decimal("1.00"))])      # the item's cost, no variant yet
    assert dirty(shop) == set()
    variants_link(shop=shop, links=[VariantLink(variant_id=GIFT, inventory_item_id=3)])
    assert stored(shop)[12] == (Decimal("12.00"), Decimal("3.00"), Decimal("0.00"), 0)
    assert dirty(shop) == {3}

    clean(shop)
    costs_delete(shop=shop, inventory_item_ids=[1])       # TEA's item is gone: its lines have no cost
    assert stored(shop)[10][1:] == (Decimal("0.00"), Decimal("27.00"), 2)
    assert stored(shop)[11][1:] == (Decimal("0.00"), Decimal("10.00"), 1)
    assert dirty(shop) == {1, 2}
    assert stored(shop) == recomputed(shop)


def test_the_whole_shop_refresh_repairs_what_was_written_around_it_and_then_finds_nothing(shop):
    with connection.cursor() as cursor:      # rows written behind the mirror's back (a restore, a bulk load)
        cursor.execute("UPDATE segments_order SET line_revenue = 0, uncosted_lines = 0 WHERE shop_id = %s", [shop.pk])
    assert order_costs_refresh(shop=shop) == 3
    assert stored(shop) == recomputed(shop)
    assert order_costs_refresh(shop=shop) == 0


def test_another_shops_cost_edit_touches_nothing_here(shop):
    other = Shop.objects.create(domain="other.myshopify.com")
    costs_upsert(shop=other, records=[CostRecord(1, T0 + dt.timedelta(minutes=1), Decimal("9.00"), TEA)])
    assert dirty(shop) == set()
    assert stored(shop)[11] == (Decimal("10.00"), Decimal("2.50"), Decimal("0.00"), 0)
