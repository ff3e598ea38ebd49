"""Customers' purchase histories as the models read them, straight from the store copy.

A customer's purchases are the shop-local days on which they placed orders that were not cancelled
(several orders on one day are one purchase, as in Fader & Hardie's own data); each day's value is
its orders' totals net of refunds. For a customer whose first purchase day is d0, watched until the
day `until` falls on: x = purchase days after d0, t_x = days from d0 to their last purchase day,
T = days from d0 to the watching day, m_x = mean value of the purchase days after d0 (0 if none).
Deleted customers and guest orders are left out.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection

from segments.shops.models import Shop

_HISTORIES_SQL = """
WITH d AS (
  SELECT o.customer_id, (o.created_at AT TIME ZONE %(tz)s)::date AS day, sum(o.total - o.total_refunded) AS value
  FROM segments_order o JOIN segments_customer c ON c.id = o.customer_id AND c.deleted_at IS NULL
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL AND o.created_at < %(until)s
    {only}
  GROUP BY 1, 2
), f AS (SELECT customer_id, min(day) AS first_day FROM d GROUP BY 1)
SELECT d.customer_id, count(*) - 1, max(d.day) - f.first_day, %(until_day)s - f.first_day,
       COALESCE(avg(d.value) FILTER (WHERE d.day > f.first_day), 0)
FROM d JOIN f USING (customer_id)
{since}
GROUP BY d.customer_id, f.first_day
ORDER BY d.customer_id
"""


@dataclass(frozen=True)
class Histories:
    customer_ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m_x: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)


def _local_day(shop: Shop, at: dt.datetime) -> dt.date:
    return at.astimezone(ZoneInfo(shop.iana_timezone)).date()


def histories(*, shop: Shop, until: dt.datetime, customer_ids: list[int] | None = None,
              first_before: dt.datetime | None = None) -> Histories:
    """The histories of the shop's buyers (or of `customer_ids`) from their orders before `until`;
    with `first_before`, only of customers whose first purchase day is before that instant's day."""
    params = {"shop": shop.pk, "tz": shop.iana_timezone, "until": until, "until_day": _local_day(shop, until)}
    only = ""
    if customer_ids is not None:
        only, params["ids"] = "AND o.customer_id = ANY(%(ids)s)", list(customer_ids)
    since = ""
    if first_before is not None:
        since, params["first_before"] = "WHERE f.first_day < %(first_before)s", _local_day(shop, first_before)
    with connection.cursor() as cursor:
        cursor.execute(_HISTORIES_SQL.format(only=only, since=since), params)
        rows = cursor.fetchall()
    if not rows:
        empty = np.zeros(0)
        return Histories(np.zeros(0, dtype=np.int64), empty, empty, empty, empty)
    ids, x, t_x, T, m_x = zip(*rows)
    return Histories(np.array(ids, dtype=np.int64), np.array(x, dtype=float), np.array(t_x, dtype=float),
                     np.array(T, dtype=float), np.array([float(v) for v in m_x]))


def purchase_days_between(*, shop: Shop, start: dt.datetime, end: dt.datetime, customer_ids: np.ndarray) -> np.ndarray:
    """Each customer's purchase days in [start, end), in the order of `customer_ids` (one grouped pass
    over the period's orders, matched here: an id list of a whole shop would be slower in SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.customer_id, count(DISTINCT (o.created_at AT TIME ZONE %(tz)s)::date) FROM segments_order o "
            "WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL "
            "AND o.created_at >= %(start)s AND o.created_at < %(end)s GROUP BY 1",
            {"tz": shop.iana_timezone, "shop": shop.pk, "start": start, "end": end})
        found = dict(cursor.fetchall())
    return np.array([found.get(int(pk), 0) for pk in customer_ids.tolist()], dtype=float)
