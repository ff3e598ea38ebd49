"""Each order's revenue and cost of goods, kept on the order itself (Order.line_revenue, line_cost,
uncosted_revenue, uncosted_lines), so that gross profit reads the orders alone: the rule engine's
order pass and the profit measurement never join ten line items per order to their costs again.

A line's revenue is its price times quantity less its discount; its cost, its variant's unit cost
(VariantCost) times quantity. A line whose variant has no cost adds its revenue to
`uncosted_revenue` and one to `uncosted_lines` instead, so a missing cost is never a free line.

Kept current wherever either side changes, in the writer's transaction: computed from an order's line
items as the order is written (orders.py, in the same row write), and recomputed when a variant's
cost changes, its item is linked to it or deleted (costs.py). A cost edit changes the orders holding the variant and marks their customers dirty, so
profit segments follow it like any other change. `order_costs_refresh(shop=…)` without variants
recomputes every order of the shop (migration 0023 did it once for the orders stored before; tests
use it after writing rows directly).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from segments.mirror.cause import current_dirty_cause
from segments.mirror.models import VariantCost
from segments.mirror.records import OrderRecord
from segments.shops.models import Shop

COST_COLUMNS = ("line_revenue", "line_cost", "uncosted_revenue", "uncosted_lines")
LINE_REVENUE = "(li.price * li.quantity - li.total_discount)"
# An order `o`'s gross profit, its uncosted revenue costing %(fill)s of itself (1 - the default margin).
ORDER_PROFIT = "(o.line_revenue - o.line_cost - o.uncosted_revenue * %(fill)s - o.total_refunded)"
# The orders' sums, from their lines (none: zeros) and the lines' variants' costs.
_SUMS = f"""SELECT x.id, COALESCE(sum({LINE_REVENUE}), 0) AS revenue,
       COALESCE(sum(vc.unit_cost * li.quantity), 0) AS cost,
       COALESCE(sum({LINE_REVENUE}) FILTER (WHERE vc.unit_cost IS NULL), 0) AS uncosted,
       count(li.id) FILTER (WHERE vc.unit_cost IS NULL) AS lines
FROM segments_order x LEFT JOIN segments_lineitem li ON li.order_id = x.id
LEFT JOIN segments_variantcost vc ON vc.shop_id = li.shop_id AND vc.variant_id = li.variant_id
WHERE x.shop_id = %(shop)s {{only}} GROUP BY x.id"""
_UPDATE = f"""UPDATE segments_order o SET line_revenue = s.revenue, line_cost = s.cost,
       uncosted_revenue = s.uncosted, uncosted_lines = s.lines
FROM ({_SUMS}) s
WHERE o.id = s.id AND (o.line_revenue, o.line_cost, o.uncosted_revenue, o.uncosted_lines)
      IS DISTINCT FROM (s.revenue, s.cost, s.uncosted, s.lines)
RETURNING o.customer_id"""
# The changed orders' customers are locked in id order before they are marked (as orders.py does),
# so a cost edit and an order drain touching the same customers queue instead of deadlocking.
_UPDATE_AND_MARK = f"""WITH changed AS ({_UPDATE}),
locked AS (SELECT id FROM segments_customer WHERE shop_id = %(shop)s
           AND id IN (SELECT customer_id FROM changed) ORDER BY id FOR NO KEY UPDATE)
UPDATE segments_customer SET dirty_at = %(now)s, dirty_cause = %(cause)s WHERE id IN (SELECT id FROM locked)"""

BY_VARIANT = ("AND x.id IN (SELECT l.order_id FROM segments_lineitem l WHERE l.shop_id = %(shop)s "
              "AND l.variant_id = ANY(%(variants)s))")


def margin_fill(shop: Shop) -> Decimal:
    """What share of an uncosted line's revenue is taken as its cost: 1 - the shop's default margin."""
    return Decimal(100 - shop.default_margin_percent) / 100


def orders_cost_columns(*, shop: Shop, records: Sequence[OrderRecord]) -> dict[int, dict]:
    """{shopify id: the four columns} for the records that carry their line items, from those lines and
    the stored costs, so an order is written once with them (orders.py), not written and then updated."""
    variants = {line.variant_id for r in records for line in r.line_items or () if line.variant_id is not None}
    costs = dict(VariantCost.objects.filter(shop=shop, variant_id__in=variants)
                 .values_list("variant_id", "unit_cost")) if variants else {}
    out = {}
    for r in records:
        if r.line_items is None:
            continue
        revenue = cost = uncosted = Decimal(0)
        lines = 0
        for line in r.line_items:
            value = line.price * line.quantity - line.total_discount
            revenue += value
            unit = costs.get(line.variant_id)
            if unit is None:
                uncosted, lines = uncosted + value, lines + 1
            else:
                cost += unit * line.quantity
        out[r.shopify_id] = {"line_revenue": revenue, "line_cost": cost, "uncosted_revenue": uncosted,
                             "uncosted_lines": lines}
    return out


def variant_costs_changed(*, shop: Shop, variant_ids: Iterable[int | None]) -> int:
    """These variants' costs (or their links to a cost) changed: recompute the orders holding them and
    mark those orders' customers dirty; returns how many customers were marked."""
    variants = sorted({v for v in variant_ids if v is not None})
    if not variants:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_AND_MARK.format(only=BY_VARIANT),
                       {"shop": shop.pk, "variants": variants, "now": timezone.now(),
                        "cause": current_dirty_cause()})
        return cursor.rowcount


def order_costs_refresh(*, shop: Shop) -> int:
    """Recompute every order of the shop (what changed only); returns how many orders changed."""
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE.format(only=""), {"shop": shop.pk})
        return cursor.rowcount
