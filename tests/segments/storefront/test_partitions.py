"""The raw events' daily partitions: made ahead, a day's events moved in from the DEFAULT partition
when its partition comes late (none lost), and dropped or thinned past each shop's retention."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from segments.shops.models import Shop
from segments.storefront.models import Pixel
from segments.storefront.partitions import events_purge, partition_create, partition_name, partitions_ensure
from tests.segments.storefront.conftest import batch, event, pixel, post, raw_events  # noqa: F401

pytestmark = pytest.mark.django_db


def rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return cursor.fetchone()[0]


def insert(shop_id: int, day: dt.date, event_id: str) -> None:
    moment = dt.datetime.combine(day, dt.time(12), dt.timezone.utc)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO segments_storefrontevent (shop_id, day, event_id, visitor_id, name, occurred_at, "
                       "received_at, seq, url, referrer, data) VALUES (%s, %s, %s, 1, 'page_viewed', %s, %s, 0, "
                       "'https://x/', '', '{}')", [shop_id, day, event_id, moment, moment])


def analyzed(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples >= 0 FROM pg_class WHERE relname = %s", [table])   # -1: never analyzed
        return cursor.fetchone()[0]


def test_partitions_are_made_ahead_once_and_the_days_being_written_are_analyzed():
    today = timezone.now().date()
    assert partitions_ensure(today) == 5
    assert partitions_ensure(today) == 0
    for offset in range(-1, 4):
        assert rows_in(partition_name(today + dt.timedelta(days=offset))) == 0
    assert analyzed(partition_name(today)) and analyzed(partition_name(today - dt.timedelta(days=1)))
    assert not analyzed(partition_name(today + dt.timedelta(days=2)))


def test_a_late_partition_takes_in_what_the_default_held_and_loses_nothing(client, pixel):
    assert post(client, batch(pixel, [event(seq=i) for i in range(3)])).status_code == 202
    assert rows_in("segments_storefrontevent_default") == 3
    days = {(timezone.now() - dt.timedelta(minutes=1)).date()}      # the events' UTC day
    for day in days:
        assert partition_create(day) is True
    assert rows_in("segments_storefrontevent_default") == 0
    assert len(raw_events()) == 3
    assert sum(rows_in(partition_name(day)) for day in days) == 3


def test_retention_drops_old_days_and_each_shops_older_rows(pixel):
    today = timezone.now().date()
    keeps_long = Shop.objects.create(domain="long.myshopify.com")
    Pixel.objects.create(shop=keeps_long, retention_days=200)
    Pixel.objects.filter(pk=pixel.pk).update(retention_days=10)
    ancient, old, recent = today - dt.timedelta(days=300), today - dt.timedelta(days=30), today - dt.timedelta(days=2)
    for day in (ancient, old, recent):
        partition_create(day)
        insert(pixel.shop_id, day, f"a-{day}")
        insert(keeps_long.pk, day, f"b-{day}")
    assert events_purge() == 3       # the ancient day's two rows, and the short-retention shop's old row
    assert partition_name(ancient) not in {r[0] for r in _partitions()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_id FROM segments_storefrontevent ORDER BY event_id")
        assert [r[0] for r in cursor.fetchall()] == [f"a-{recent}", f"b-{old}", f"b-{recent}"]


def _partitions():
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid")
        return cursor.fetchall()
