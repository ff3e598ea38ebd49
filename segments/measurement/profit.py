"""Segments measured in profit over a period of shop-local days: each segment's gross profit, profit per
member, and from the web pixel's visits, profit per visitor and orders per visit; the store's own
profit per customer to compare with; and each member's profit for the holdout lift.

Gross profit is segments.engine.profit's, per order in the period: line revenue after discounts less
the variants' unit costs and the order's refunds, as each order carries them. A line without a cost takes the shop's default
margin; without one, profit is not measured (None) and `uncosted_lines` says how many lines lack a
cost, so the page can say why. Members: treated members in the segment at the period's end (held-out
members are compared in the lift, not counted here). Orders as everywhere: not cancelled.
"""
from __future__ import annotations

import datetime as dt

from django.db import connection

from segments.measurement.snapshots import members_at_cte
from segments.membership.models import Segment
from segments.mirror.order_costs import ORDER_PROFIT, margin_fill
from segments.shops.calendar import shop_day_bounds
from segments.shops.models import Shop

# Per order in the period: its customer, gross profit and lines without a cost (from the order's
# stored revenue and cost of goods, segments.mirror.order_costs).
ORDER_PROFIT_CTE = f"""op AS (
  SELECT o.id, o.customer_id, {ORDER_PROFIT} AS profit, o.uncosted_lines FROM segments_order o
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL
    AND o.created_at >= %(start)s AND o.created_at < %(end)s
)"""
PROFIT = "op.profit"

_SEGMENTS_SQL = f"""
WITH {members_at_cte("end")}, {ORDER_PROFIT_CTE},
visits AS (
  SELECT v.customer_id, sum(vd.sessions) AS visits FROM segments_visitorday vd
  JOIN segments_visitor v ON v.id = vd.visitor_id
  WHERE vd.shop_id = %(shop)s AND v.customer_id IS NOT NULL AND vd.first_at >= %(start)s AND vd.first_at < %(end)s
  GROUP BY v.customer_id
)
SELECT m.segment_id, count(DISTINCT m.customer_id), sum({PROFIT}), count(op.id), sum(op.uncosted_lines),
       (SELECT COALESCE(sum(x.visits), 0) FROM visits x JOIN members n ON n.customer_id = x.customer_id
          WHERE n.segment_id = m.segment_id AND NOT n.holdout),
       (SELECT count(*) FROM visits x JOIN members n ON n.customer_id = x.customer_id
          WHERE n.segment_id = m.segment_id AND NOT n.holdout AND x.visits > 0)
FROM members m LEFT JOIN op ON op.customer_id = m.customer_id
WHERE NOT m.holdout
GROUP BY m.segment_id
"""

_STORE_SQL = f"""
WITH {ORDER_PROFIT_CTE}
SELECT sum({PROFIT}), sum(op.uncosted_lines),
       (SELECT count(*) FROM segments_customer WHERE shop_id = %(shop)s AND deleted_at IS NULL) FROM op
"""


def _params(shop: Shop, start: dt.date, end: dt.date) -> dict:
    return {"shop": shop.pk, "start": shop_day_bounds(shop, start)[0], "end": shop_day_bounds(shop, end)[1],
            "fill": margin_fill(shop)}


def _measured(shop: Shop, uncosted: int) -> bool:
    return shop.default_margin_percent > 0 or not uncosted


def segments_profit(*, shop: Shop, segments: list[Segment], start: dt.date, end: dt.date) -> dict[int, dict]:
    """{segment id: members, gross_profit, profit_per_member, orders, visits, visitors, profit_per_visitor,
    orders_per_visit, uncosted_lines}; profit figures None when uncosted lines leave them unmeasured."""
    params = _params(shop, start, end) | {"segments": [s.pk for s in segments]}
    with connection.cursor() as cursor:
        cursor.execute(_SEGMENTS_SQL, params)
        rows = cursor.fetchall()
    out = {}
    for segment_id, members, profit, orders, uncosted, visits, visitors in rows:
        measured = _measured(shop, uncosted or 0)
        profit = float(profit or 0) if measured else None
        out[segment_id] = {
            "members": members, "gross_profit": profit, "orders": orders, "uncosted_lines": uncosted or 0,
            "profit_per_member": profit / members if profit is not None and members else None,
            "visits": int(visits), "visitors": visitors,
            "profit_per_visitor": profit / visitors if profit is not None and visitors else None,
            "orders_per_visit": orders / int(visits) if visits else None}
    return out


def store_profit(*, shop: Shop, start: dt.date, end: dt.date) -> dict:
    """The store's gross profit over the period and per customer (every live customer, as a segment's
    profit per member counts its members who bought nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(_STORE_SQL, _params(shop, start, end))
        profit, uncosted, customers = cursor.fetchone()
    measured = _measured(shop, uncosted or 0)
    total = float(profit or 0) if measured else None
    return {"gross_profit": total, "customers": customers, "uncosted_lines": uncosted or 0,
            "profit_per_customer": total / customers if total is not None and customers else None}
