"""Customers' purchase histories as the models read them, straight from the store copy.

A customer's purchases are the shop-local days on which they placed orders that were not cancelled
(several orders on one day are one purchase, as in Fader & Hardie's own data); each day's value is
its orders' totals net of refunds. For a customer whose first purchase day is d0, watched until the
day `until` falls on: x = purchase days after d0, t_x = days from d0 to their last purchase day,
T = days from d0 to the watching day, m_x = mean value of the purchase days after d0 (0 if none).
Deleted customers and guest orders are left out.

The nightly fit reads the histories now, as they stood at its quality cut, and the purchase days
since the cut in one pass over the shop's orders (shop_histories), straight into numpy arrays.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection, transaction

from segments.engine.planner import planner_settings
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


# _HISTORIES_SQL for `until` and for `cut` at once. A day's value at the cut is its orders' before the
# cut (a day can hold orders on both sides; NULL when it has none before), and "bought by the cut" is a
# first purchase day before the cut's day, as histories(until=cut, first_before=cut) reads them. Every
# column is a non-null float8 (the id an int8; numeric's cast to float8 rounds as float(Decimal) does),
# so the rows arrive in COPY's binary format at a fixed width, read by numpy as they are.
_SHOP_SQL = """
WITH d AS (
  SELECT o.customer_id, (o.created_at AT TIME ZONE %(tz)s)::date AS day, sum(o.total - o.total_refunded) AS value,
         sum(o.total - o.total_refunded) FILTER (WHERE o.created_at < %(cut)s) AS cut_value,
         bool_or(o.created_at >= %(cut)s) AS after_cut
  FROM segments_order o JOIN segments_customer c ON c.id = o.customer_id AND c.deleted_at IS NULL
  WHERE o.shop_id = %(shop)s AND o.cancelled_at IS NULL AND o.customer_id IS NOT NULL AND o.created_at < %(until)s
  GROUP BY 1, 2
), f AS (
  SELECT d.*, min(day) OVER w AS first_day, min(day) FILTER (WHERE cut_value IS NOT NULL) OVER w AS cut_first_day
  FROM d WINDOW w AS (PARTITION BY customer_id)
)
SELECT customer_id, (count(*) - 1)::float8, (max(day) - min(first_day))::float8,
       (%(until_day)s - min(first_day))::float8, COALESCE(avg(value) FILTER (WHERE day > first_day), 0)::float8,
       COALESCE(min(cut_first_day) < %(cut_day)s, false)::int::float8, (count(cut_value) - 1)::float8,
       COALESCE(max(day) FILTER (WHERE cut_value IS NOT NULL) - min(cut_first_day), 0)::float8,
       COALESCE(%(cut_day)s - min(cut_first_day), 0)::float8,
       COALESCE(avg(cut_value) FILTER (WHERE day > cut_first_day), 0)::float8,
       (count(*) FILTER (WHERE after_cut))::float8
FROM f
GROUP BY customer_id
ORDER BY customer_id
"""
_SHOP_COLUMNS = ("x", "t_x", "T", "m_x", "at_cut", "cut_x", "cut_t_x", "cut_T", "cut_m_x", "since_cut")
_COPY_HEADER = 19       # signature, flags and the header extension's length (PostgreSQL's COPY binary format)


@dataclass(frozen=True)
class Histories:
    customer_ids: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m_x: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)


@dataclass(frozen=True)
class ShopHistories:
    """The buyers' histories now; as they stood at the cut, of those who had bought by its day; and
    how many purchase days each of those has had since the cut (in the order of `at_cut`)."""
    now: Histories
    at_cut: Histories
    since_cut: np.ndarray


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


def shop_histories(*, shop: Shop, until: dt.datetime, cut: dt.datetime) -> ShopHistories:
    """histories(until=until) and histories(until=cut, first_before=cut), with each of the latter's
    customers' purchase days in [cut, until), in one pass over the shop's orders instead of three."""
    params = {"shop": shop.pk, "tz": shop.iana_timezone, "until": until, "until_day": _local_day(shop, until),
              "cut": cut, "cut_day": _local_day(shop, cut)}
    with transaction.atomic(), connection.cursor() as cursor, planner_settings(cursor):
        ids, columns = _copied(cursor, _SHOP_SQL, params, _SHOP_COLUMNS)
    now = Histories(ids, columns["x"], columns["t_x"], columns["T"], columns["m_x"])
    at = columns["at_cut"] == 1
    at_cut = Histories(ids[at], *(columns[name][at] for name in ("cut_x", "cut_t_x", "cut_T", "cut_m_x")))
    return ShopHistories(now=now, at_cut=at_cut, since_cut=columns["since_cut"][at])


def _copied(cursor, sql: str, params: dict, names: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The int8 first column and the float8 others of a query without nulls, through COPY's binary
    format: each row a field count, then each field's length and big-endian value."""
    row = np.dtype([("count", ">i2"), ("id_length", ">i4"), ("id", ">i8")]
                   + [field for name in names for field in ((f"{name}_length", ">i4"), (name, ">f8"))])
    data = bytearray()
    with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)", params) as copy:
        for chunk in copy:
            data += chunk
    start = _COPY_HEADER + int.from_bytes(data[_COPY_HEADER - 4:_COPY_HEADER], "big")
    rows = np.frombuffer(memoryview(data)[start:len(data) - 2], dtype=row)      # the trailer: a count of -1
    if (rows["count"] != len(names) + 1).any():
        raise ValueError("unexpected COPY row layout")
    return rows["id"].astype(np.int64), {name: rows[name].astype(float) for name in names}
