"""Mirror writes of what customers buy and browse: products, orders with their line items and
refunds, checkouts and carts. Same rules as segments.mirror.writer (which holds the customers and
the shared helpers): idempotent, set-at-a-time, newer data only."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from segments.mirror.cause import current_dirty_cause
from segments.mirror.models import Cart, Checkout, LineItem, Order, Product, Refund
from segments.mirror.order_costs import COST_COLUMNS, orders_cost_columns
from segments.mirror.records import CartRecord, CheckoutRecord, OrderRecord, ProductRecord, RefundRecord
from segments.mirror.sql import array_types, upsert
from segments.mirror.writer import (
    CHECKOUT_NOT_KNOWN, NEWER, ORDER_NOT_KNOWN, ORDER_TIE, OrderNotYetKnown, customer_resolver, dedupe, keep_known,
    mark_dirty, newer_or_changed, normal_email,
)
from segments.shops.models import Shop


# -- products ----------------------------------------------------------------------------------
def products_upsert(*, shop: Shop, records: Sequence[ProductRecord]) -> int:
    rows = [{"shop_id": shop.pk, "shopify_id": r.shopify_id, "title": r.title, "product_type": r.product_type,
             "vendor": r.vendor, "tags": list(r.tags), "updated_at": r.updated_at}
            for r in dedupe(records, "shopify_id")]
    return len(upsert(Product, rows, conflict=("shop_id", "shopify_id"),
                      update=("title", "product_type", "vendor", "tags", "updated_at"),
                      guard=f"t.deleted_at IS NULL AND {NEWER}"))


def product_delete(*, shop: Shop, shopify_id: int) -> bool:
    return bool(Product.objects.filter(shop=shop, shopify_id=shopify_id).update(deleted_at=timezone.now()))


# -- orders ------------------------------------------------------------------------------------
ORDER_FIELDS = ("email", "name", "created_at", "processed_at", "updated_at", "cancelled_at", "financial_status",
                "currency", "subtotal", "total", "total_discounts", "total_shipping", "total_refunded",
                "discount_codes", "source_name", "device", "shipping_method", "shipping_speed", "cart_token",
                "checkout_token")


def orders_upsert(*, shop: Shop, records: Sequence[OrderRecord]) -> list[int]:
    """Upsert orders with their line items and refunds; returns the pks of orders that applied."""
    records = dedupe(records, "shopify_id")
    if not records:
        return []
    with transaction.atomic(savepoint=False):
        customer_of = customer_resolver(shop=shop, records=records)
        costed = orders_cost_columns(shop=shop, records=records)
        rows = []
        for r in records:
            row = {f: getattr(r, f) for f in ORDER_FIELDS}
            row["email"] = normal_email(r.email)
            row["discount_codes"] = list(r.discount_codes)
            customer = customer_of(r)
            rows.append({"shop_id": shop.pk, "shopify_id": r.shopify_id, "customer_id": customer, **row,
                         **costed.get(r.shopify_id, {})})
        update = [f for f in ORDER_FIELDS if f != "device"] + ["customer_id"]
        applied = {}
        # An order delivered with its line items takes their revenue and costs; one without keeps its own.
        for part, also in (([row for row in rows if row["shopify_id"] in costed], COST_COLUMNS),
                           ([row for row in rows if row["shopify_id"] not in costed], ())):
            # xmax = 0 tells a fresh row from an updated one: fresh orders have no line items to drop
            applied |= {sid: (pk, cust, bool(new)) for pk, sid, cust, new in upsert(
                Order, part, conflict=("shop_id", "shopify_id"), update=[*update, *also],
                extra_set=keep_known(ORDER_NOT_KNOWN), guard=newer_or_changed([*update, "device"], ORDER_TIE,
                                                                              ORDER_NOT_KNOWN),
                returning=("id", "shopify_id", "customer_id", "(xmax = 0)"))}
        _replace_line_items(shop=shop, records=[r for r in records if r.shopify_id in applied], applied=applied)
        refunds = [f for r in records if r.shopify_id in applied and r.refunds for f in r.refunds]
        _refunds_insert(shop=shop, records=refunds, order_pks={sid: v[0] for sid, v in applied.items()})
        _orders_applied(shop=shop, customer_pks=[cust for _, cust, _ in applied.values()],
                        checkouts={r.checkout_token: r.processed_at or r.created_at for r in records
                                   if r.shopify_id in applied and r.checkout_token})
    return [pk for pk, _, _ in applied.values()]


# PostgreSQL: close the orders' checkouts and mark their customers dirty in one round trip. The
# customers are locked in id order first: two drains applying orders of the same customers then
# queue behind each other instead of each holding a row the other waits for (a deadlock).
ORDERS_APPLIED_SQL = """
WITH closed AS (
  UPDATE segments_checkout AS c SET completed_at = v.at
  FROM (SELECT unnest(%s::text[]) AS token, unnest(%s::timestamptz[]) AS at) AS v
  WHERE c.shop_id = %s AND c.token = v.token AND c.completed_at IS NULL
  RETURNING 1),
locked AS (
  SELECT id FROM segments_customer WHERE shop_id = %s AND id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE)
UPDATE segments_customer SET dirty_at = %s, dirty_cause = %s WHERE id IN (SELECT id FROM locked)
"""


def _orders_applied(*, shop: Shop, customer_pks: list[int | None], checkouts: dict[str, dt.datetime]) -> None:
    """What follows applied orders: their checkouts are completed (an order can beat its
    checkouts/update) and their customers need recomputing."""
    pks = sorted({pk for pk in customer_pks if pk})
    if pks or checkouts:
        with connection.cursor() as cursor:
            cursor.execute(ORDERS_APPLIED_SQL, [list(checkouts), list(checkouts.values()), shop.pk, shop.pk, pks,
                                                timezone.now(), current_dirty_cause()])


def orders_delete(*, shop: Shop, shopify_ids: Iterable[int]) -> int:
    """Drop orders the mirror must not hold (an order that became a test order); their customers are dirty."""
    ids = set(shopify_ids)
    if not ids:
        return 0
    with transaction.atomic(savepoint=False):
        customers = list(Order.objects.filter(shop=shop, shopify_id__in=ids, customer__isnull=False)
                         .values_list("customer_id", flat=True))
        deleted = Order.objects.filter(shop=shop, shopify_id__in=ids).delete()[1].get(Order._meta.label, 0)
        mark_dirty(shop=shop, customer_pks=customers)
    return deleted


LINE_COLUMNS = ("shop_id", "order_id", "shopify_id", "product_id", "variant_id", "title", "vendor", "product_type",
                "quantity", "price", "total_discount")
# REST line items carry no product type: a line without one takes its product's from the mirror.
# The rows travel as one array per column: the statement's text is the same for every batch
# (prepared once, and no client-side work per placeholder).
LINES_SQL = """
INSERT INTO segments_lineitem ({columns})
SELECT v.shop_id, v.order_id, v.shopify_id, CAST(v.product_id AS BIGINT), CAST(v.variant_id AS BIGINT), v.title,
       v.vendor, COALESCE(NULLIF(v.product_type, ''), (SELECT p.product_type FROM segments_product p
           WHERE p.shop_id = v.shop_id AND p.shopify_id = CAST(v.product_id AS BIGINT)), ''),
       v.quantity, v.price, v.total_discount
FROM unnest({arrays}) AS v({columns})
"""


def _replace_line_items(*, shop: Shop, records: Sequence[OrderRecord], applied: dict) -> None:
    """An applied order's line items are the delivery's, all of them (REST sends the whole list)."""
    with_items = [r for r in records if r.line_items is not None]
    stale = [applied[r.shopify_id][0] for r in with_items if not applied[r.shopify_id][2]]
    if stale:
        LineItem.objects.filter(order_id__in=stale).delete()
    rows = [(shop.pk, applied[r.shopify_id][0], item.shopify_id, item.product_id, item.variant_id, item.title,
             item.vendor, item.product_type, item.quantity, item.price, item.total_discount)
            for r in with_items for item in r.line_items]
    if rows:
        columns = ", ".join(LINE_COLUMNS)
        arrays = ", ".join(f"%s::{db_type}[]" for db_type, _ in array_types(LineItem, LINE_COLUMNS))
        with connection.cursor() as cursor:
            cursor.execute(LINES_SQL.format(columns=columns, arrays=arrays), [list(column) for column in zip(*rows)])


def _refunds_insert(*, shop: Shop, records: Sequence[RefundRecord], order_pks: dict[int, int]) -> int:
    rows = [{"shop_id": shop.pk, "shopify_id": r.shopify_id, "order_id": order_pks[r.order_shopify_id],
             "created_at": r.created_at, "amount": r.amount} for r in records if r.order_shopify_id in order_pks]
    return len(upsert(Refund, rows, conflict=("shop_id", "shopify_id"), update=()))


def refunds_upsert(*, shop: Shop, records: Sequence[RefundRecord]) -> int:
    """refunds/create: refunds are immutable; the order's totals come with orders/updated."""
    order_pks = dict(Order.objects.filter(shop=shop, shopify_id__in={r.order_shopify_id for r in records})
                     .values_list("shopify_id", "pk"))
    missing = {r.order_shopify_id for r in records} - order_pks.keys()
    if missing:
        raise OrderNotYetKnown(f"orders not in the mirror yet: {sorted(missing)[:5]}")
    inserted = _refunds_insert(shop=shop, records=records, order_pks=order_pks)
    mark_dirty(shop=shop, customer_pks=Order.objects.filter(pk__in=order_pks.values())
               .values_list("customer_id", flat=True))
    return inserted


# -- checkouts and carts -----------------------------------------------------------------------
def checkouts_upsert(*, shop: Shop, records: Sequence[CheckoutRecord]) -> int:
    records = dedupe(records, "token")
    if not records:
        return 0
    with transaction.atomic(savepoint=False):
        customer_of = customer_resolver(shop=shop, records=records)
        rows = []
        for r in records:
            email = normal_email(r.email)
            customer = customer_of(r)
            rows.append({"shop_id": shop.pk, "token": r.token, "shopify_id": r.shopify_id, "cart_token": r.cart_token,
                         "customer_id": customer, "email": email, "total": r.total, "device": r.device,
                         "line_item_count": r.line_item_count, "created_at": r.created_at,
                         "updated_at": r.updated_at, "completed_at": r.completed_at})
        update = ("customer_id", "total", "line_item_count", "updated_at")
        compared = (*update, *CHECKOUT_NOT_KNOWN, "completed_at")
        applied = upsert(Checkout, rows, conflict=("shop_id", "token"), update=update,
                         guard=f"t.deleted_at IS NULL AND {newer_or_changed(compared, known_only=CHECKOUT_NOT_KNOWN)}",
                         extra_set={"completed_at": "COALESCE(excluded.completed_at, t.completed_at)",
                                    "shopify_id": "COALESCE(excluded.shopify_id, t.shopify_id)",
                                    **keep_known(CHECKOUT_NOT_KNOWN)},
                         returning=("id", "customer_id"))
        mark_dirty(shop=shop, customer_pks=[cust for _, cust in applied])
    return len(applied)


def checkout_delete(*, shop: Shop, token: str | None = None, shopify_id: int | None = None,
                    cart_token: str = "") -> int:
    """checkouts/delete: the checkout is kept as deleted (no longer abandoned); returns how many.

    Shopify's delete body names a checkout by id and cart token, but its create and update bodies
    carry no id, so a checkout recorded from them has none: it is found by its cart token (one
    whose id is known, from GraphQL's abandoned checkouts, only by that id; another id on the same
    cart is another checkout). A delete that arrives before the checkout itself finds nothing.
    """
    if token:
        lookup = Q(token=token)
    else:
        lookup = Q(pk__in=[])
        if shopify_id is not None:
            lookup |= Q(shopify_id=shopify_id)
        if cart_token:
            lookup |= Q(shopify_id__isnull=True, cart_token=cart_token)
    with transaction.atomic(savepoint=False):
        gone = Checkout.objects.filter(lookup, shop=shop, deleted_at__isnull=True)
        customers = list(gone.filter(customer__isnull=False).values_list("customer_id", flat=True))
        deleted = gone.update(deleted_at=timezone.now())
        mark_dirty(shop=shop, customer_pks=customers)   # their abandoned-checkout metrics change
    return deleted


def carts_upsert(*, shop: Shop, records: Sequence[CartRecord]) -> int:
    rows = [{"shop_id": shop.pk, "token": r.token, "total": r.total, "line_item_count": r.line_item_count,
             "created_at": r.created_at, "updated_at": r.updated_at} for r in dedupe(records, "token")]
    return len(upsert(Cart, rows, conflict=("shop_id", "token"), update=("total", "line_item_count", "updated_at"),
                      guard=NEWER))
