"""The per-customer metrics table in SQL: a full rebuild of one shop and an incremental refresh of
given customers, each a handful of set-at-a-time statements.

Definitions. A customer's *orders* are their orders that are not cancelled; guest orders (no
customer) count for nobody. Money is the shop's currency.

- orders_count, first/last_order_at, largest_order (largest order total).
- total_spent: sum of (total - total_refunded); aov: total_spent / orders_count (both net of refunds).
- discounted_orders: orders with total_discounts > 0 or any discount code; full_price_orders: the rest.
- refund_rate: sum(total_refunded) / sum(total); NULL when nothing was spent before refunds.
- discount_dependence: net spend of discounted orders / total_spent; NULL when total_spent <= 0.
- distinct_product_types: distinct non-blank product types among the orders' line items.
- premium_share: share of orders with a line item priced above the shop's premium threshold, the
  75th-percentile unit price (nearest rank) of every line item the shop's mirror holds (guest and
  cancelled orders included: it describes the shop's price points, not who bought them).
- expedited_share: share of orders shipped with an expedited speed (denominator: all orders).
- mobile/desktop/pos_share: share of orders placed on that device, over orders whose device is
  known (tablet orders count in the denominator only); NULL when no order's device is known.
- top_source: the most frequent non-blank source_name; ties go to the alphabetically first.
- median_order_gap_days: median of the days between consecutive orders (mean of the two middle
  gaps when their number is even); NULL with fewer than two orders.
- abandoned_checkouts: checkouts of the customer not completed, not deleted, created at or before
  now - the shop's checkout_abandon_minutes; last_abandoned_at/_value: the newest of them;
  abandoned_not_purchased_since: there is one and no order was placed after it.
- Customers without orders get a row: counts 0, total_spent 0, the other order-derived values NULL.
  Deleted customers (deleted_at set) get no row.

Shop-relative columns are ranked among the shop's customers with orders (n of them):

- spend_percentile = floor(100 * c / n) / 100, c = customers spending at most as much (ties count
  fully), so 0.9 means "spent at least as much as 90% of buyers"; whole percents.
- rfm_recency / rfm_frequency / rfm_monetary (by last_order_at, orders_count, total_spent, higher is
  better) = 1 + floor(5 * (r - 1) / n), r = 1 + the customers with a strictly lower value. Tied
  customers share a score, the quintile where their group starts: with 60% one-time buyers, every
  one-time buyer has F1 and two-time buyers start at F4. NULL without orders.
- rfm_group from (R, F): the group of segments.engine.registry.RFM_GROUPS whose ranges hold both
  scores, so the table and the rule editor share one map. The standard map leaves R3 F1-2 out;
  there they fall in needs_attention (neither recent nor frequent, not lost yet). Where the standard
  map overlaps (R1 F5, at_risk and cannot_lose) cannot_lose wins; the registry also puts R2 F5
  there.

Both rankings are, exactly, comparisons with the shop's percentile breakpoints p_k (the value at
rank ceil(k * n / 100)): spend_percentile = max{k : p_k <= v} / 100 and score = 1 + #{k in 20, 40,
60, 80 : v > p_k}. The full rebuild ranks every buyer against the whole distribution and stores
the breakpoints (ShopMetricsBreakpoints); the incremental refresh ranks the customers it
recomputes against the stored breakpoints. So an incremental row equals what a full rebuild would
give as long as the shop's distribution has not moved since the breakpoints were derived; the
dirty refresh re-derives them from this table when it has (segments.engine.metrics_ranking), and
the premium threshold waits for the nightly rebuild. A shop without buyers at its last rebuild
ranks a new buyer as the only one (percentile 1.0, scores 1, as a rebuild would).

The median gap and top source are ordered-set aggregates (percentile_cont, mode) in the one grouped
pass over a customer's orders. Percentiles and scores are running counts over each distribution's
distinct values and integer arithmetic (not percentile_cont / ntile, whose float positions and
arbitrary tie splits would not match the breakpoints).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from segments.engine.planner import planner_settings
from segments.engine.registry import RFM_GROUPS

QUINTILE_POSITIONS = (20, 40, 60, 80)
PREMIUM_POSITION = 75

METRICS = "segments_customermetrics"
BREAKPOINTS = "segments_shopmetricsbreakpoints"
# The full rebuild's temporary tables: per-customer values before ranking, the line-item part of
# them, and the shop's line-item prices with how many lines have each.
BASE = "metrics_base"
LINES = "metrics_lines"
PRICES = "metrics_prices"
TEMPORARY = (PRICES, LINES, BASE)

# Columns of the base query, in the order it selects them (customer_id first).
BASE_COLUMNS = (
    "customer_id", "customer_created_at", "orders_count", "total_spent", "aov", "first_order_at", "last_order_at",
    "largest_order", "discounted_orders", "full_price_orders", "refund_rate", "distinct_product_types",
    "abandoned_checkouts", "last_abandoned_at", "last_abandoned_value", "abandoned_not_purchased_since",
    "median_order_gap_days", "expedited_share", "discount_dependence", "premium_share", "mobile_share",
    "desktop_share", "pos_share", "top_source",
)
RANKED_COLUMNS = ("spend_percentile", "rfm_recency", "rfm_frequency", "rfm_monetary")
COLUMNS = (*BASE_COLUMNS, *RANKED_COLUMNS, "rfm_group", "computed_at")


def _days_between(later: str, earlier: str) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {later} - {earlier}) AS double precision) / 86400"


def _in_ids(column: str) -> str:
    """`column` is one of the %(ids)s customer ids (see _ids_param)."""
    return f"{column} = ANY(%(ids)s::bigint[])"


def _ids_param(ids: Sequence[int]) -> list[int]:
    return [int(i) for i in ids]


# Per-customer values that need nothing but the customer's own rows (and the premium threshold).
# {orders}, {checkouts}, {customers}: extra conditions narrowing the statement to some customers;
# {lines}: LINES_SQL, or the full rebuild's LINES table.
BASE_SQL = """
buys AS (
  SELECT o.id, o.customer_id, o.created_at, o.total, o.total_refunded, o.device, o.shipping_speed, o.source_name,
         CASE WHEN o.total_discounts > 0 OR o.discount_codes <> '[]' THEN 1 ELSE 0 END AS discounted,
         {gap} AS gap
  FROM segments_order o
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL {orders}
),
per_customer AS (
  SELECT customer_id, count(*) AS orders_count, sum(total - total_refunded) AS spent, sum(total) AS gross,
         sum(total_refunded) AS refunded, min(created_at) AS first_at, max(created_at) AS last_at,
         max(total) AS largest, sum(discounted) AS discounted,
         sum(CASE WHEN discounted = 1 THEN total - total_refunded ELSE 0 END) AS discounted_spent,
         sum(CASE WHEN shipping_speed = 'expedited' THEN 1 ELSE 0 END) AS expedited,
         sum(CASE WHEN device <> 'unknown' THEN 1 ELSE 0 END) AS known_device,
         sum(CASE WHEN device = 'mobile' THEN 1 ELSE 0 END) AS mobile,
         sum(CASE WHEN device = 'desktop' THEN 1 ELSE 0 END) AS desktop,
         sum(CASE WHEN device = 'pos' THEN 1 ELSE 0 END) AS pos,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap,
         mode() WITHIN GROUP (ORDER BY NULLIF(source_name, '')) AS top_source
  FROM buys GROUP BY customer_id
),
lines AS ({lines}),
abandoned AS (
  SELECT k.customer_id, k.created_at, k.total,
         row_number() OVER (PARTITION BY k.customer_id ORDER BY k.created_at DESC, k.id DESC) AS rn,
         count(*) OVER (PARTITION BY k.customer_id) AS n
  FROM segments_checkout k
  WHERE k.shop_id = %(shop)s AND k.customer_id IS NOT NULL AND k.completed_at IS NULL AND k.deleted_at IS NULL
    AND k.created_at <= %(abandoned_before)s {checkouts}
),
base AS (
  SELECT c.id AS customer_id, c.created_at AS customer_created_at,
         COALESCE(p.orders_count, 0) AS orders_count,
         ROUND(COALESCE(p.spent, 0), 2) AS total_spent,
         ROUND(p.spent * 1.0 / p.orders_count, 2) AS aov,
         p.first_at AS first_order_at, p.last_at AS last_order_at, p.largest AS largest_order,
         COALESCE(p.discounted, 0) AS discounted_orders,
         COALESCE(p.orders_count - p.discounted, 0) AS full_price_orders,
         CASE WHEN p.gross > 0 THEN p.refunded * 1.0 / p.gross END AS refund_rate,
         COALESCE(l.product_types, 0) AS distinct_product_types,
         COALESCE(a.n, 0) AS abandoned_checkouts, a.created_at AS last_abandoned_at, a.total AS last_abandoned_value,
         CASE WHEN a.customer_id IS NOT NULL AND (p.last_at IS NULL OR p.last_at <= a.created_at)
              THEN TRUE ELSE FALSE END AS abandoned_not_purchased_since,
         p.median_gap AS median_order_gap_days,
         p.expedited * 1.0 / p.orders_count AS expedited_share,
         CASE WHEN p.spent > 0 THEN p.discounted_spent * 1.0 / p.spent END AS discount_dependence,
         COALESCE(l.premium_orders, 0) * 1.0 / p.orders_count AS premium_share,
         CASE WHEN p.known_device > 0 THEN p.mobile * 1.0 / p.known_device END AS mobile_share,
         CASE WHEN p.known_device > 0 THEN p.desktop * 1.0 / p.known_device END AS desktop_share,
         CASE WHEN p.known_device > 0 THEN p.pos * 1.0 / p.known_device END AS pos_share,
         p.top_source AS top_source
  FROM segments_customer c
  LEFT JOIN per_customer p ON p.customer_id = c.id
  LEFT JOIN lines l ON l.customer_id = c.id
  LEFT JOIN abandoned a ON a.customer_id = c.id AND a.rn = 1
  WHERE c.shop_id = %(shop)s AND c.deleted_at IS NULL {customers}
)"""

# Per customer, from the line items of their orders: distinct product types, and orders with a
# line priced above the premium threshold.
LINES_SQL = """
  SELECT o.customer_id, count(DISTINCT NULLIF(li.product_type, '')) AS product_types,
         count(DISTINCT CASE WHEN li.price > %(premium_price)s THEN o.id END) AS premium_orders
  FROM segments_order o JOIN segments_lineitem li ON li.order_id = o.id
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL {orders}
  GROUP BY o.customer_id"""


def _base_ctes(*, some: bool) -> str:
    """The base query's CTEs, for every customer of the shop (reading the line items from the
    LINES table) or (some) for those in %(ids)s."""
    gap = _days_between("o.created_at", "LAG(o.created_at) OVER (PARTITION BY o.customer_id "
                                        "ORDER BY o.created_at, o.id)")
    orders = f"AND {_in_ids('o.customer_id')}" if some else ""
    return BASE_SQL.format(
        gap=gap, orders=orders,
        lines=LINES_SQL.format(orders=orders) if some else f"SELECT * FROM {LINES}",
        checkouts=f"AND {_in_ids('k.customer_id')}" if some else "",
        customers=f"AND {_in_ids('c.id')}" if some else "")


def rfm_group_case(recency: str, frequency: str) -> str:
    """SQL: the registry's RFM group of the two score expressions (NULL when either is NULL)."""
    whens = " ".join(f"WHEN {recency} BETWEEN {g.recency[0]} AND {g.recency[1]} "
                     f"AND {frequency} BETWEEN {g.frequency[0]} AND {g.frequency[1]} THEN '{g.name}'"
                     for g in RFM_GROUPS)
    return f"CASE {whens} END"


def _upsert_tail(guarded: bool) -> str:
    """Write the ranked rows; a guarded (full) write leaves rows a later refresh computed alone."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in ("shop_id", *COLUMNS[1:]))
    guard = " WHERE t.computed_at <= excluded.computed_at" if guarded else ""
    return f" WHERE TRUE ON CONFLICT (customer_id) DO UPDATE SET {sets}{guard}"


def _insert_ranked(source: str, ctes: str = "") -> str:
    """INSERT … SELECT from `source`, a subquery with the base columns plus the four ranked ones.
    """
    selected = ", ".join((*BASE_COLUMNS, *RANKED_COLUMNS))
    return (f"INSERT INTO {METRICS} AS t (shop_id, {', '.join(COLUMNS)}) {'WITH ' + ctes if ctes else ''} "
            f"SELECT %(shop)s, {selected}, {rfm_group_case('rfm_recency', 'rfm_frequency')}, %(now)s "
            f"FROM {source} ranked")


def _score_from_breakpoints(column: str) -> str:
    positions = ", ".join(str(p) for p in QUINTILE_POSITIONS)
    return (f"CASE WHEN b.orders_count > 0 THEN 1 + (SELECT count(*) FROM {BREAKPOINTS} x WHERE x.shop_id = %(shop)s "
            f"AND x.position IN ({positions}) AND x.{column} < b.{column}) END")


# Incremental refresh: ranks against the breakpoints of the last full rebuild.
RANKED_BY_BREAKPOINTS = f"""(
  SELECT b.*,
    CASE WHEN b.orders_count > 0 THEN COALESCE((SELECT max(x.position) FROM {BREAKPOINTS} x
      WHERE x.shop_id = %(shop)s AND x.total_spent <= b.total_spent), %(percentile_floor)s) / 100.0
    END AS spend_percentile,
    {_score_from_breakpoints('last_order_at')} AS rfm_recency,
    {_score_from_breakpoints('orders_count')} AS rfm_frequency,
    {_score_from_breakpoints('total_spent')} AS rfm_monetary
  FROM base b
)"""


def _breaks(name: str, values: str) -> str:
    """CTEs `{name}` → (v, lo, hi): value v is breakpoint k for lo < k <= hi.

    `values` selects (v, cnt): each distinct value and how many rows have it. A value spans ranks
    cum - cnt + 1 … cum, so it sits at rank ceil(k * n / 100) exactly for those k.
    """
    return f"""{name}_counts AS ({values}),
{name}_ranks AS (
  SELECT v, cnt, CAST(sum(cnt) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) AS BIGINT) AS cum,
         CAST(sum(cnt) OVER () AS BIGINT) AS n
  FROM {name}_counts
),
{name} AS (
  SELECT v, 100 * (cum - cnt) / n AS lo, 100 * cum / n AS hi FROM {name}_ranks
  WHERE 100 * cum / n > 100 * (cum - cnt) / n
)"""


POSITIONS = "positions(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM positions WHERE k < 100)"


def _breakpoints_upsert(columns: dict[str, str]) -> str:
    """Write positions 1-100 of the given breakpoint columns ({column: its CTE from _breaks}).

    Each position meets exactly one (lo, hi] interval of a non-empty distribution. Joins, not a
    subquery per position: PostgreSQL inlines a CTE used once and would rank the values 100 times.
    """
    names = ", ".join(columns)
    picks = ", ".join(f"{cte}.v" for cte in columns.values())
    joins = " ".join(f"LEFT JOIN {cte} ON k > {cte}.lo AND k <= {cte}.hi" for cte in columns.values())
    sets = ", ".join(f"{c} = excluded.{c}" for c in (*columns, "computed_at"))
    return (f"INSERT INTO {BREAKPOINTS} AS t (shop_id, position, {names}, computed_at) "
            f"SELECT %(shop)s, k, {picks}, %(now)s FROM positions {joins} WHERE TRUE "
            f"ON CONFLICT (shop_id, position) DO UPDATE SET {sets}")


# A statement of its own, so PostgreSQL can scan the line items in parallel (an INSERT cannot).
PRICES_SQL = (f"CREATE TEMPORARY TABLE {PRICES} AS SELECT price AS v, count(*) AS cnt FROM segments_lineitem "
              f"WHERE shop_id = %(shop)s GROUP BY price")
PRICE_BREAKPOINTS_SQL = (
    f"WITH RECURSIVE {POSITIONS},\n"
    + _breaks("price_breaks", f"SELECT v, cnt FROM {PRICES}")
    + "\n" + _breakpoints_upsert({"line_item_price": "price_breaks"}))

RANKED_BY = ("total_spent", "last_order_at", "orders_count")
# The distributions of the full rebuild's buyers: {column}_breaks_ranks and {column}_breaks.
BUYER_DISTRIBUTIONS = ",\n".join(
    _breaks(f"{column}_breaks", f"SELECT {column} AS v, count(*) AS cnt FROM {BASE} "
                                f"WHERE orders_count > 0 GROUP BY {column}") for column in RANKED_BY)
BUYER_BREAKPOINTS_SQL = (f"WITH RECURSIVE {POSITIONS},\n{BUYER_DISTRIBUTIONS}\n"
                         + _breakpoints_upsert({c: f"{c}_breaks" for c in RANKED_BY}))

# Full rebuild: each buyer's value joined to its place in the distribution. A value's group spans
# ranks cum - cnt + 1 … cum: cum buyers have at most that value and cum - cnt have less (the same
# figures as count(*) OVER (ORDER BY v) and rank() - 1, without sorting the wide rows three times).
RANKED_BY_DISTRIBUTIONS = f"""(
  SELECT b.*,
    CASE WHEN b.orders_count > 0 THEN (100 * m.cum / m.n) / 100.0 END AS spend_percentile,
    CASE WHEN b.orders_count > 0 THEN 1 + 5 * (r.cum - r.cnt) / r.n END AS rfm_recency,
    CASE WHEN b.orders_count > 0 THEN 1 + 5 * (f.cum - f.cnt) / f.n END AS rfm_frequency,
    CASE WHEN b.orders_count > 0 THEN 1 + 5 * (m.cum - m.cnt) / m.n END AS rfm_monetary
  FROM {BASE} b
  LEFT JOIN total_spent_breaks_ranks m ON b.orders_count > 0 AND m.v = b.total_spent
  LEFT JOIN last_order_at_breaks_ranks r ON b.orders_count > 0 AND r.v = b.last_order_at
  LEFT JOIN orders_count_breaks_ranks f ON b.orders_count > 0 AND f.v = b.orders_count
)"""


@dataclass(frozen=True)
class Breakpoints:
    """What an incremental refresh needs of the shop's last rebuild."""

    premium_price: object     # Decimal, or None when the shop had no line items
    has_buyers: bool


def shop_breakpoints(*, shop_id: int) -> Breakpoints | None:
    """The shop's stored breakpoints; None if the shop was never rebuilt."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT line_item_price, total_spent FROM {BREAKPOINTS} WHERE shop_id = %s AND position = %s",
                       [shop_id, PREMIUM_POSITION])
        row = cursor.fetchone()
    if row is None:
        return None
    return Breakpoints(premium_price=row[0], has_buyers=row[1] is not None)


def _params(*, shop_id: int, now: dt.datetime, abandoned_before: dt.datetime, **more) -> dict:
    adapt = connection.ops.adapt_datetimefield_value
    return {"shop": shop_id, "now": adapt(now), "abandoned_before": adapt(abandoned_before), **more}


def rebuild(*, shop_id: int, now: dt.datetime, abandoned_before: dt.datetime) -> int:
    """Recompute every customer of the shop and its breakpoints; returns the rows written.

    Run inside a transaction. Rows a refresh computed after `now` are left as they are.
    """
    params = _params(shop_id=shop_id, now=now, abandoned_before=abandoned_before)
    with connection.cursor() as cursor:
        for table in TEMPORARY:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        with planner_settings(cursor):
            cursor.execute(PRICES_SQL, params)
            cursor.execute(PRICE_BREAKPOINTS_SQL, params)
            cursor.execute(f"SELECT line_item_price FROM {BREAKPOINTS} WHERE shop_id = %s AND position = %s",
                           [shop_id, PREMIUM_POSITION])
            params["premium_price"] = cursor.fetchone()[0]
            # Apart from the orders' pass: joined and sorted in parallel workers, which the big
            # statement's window and ordered-set aggregates would not allow.
            cursor.execute(f"CREATE TEMPORARY TABLE {LINES} AS {LINES_SQL.format(orders='')}", params)
            cursor.execute(f"CREATE TEMPORARY TABLE {BASE} AS WITH {_base_ctes(some=False)} SELECT * FROM base",
                           params)
            cursor.execute(f"ANALYZE {BASE}")   # temporary tables are never auto-analyzed
            cursor.execute(BUYER_BREAKPOINTS_SQL, params)
            cursor.execute(_insert_ranked(RANKED_BY_DISTRIBUTIONS, ctes=BUYER_DISTRIBUTIONS)
                           + _upsert_tail(guarded=True), params)
            written = cursor.rowcount
        # Driven by the shop's (few) deleted customers, each row found by key; no filter on the
        # table's own shop_id, which could tempt the planner into reading every row of the shop.
        cursor.execute(f"DELETE FROM {METRICS} WHERE computed_at <= %(now)s AND customer_id IN "
                       f"(SELECT id FROM segments_customer WHERE shop_id = %(shop)s AND deleted_at IS NOT NULL)",
                       params)
        for table in TEMPORARY:
            cursor.execute(f"DROP TABLE {table}")
    return written


def refresh(*, shop_id: int, customer_ids: Sequence[int], now: dt.datetime, abandoned_before: dt.datetime,
            breakpoints: Breakpoints) -> int:
    """Recompute the given customers of the shop against its stored breakpoints; returns the rows
    written. Deleted customers among them lose their rows; ids of other shops are ignored."""
    if not customer_ids:
        return 0
    params = _params(shop_id=shop_id, now=now, abandoned_before=abandoned_before, ids=_ids_param(customer_ids),
                     premium_price=breakpoints.premium_price,
                     percentile_floor=0 if breakpoints.has_buyers else 100)
    with connection.cursor() as cursor:
        cursor.execute(_insert_ranked(RANKED_BY_BREAKPOINTS, ctes=_base_ctes(some=True)) + _upsert_tail(guarded=False),
                       params)
        written = cursor.rowcount
        cursor.execute(f"DELETE FROM {METRICS} WHERE shop_id = %(shop)s AND {_in_ids('customer_id')} AND NOT EXISTS "
                       f"(SELECT 1 FROM segments_customer c WHERE c.id = {METRICS}.customer_id "
                       f"AND c.deleted_at IS NULL)", params)
    return written
