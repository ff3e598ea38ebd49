"""Celery entry points that keep segment membership current. Thin: ids in, services out."""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from segments.engine.triggers import Trigger
from segments.membership.clock import segments_time_sweep
from segments.membership.models import Segment, SegmentStatus
from segments.membership.recompute import Superseded, segments_recompute
from segments.membership.visitors import BATCH as VISITOR_BATCH
from segments.membership.visitors import dirty_visitors_refresh, visitor_segments_recompute
from segments.shops.models import Shop, ShopStatus
from shopseg.batches import drain_batches
from shopseg.enqueue import enqueue, enqueue_on_commit

__all__ = ["dirty_visitors_refresh_task", "segment_recompute_task", "segments_minute_task",
           "shop_segments_recompute_task"]

STUCK_AFTER = dt.timedelta(minutes=5)   # a requested recompute not done by then is requested again
REFRESH_BATCHES_PER_RUN = 20


@shared_task(acks_late=True)
def segment_recompute_task(segment_id: int, version: int, cause: str = "") -> str:
    """One segment (and its exclusive group) for every customer, after an edit or when a month or
    holiday window moved. A newer version supersedes this one: it stops without writing."""
    segment = Segment.objects.filter(pk=segment_id, shop__status=ShopStatus.INSTALLED).select_related("shop").first()
    if segment is None or segment.current_version != version:
        return "superseded"
    trigger = Trigger.TIME if cause == "time" else Trigger.DEFINITION
    first_compute = segment.computed_version is None
    try:
        segments_recompute(shop=segment.shop, segments=[segment], trigger=trigger,
                           cause=cause or f"version {version}", expect_versions={segment.pk: version})
    except Superseded:
        return "superseded"
    visitor_segments_recompute(shop=segment.shop, segments=[segment])
    if first_compute:   # measurement (a domain above, so by name): past days' KPIs, so charts start filled
        enqueue_on_commit("segments.measurement.tasks.segment_kpi_backfill_task", segment.pk)
    return "done"


@shared_task(acks_late=True)
def shop_segments_recompute_task(shop_id: int, trigger: str = Trigger.NIGHTLY, cause: str = "") -> int | None:
    """Every active segment of a shop for every customer: after a backfill and nightly."""
    shop = Shop.objects.filter(pk=shop_id, status=ShopStatus.INSTALLED).first()
    if shop is None:
        return None
    entered = segments_recompute(shop=shop, trigger=trigger, cause=cause).entered
    visitor_segments_recompute(shop=shop)
    return entered


@shared_task(acks_late=True)
def dirty_visitors_refresh_task() -> int:
    """Every 2 s (beat): the segments of anonymous visitors the rollup or the time sweep marked, a batch
    at a time (each batch one transaction: a killed worker leaves its marks for the next run)."""
    return drain_batches(dirty_visitors_refresh, batch=VISITOR_BATCH, runs=REFRESH_BATCHES_PER_RUN)


@shared_task
def segments_minute_task() -> dict:
    """Beat, every minute: the time sweep of every installed shop with segments, and recomputes
    requested long ago and never finished (a lost task or a crashed worker) requested again."""
    swept = 0
    shops = Shop.objects.filter(status=ShopStatus.INSTALLED, segments__status=SegmentStatus.ACTIVE).distinct()
    for shop in shops:
        swept += segments_time_sweep(shop=shop)["customers"]
    now = timezone.now()
    stuck = [s for s in Segment.objects.filter(status=SegmentStatus.ACTIVE, shop__status=ShopStatus.INSTALLED,
                                               compute_requested_at__lt=now - STUCK_AFTER)
             if s.computing]
    for segment in stuck:
        Segment.objects.filter(pk=segment.pk).update(compute_requested_at=now)
        enqueue(segment_recompute_task, segment.pk, segment.current_version)
    return {"customers": swept, "requeued": len(stuck)}
