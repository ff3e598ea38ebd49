"""The raw events' daily partitions: made ahead of the days that need them, and dropped whole once
every shop's retention has passed them. A day nobody made lands in the DEFAULT partition; making its
partition later moves those rows in first, so nothing is lost either way."""
from __future__ import annotations

import datetime as dt
import logging

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from segments.storefront.models import DEFAULT_RETENTION_DAYS, Pixel

log = logging.getLogger(__name__)
TABLE = "segments_storefrontevent"
DAYS_AHEAD = 3


def partition_name(day: dt.date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def _existing() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", [TABLE])
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def partition_create(day: dt.date) -> bool:
    """Make `day`'s partition (False: it was there), moving in what the DEFAULT partition holds of it."""
    name = partition_name(day)
    if name in _existing():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])    # two makers of one day
        if name in _existing():
            return False
        cursor.execute(f'CREATE TABLE "{name}" (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        cursor.execute(f'WITH moved AS (DELETE FROM {TABLE}_default WHERE day = %s RETURNING *) '
                       f'INSERT INTO "{name}" SELECT * FROM moved', [day])
        cursor.execute(f'ALTER TABLE {TABLE} ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)',
                       [day, day + dt.timedelta(days=1)])
    return True


def partitions_ensure(today: dt.date | None = None) -> int:
    """Yesterday's to DAYS_AHEAD days ahead (UTC): events arrive late and clocks are wrong. Today's
    and yesterday's are analyzed too: the rollup reads them by visitor, and without statistics the
    planner scans the whole day instead (40 times slower, BENCHMARKS.md)."""
    today = today or timezone.now().date()
    made = sum(partition_create(today + dt.timedelta(days=offset)) for offset in range(-1, DAYS_AHEAD + 1))
    with connection.cursor() as cursor:
        for day in (today - dt.timedelta(days=1), today):
            cursor.execute(f'ANALYZE "{partition_name(day)}"')
    return made


def events_purge(now: dt.datetime | None = None) -> int:
    """Raw events past each shop's retention go: whole partitions once past the longest retention,
    then each shop's older rows from the partitions still kept. Returns the rows deleted (a dropped
    partition counts its rows)."""
    today = (now or timezone.now()).date()
    longest = Pixel.objects.aggregate(days=Max("retention_days"))["days"] or DEFAULT_RETENTION_DAYS
    removed = 0
    with connection.cursor() as cursor:
        for name in sorted(_existing()):
            if not name.startswith(f"{TABLE}_p"):
                continue
            day = dt.datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").date()
            if day < today - dt.timedelta(days=longest):
                cursor.execute(f'SELECT count(*) FROM "{name}"')
                removed += cursor.fetchone()[0]
                cursor.execute(f'DROP TABLE "{name}"')
        for shop_id, days in Pixel.objects.values_list("shop_id", "retention_days"):
            cursor.execute(f"DELETE FROM {TABLE} WHERE shop_id = %s AND day < %s",
                           [shop_id, today - dt.timedelta(days=days)])
            removed += cursor.rowcount
        # Events of shops without a pixel row (uninstalled and erased) go at the default retention.
        cursor.execute(f"DELETE FROM {TABLE} WHERE day < %s AND shop_id NOT IN (SELECT shop_id FROM segments_pixel)",
                       [today - dt.timedelta(days=DEFAULT_RETENTION_DAYS)])
        removed += cursor.rowcount
    if removed:
        log.info("storefront retention: %d raw events removed", removed)
    return removed
