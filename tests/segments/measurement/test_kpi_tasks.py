"""KPI tasks: a segment's first compute backfills its past days (later computes do not), and the
hourly sweep snapshots each shop's local yesterday once."""
from __future__ import annotations

import datetime as dt

import pytest

from segments.measurement.models import SegmentKpiSnapshot
from segments.measurement.tasks import kpi_snapshots_sweep_task
from segments.membership.definitions import segment_update
from segments.shops.calendar import shop_today
from segments.shops.models import ShopStatus
from tests.segments.measurement.conftest import make_segment

pytestmark = pytest.mark.django_db

BUYERS = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}


def test_first_compute_backfills_and_a_later_compute_does_not(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        segment = make_segment(shop, "Buyers", BUYERS)
    segment.refresh_from_db()
    assert segment.computed_version == 1
    rows = SegmentKpiSnapshot.objects.filter(segment=segment)
    assert rows.count() == 90 and all(r.backfilled for r in rows)
    SegmentKpiSnapshot.objects.filter(segment=segment).delete()
    with django_capture_on_commit_callbacks(execute=True):
        segment_update(segment=segment, rules={"version": 1, "include": {"metric": "orders_count", "op": "gte",
                                                                        "value": 2}})
    segment.refresh_from_db()
    assert segment.computed_version == 2
    assert not SegmentKpiSnapshot.objects.filter(segment=segment).exists()


def test_the_sweep_snapshots_yesterday_once_and_skips_uninstalled_shops(shop, other_shop):
    mine = make_segment(shop, "Buyers", BUYERS)
    theirs = make_segment(other_shop, "Buyers", BUYERS)
    other_shop.status = ShopStatus.UNINSTALLED
    other_shop.save()
    assert kpi_snapshots_sweep_task() == 1
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    assert SegmentKpiSnapshot.objects.filter(segment=mine, day=yesterday, backfilled=False).exists()
    assert not SegmentKpiSnapshot.objects.filter(segment=theirs).exists()
    assert kpi_snapshots_sweep_task() == 0
