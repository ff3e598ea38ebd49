"""Celery entry points for KPI snapshots. Thin: ids in, services out."""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from segments.measurement.models import SegmentKpiSnapshot
from segments.measurement.snapshots import kpi_snapshot_day, kpi_snapshots_backfill
from segments.membership.models import Segment, SegmentStatus
from segments.shops.calendar import shop_today
from segments.shops.models import Shop, ShopStatus
from shopseg.enqueue import enqueue

__all__ = ["kpi_snapshots_sweep_task", "shop_kpi_snapshot_day_task", "segment_kpi_backfill_task"]


@shared_task(acks_late=True)
def shop_kpi_snapshot_day_task(shop_id: int, day: str) -> int | None:
    """One shop's snapshot of a (shop-local) day; an upsert, so a re-run is harmless."""
    shop = Shop.objects.filter(pk=shop_id, status=ShopStatus.INSTALLED).first()
    if shop is None:
        return None
    return kpi_snapshot_day(shop=shop, day=dt.date.fromisoformat(day))


@shared_task
def kpi_snapshots_sweep_task() -> int:
    """Beat, hourly: every installed shop whose local yesterday has no observed snapshot yet gets one
    (so each shop is snapshotted in the first hour after its own midnight, and a missed hour catches up)."""
    now = timezone.now()
    queued = 0
    shops = Shop.objects.filter(status=ShopStatus.INSTALLED, segments__status=SegmentStatus.ACTIVE).distinct()
    for shop in shops:
        yesterday = shop_today(shop, now) - dt.timedelta(days=1)
        if not SegmentKpiSnapshot.objects.filter(shop=shop, day=yesterday, backfilled=False).exists():
            enqueue(shop_kpi_snapshot_day_task, shop.pk, yesterday.isoformat())
            queued += 1
    return queued


@shared_task(acks_late=True)
def segment_kpi_backfill_task(segment_id: int) -> int | None:
    """After a segment's first compute: estimate its past days so its charts are not empty on day one."""
    segment = Segment.objects.filter(pk=segment_id, status=SegmentStatus.ACTIVE).select_related("shop").first()
    if segment is None or segment.computed_version is None:
        return None
    return kpi_snapshots_backfill(segment=segment)
