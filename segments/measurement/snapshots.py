"""Daily KPI snapshots per segment (models.kpis): the nightly snapshot of a day, and the history
backfill when a segment is created.

Definitions (the same as the customer metrics): an order counts when it is not cancelled and has a
customer; its value is `total - total_refunded` (net of refunds known when the snapshot is taken);
its day is the shop-local day of `created_at`. Members exclude the holdout, whose figures are kept
beside them.

- `kpi_snapshot_day(shop, day)`: every active segment of the shop in one statement. Members are
  those in the segment at the end of the day, read from history: the current memberships, undone
  by the events after the day (a customer's first later event tells whether they were in before
  it). Observed CLV is the members' lifetime net spend up to the end of the day. Predicted CLV is
  observed spend plus 12 months more at each member's own pace so far: spend x 365 / tenure days
  (tenure from the first order, at least 30 days so a new customer's first order is not
  annualised into a fortune). NULL when no member has ordered.
- `kpi_snapshots_backfill(segment, days)`: the `days` complete days up to yesterday, for *today's*
  members (there was no membership then), labelled `backfilled`: member counts are today's,
  entries and exits 0, predicted CLV NULL. Days with an observed snapshot are never overwritten.

Gross profit (both): the day's orders' stored revenue less their cost of goods and refunds, lines
without a cost at the shop's default margin at the time; NULL when such a line has none to take.
"""
from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from segments.membership.models import Segment, SegmentStatus
from segments.mirror.order_costs import ORDER_PROFIT, margin_fill
from segments.shops.calendar import shop_day_bounds, shop_today
from segments.shops.models import Shop

PREDICTION_HORIZON_DAYS = 365
MIN_TENURE_DAYS = 30
DEFAULT_BACKFILL_DAYS = 90

_COLUMNS = ("shop_id", "segment_id", "day", "members", "holdout_members", "entries", "exits", "orders", "buyers",
            "repeat_buyers", "revenue", "store_revenue", "clv_total", "predicted_clv_total", "holdout_orders",
            "holdout_buyers", "holdout_revenue", "gross_profit", "holdout_gross_profit", "uncosted_lines", "backfilled",
            "computed_at")
_UPDATE = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[3:])
_INSERT = f"INSERT INTO segments_segmentkpisnapshot ({', '.join(_COLUMNS)}) "


def members_at_cte(at: str, name: str = "members") -> str:
    """`<name>_later, <name>` CTEs: who was in each segment of %(segments)s at the instant %(<at>)s, from the
    current memberships undone by each (segment, customer)'s first event after it (an exit means they
    were in, an entry that they were not). Cheap for recent instants: few events come after them."""
    return f"""{name}_later AS (
  SELECT DISTINCT ON (e.segment_id, e.customer_id) e.segment_id, e.customer_id, e.entered, e.holdout
  FROM segments_membershipevent e
  WHERE e.segment_id = ANY(%(segments)s) AND e.at >= %({at})s
  ORDER BY e.segment_id, e.customer_id, e.at, e.id
),
{name} AS (
  SELECT m.segment_id, m.customer_id, m.holdout FROM segments_membership m
  WHERE m.segment_id = ANY(%(segments)s)
    AND NOT EXISTS (SELECT 1 FROM {name}_later l WHERE l.segment_id = m.segment_id AND l.customer_id = m.customer_id)
  UNION ALL
  SELECT l.segment_id, l.customer_id, l.holdout FROM {name}_later l WHERE NOT l.entered
)"""


def _measured(profit: str, uncosted: str) -> str:
    """A day's gross profit, or NULL when a line without a cost has no default margin to fill it."""
    return f"CASE WHEN %(margin)s > 0 OR COALESCE({uncosted}, 0) = 0 THEN ROUND(COALESCE({profit}, 0), 2) END"


_DAY_SQL = _INSERT + f"""
WITH {members_at_cte("end")},
spend AS (
  SELECT o.customer_id, count(*) AS orders, sum(o.total - o.total_refunded) AS spent, min(o.created_at) AS first_at,
         count(*) FILTER (WHERE o.created_at >= %(start)s) AS day_orders,
         sum(o.total - o.total_refunded) FILTER (WHERE o.created_at >= %(start)s) AS day_revenue,
         sum({ORDER_PROFIT}) FILTER (WHERE o.created_at >= %(start)s) AS day_profit,
         sum(o.uncosted_lines) FILTER (WHERE o.created_at >= %(start)s) AS day_uncosted
  FROM segments_order o
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL AND o.created_at < %(end)s
  GROUP BY o.customer_id
),
per_segment AS (
  SELECT m.segment_id,
    count(*) FILTER (WHERE NOT m.holdout) AS members,
    count(*) FILTER (WHERE m.holdout) AS holdout_members,
    COALESCE(sum(s.day_orders) FILTER (WHERE NOT m.holdout), 0) AS orders,
    count(*) FILTER (WHERE NOT m.holdout AND s.day_orders > 0) AS buyers,
    count(*) FILTER (WHERE NOT m.holdout AND s.day_orders > 0 AND s.first_at < %(start)s) AS repeat_buyers,
    COALESCE(sum(s.day_revenue) FILTER (WHERE NOT m.holdout), 0) AS revenue,
    COALESCE(sum(s.spent) FILTER (WHERE NOT m.holdout), 0) AS clv_total,
    sum(s.spent * (1 + {PREDICTION_HORIZON_DAYS}.0 / GREATEST({MIN_TENURE_DAYS},
        EXTRACT(EPOCH FROM (%(end)s - s.first_at)) / 86400.0))) FILTER (WHERE NOT m.holdout) AS predicted,
    COALESCE(sum(s.day_orders) FILTER (WHERE m.holdout), 0) AS holdout_orders,
    count(*) FILTER (WHERE m.holdout AND s.day_orders > 0) AS holdout_buyers,
    COALESCE(sum(s.day_revenue) FILTER (WHERE m.holdout), 0) AS holdout_revenue,
    COALESCE(sum(s.day_profit) FILTER (WHERE NOT m.holdout), 0) AS profit,
    COALESCE(sum(s.day_uncosted) FILTER (WHERE NOT m.holdout), 0) AS uncosted,
    COALESCE(sum(s.day_profit) FILTER (WHERE m.holdout), 0) AS holdout_profit,
    COALESCE(sum(s.day_uncosted) FILTER (WHERE m.holdout), 0) AS holdout_uncosted
  FROM members m LEFT JOIN spend s ON s.customer_id = m.customer_id
  GROUP BY m.segment_id
),
moves AS (
  SELECT e.segment_id, count(*) FILTER (WHERE e.entered) AS entries, count(*) FILTER (WHERE NOT e.entered) AS exits
  FROM segments_membershipevent e
  WHERE e.segment_id = ANY(%(segments)s) AND e.at >= %(start)s AND e.at < %(end)s AND NOT e.holdout
  GROUP BY e.segment_id
),
store AS (
  SELECT COALESCE(sum(o.total - o.total_refunded), 0) AS revenue FROM segments_order o
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.created_at >= %(start)s AND o.created_at < %(end)s
)
SELECT %(shop)s, seg.id, %(day)s, COALESCE(p.members, 0), COALESCE(p.holdout_members, 0),
       COALESCE(mv.entries, 0), COALESCE(mv.exits, 0), COALESCE(p.orders, 0), COALESCE(p.buyers, 0),
       COALESCE(p.repeat_buyers, 0), ROUND(COALESCE(p.revenue, 0), 2), ROUND(store.revenue, 2),
       ROUND(COALESCE(p.clv_total, 0), 2), ROUND(p.predicted, 2), COALESCE(p.holdout_orders, 0),
       COALESCE(p.holdout_buyers, 0), ROUND(COALESCE(p.holdout_revenue, 0), 2),
       {_measured("p.profit", "p.uncosted")}, {_measured("p.holdout_profit", "p.holdout_uncosted")},
       COALESCE(p.uncosted, 0), FALSE, %(now)s
FROM unnest(%(segments)s) AS seg(id)
CROSS JOIN store
LEFT JOIN per_segment p ON p.segment_id = seg.id
LEFT JOIN moves mv ON mv.segment_id = seg.id
ON CONFLICT (segment_id, day) DO UPDATE SET {_UPDATE}
"""


def _margin(shop: Shop) -> dict:
    return {"margin": shop.default_margin_percent, "fill": margin_fill(shop)}


def kpi_snapshot_day(*, shop: Shop, day: dt.date, segments: list[Segment] | None = None,
                     now: dt.datetime | None = None) -> int:
    """Snapshot `day` (shop-local) for every active segment of the shop (or `segments`); upserts by
    (segment, day), so a re-run replaces the day. Returns the number of segments snapshotted."""
    if segments is None:
        segments = list(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE).order_by("pk"))
    ids = [s.pk for s in segments if s.shop_id == shop.pk]
    if not ids:
        return 0
    start, end = shop_day_bounds(shop, day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_DAY_SQL, {"shop": shop.pk, "segments": ids, "day": day, "start": start, "end": end,
                                  "now": now or timezone.now(), **_margin(shop)})
    return len(ids)


_BACKFILL_SQL = _INSERT + """
WITH mem AS (
  SELECT m.customer_id, m.holdout FROM segments_membership m WHERE m.segment_id = %(segment)s
),
counts AS (
  SELECT count(*) FILTER (WHERE NOT holdout) AS members, count(*) FILTER (WHERE holdout) AS holdout_members FROM mem
),
before AS (
  -- Members' lifetime spend before the window, and who had ordered by then.
  SELECT o.customer_id, sum(o.total - o.total_refunded) AS spent
  FROM segments_order o JOIN mem ON mem.customer_id = o.customer_id AND NOT mem.holdout
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.created_at < %(start)s
  GROUP BY o.customer_id
),
per_day AS (
  SELECT (o.created_at AT TIME ZONE %(tz)s)::date AS day, o.customer_id, mem.holdout, count(*) AS orders,
         sum(o.total - o.total_refunded) AS revenue, sum({profit}) AS profit, sum(o.uncosted_lines) AS uncosted
  FROM segments_order o JOIN mem ON mem.customer_id = o.customer_id
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.created_at >= %(start)s AND o.created_at < %(end)s
  GROUP BY 1, 2, 3
),
ranked AS (
  SELECT d.*, (b.customer_id IS NOT NULL OR d.day > min(d.day) OVER (PARTITION BY d.customer_id)) AS repeat
  FROM per_day d LEFT JOIN before b ON b.customer_id = d.customer_id
),
daily AS (
  SELECT day,
    COALESCE(sum(orders) FILTER (WHERE NOT holdout), 0) AS orders,
    count(*) FILTER (WHERE NOT holdout) AS buyers,
    count(*) FILTER (WHERE NOT holdout AND repeat) AS repeat_buyers,
    COALESCE(sum(revenue) FILTER (WHERE NOT holdout), 0) AS revenue,
    COALESCE(sum(orders) FILTER (WHERE holdout), 0) AS holdout_orders,
    count(*) FILTER (WHERE holdout) AS holdout_buyers,
    COALESCE(sum(revenue) FILTER (WHERE holdout), 0) AS holdout_revenue,
    sum(profit) FILTER (WHERE NOT holdout) AS profit, sum(uncosted) FILTER (WHERE NOT holdout) AS uncosted,
    sum(profit) FILTER (WHERE holdout) AS holdout_profit, sum(uncosted) FILTER (WHERE holdout) AS holdout_uncosted
  FROM ranked GROUP BY day
),
store AS (
  SELECT (o.created_at AT TIME ZONE %(tz)s)::date AS day, sum(o.total - o.total_refunded) AS revenue
  FROM segments_order o
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.created_at >= %(start)s AND o.created_at < %(end)s
  GROUP BY 1
),
days AS (SELECT g::date AS day FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') g)
SELECT %(shop)s, %(segment)s, days.day, counts.members, counts.holdout_members, 0, 0,
       COALESCE(d.orders, 0), COALESCE(d.buyers, 0), COALESCE(d.repeat_buyers, 0), ROUND(COALESCE(d.revenue, 0), 2),
       ROUND(COALESCE(st.revenue, 0), 2),
       ROUND((SELECT COALESCE(sum(spent), 0) FROM before)
             + COALESCE(sum(COALESCE(d.revenue, 0)) OVER (ORDER BY days.day), 0), 2),
       NULL, COALESCE(d.holdout_orders, 0), COALESCE(d.holdout_buyers, 0), ROUND(COALESCE(d.holdout_revenue, 0), 2),
       {measured}, {holdout_measured}, COALESCE(d.uncosted, 0), TRUE, %(now)s
FROM days CROSS JOIN counts
LEFT JOIN daily d ON d.day = days.day
LEFT JOIN store st ON st.day = days.day
ON CONFLICT (segment_id, day) DO UPDATE SET {update}
WHERE segments_segmentkpisnapshot.backfilled
""".replace("{update}", _UPDATE).replace("{profit}", ORDER_PROFIT).replace(
    "{measured}", _measured("d.profit", "d.uncosted")).replace(
    "{holdout_measured}", _measured("d.holdout_profit", "d.holdout_uncosted"))


def kpi_snapshots_backfill(*, segment: Segment, days: int = DEFAULT_BACKFILL_DAYS,
                           now: dt.datetime | None = None) -> int:
    """Estimate the `days` complete shop-local days before today from today's members' history
    (see the module's note). Observed snapshots are left alone. Returns the days written or kept."""
    if days < 1:
        raise ValueError("days must be at least 1")
    shop = segment.shop
    now = now or timezone.now()
    last = shop_today(shop, now) - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    start, _ = shop_day_bounds(shop, first)
    _, end = shop_day_bounds(shop, last)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_BACKFILL_SQL, {"shop": shop.pk, "segment": segment.pk, "tz": shop.iana_timezone or "UTC",
                                       "start": start, "end": end, "first": first, "last": last, "now": now,
                                       **_margin(shop)})
    return days
