"""Re-ranking a shop's buyers in SQL from the metrics table itself, between full rebuilds.

An incremental refresh ranks the customers it recomputes against the breakpoints of the last
ranking (segments.engine.metrics_table). As buyers arrive and spend, those breakpoints stop
describing the shop: a shop ranked with no buyers puts every new buyer at the top. Re-ranking
derives the buyer breakpoints again from the customers' current values in the metrics table (one
pass over the shop's buyer rows, not the orders behind them, which only a full rebuild re-reads)
and rewrites the rank columns of the buyers whose ranks moved. The figures are those of a full
rebuild: the same breakpoint CTEs (_breaks) and the same rank arithmetic over the same values.

When: every time for a shop under EXACT_BELOW buyers (a few milliseconds), else once the buyers
refreshed since the last ranking reach RANK_DRIFT of them. A customer's rank counts the buyers at
or below their value; k changed buyers move that count by at most k, so between rankings a rank is
off by at most RANK_DRIFT (plus the whole percent it rounds to).

The premium price threshold (75th percentile of line-item prices) is not re-derived here: it
ranks the catalogue's price points, which move slowly, and changing it changes every customer's
premium_share, which only a full rebuild recomputes.
"""
from __future__ import annotations

import datetime as dt

from django.db import connection

from segments.engine.metrics_table import (
    BREAKPOINTS, METRICS, POSITIONS, PREMIUM_POSITION, RANKED_BY, _breakpoints_upsert, _breaks, rfm_group_case,
)
from segments.engine.planner import planner_settings

EXACT_BELOW = 2000     # buyers: below this a shop is re-ranked whenever any of its buyers changed
RANK_DRIFT = 0.01      # share of buyers refreshed since the last ranking that triggers a re-ranking

# The distributions of the buyers as the metrics table holds them now.
CURRENT_DISTRIBUTIONS = ",\n".join(
    _breaks(f"{column}_breaks", f"SELECT {column} AS v, count(*) AS cnt FROM {METRICS} "
                                f"WHERE shop_id = %(shop)s AND orders_count > 0 GROUP BY {column}")
    for column in RANKED_BY)

BREAKPOINTS_SQL = (f"WITH RECURSIVE {POSITIONS},\n{CURRENT_DISTRIBUTIONS}\n"
                   + _breakpoints_upsert({c: f"{c}_breaks" for c in RANKED_BY}))

RANKS = ("spend_percentile", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_group")

# The rank arithmetic of metrics_table.RANKED_BY_DISTRIBUTIONS; only rows whose ranks differ are
# written. Apart from the breakpoints' statement: in one statement (the upsert as a data-modifying
# CTE) the shared distributions are materialized and the planner joins them more slowly than it
# sorts them twice (1.9 s against 0.4 + 0.7 s for 92,534 buyers).
RERANK_SQL = f"""WITH {CURRENT_DISTRIBUTIONS},
scored AS (
  SELECT b.customer_id,
    (100 * m.cum / m.n) / 100.0 AS spend_percentile,
    1 + 5 * (r.cum - r.cnt) / r.n AS rfm_recency,
    1 + 5 * (f.cum - f.cnt) / f.n AS rfm_frequency,
    1 + 5 * (m.cum - m.cnt) / m.n AS rfm_monetary
  FROM {METRICS} b
  JOIN total_spent_breaks_ranks m ON m.v = b.total_spent
  JOIN last_order_at_breaks_ranks r ON r.v = b.last_order_at
  JOIN orders_count_breaks_ranks f ON f.v = b.orders_count
  WHERE b.shop_id = %(shop)s AND b.orders_count > 0
),
ranked AS (SELECT scored.*, {rfm_group_case('rfm_recency', 'rfm_frequency')} AS rfm_group FROM scored)
UPDATE {METRICS} AS t SET {', '.join(f'{c} = ranked.{c}' for c in RANKS)}
FROM ranked
WHERE t.customer_id = ranked.customer_id
  AND ({', '.join(f't.{c}' for c in RANKS)}) IS DISTINCT FROM ({', '.join(f'ranked.{c}' for c in RANKS)})
RETURNING t.customer_id"""

# Buyers now, and rows refreshed since the breakpoints were last derived.
DRIFT_SQL = f"""SELECT count(*) FILTER (WHERE m.orders_count > 0),
  count(*) FILTER (WHERE m.computed_at > b.computed_at)
FROM {METRICS} m JOIN {BREAKPOINTS} b ON b.shop_id = m.shop_id AND b.position = {PREMIUM_POSITION}
WHERE m.shop_id = %(shop)s"""


def ranking_drift(*, shop_id: int) -> tuple[int, int]:
    """(buyers now, customers refreshed since the breakpoints were last derived); (0, 0) for a shop
    never ranked."""
    with connection.cursor() as cursor:
        cursor.execute(DRIFT_SQL, {"shop": shop_id})
        buyers, changed = cursor.fetchone()
    return buyers, changed


def ranks_stale(*, shop_id: int) -> bool:
    """Whether the shop's buyers should be re-ranked now (see the module's docstring)."""
    buyers, changed = ranking_drift(shop_id=shop_id)
    if not buyers:
        return False
    return buyers < EXACT_BELOW or changed >= RANK_DRIFT * buyers


def rerank(*, shop_id: int, now: dt.datetime) -> list[int]:
    """Derive the shop's buyer breakpoints from its metrics table and rewrite the ranks that moved;
    returns the customers whose ranks changed. Run inside the transaction that holds the shop's
    metrics lock, after the refresh of the customers whose values changed."""
    params = {"shop": shop_id, "now": connection.ops.adapt_datetimefield_value(now)}
    with connection.cursor() as cursor, planner_settings(cursor):   # the rebuild's: sorts of a whole shop
        cursor.execute(BREAKPOINTS_SQL, params)
        cursor.execute(RERANK_SQL, params)
        return [row[0] for row in cursor.fetchall()]
