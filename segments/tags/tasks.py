"""Celery entry points of tag sync. Thin: ids in, services out; scheduling dedupes runs per shop."""
from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings

from segments.shops.models import Shop, ShopStatus
from segments.tags.drift import shop_tags_check, tag_outbox_purge
from segments.tags.plans import shops_with_due_tags
from segments.tags.schedule import schedule_clear, tags_sync_schedule
from segments.tags.sync import shop_tags_sync
from shopseg.enqueue import enqueue

__all__ = ["shop_tags_check_task", "shop_tags_sync_task", "shops_tags_check_task", "tags_sync_sweep_task"]

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def shop_tags_sync_task(shop_id: int) -> dict | None:
    """One shop's due tag changes to Shopify (and its bulk operations advanced). Safe to re-run:
    rows are marked done only after Shopify confirmed them; a second run at once finds the shop busy."""
    report = None
    try:
        if not Shop.objects.filter(pk=shop_id, status=ShopStatus.INSTALLED).exists():
            return None
        report = shop_tags_sync(shop_id=shop_id)
    finally:
        if report is None or report.stopped != "busy":   # a busy shop's flag belongs to the run in progress
            schedule_clear(shop_id)
    return {"customers": report.customers, "calls": report.calls, "requests": report.requests,
            "results": dict(report.results), "bulk": report.bulk, "stopped": report.stopped}


@shared_task
def tags_sync_sweep_task() -> int:
    """Beat, every SHOPSEG_TAG_SYNC_SECONDS: a run for each installed shop with due changes."""
    shop_ids = shops_with_due_tags()
    for shop_id in shop_ids:
        tags_sync_schedule(shop_id)
    return len(shop_ids)


@shared_task(acks_late=True)
def shop_tags_check_task(shop_id: int) -> int | None:
    shop = Shop.objects.filter(pk=shop_id, status=ShopStatus.INSTALLED).first()
    if shop is None:
        return None
    return shop_tags_check(shop=shop)


@shared_task
def shops_tags_check_task() -> int:
    """Beat, hourly by default: drift and gap checks per installed shop; old outbox rows purged."""
    tag_outbox_purge(older_than=dt.timedelta(days=settings.SHOPSEG_TAG_OUTBOX_RETENTION_DAYS))
    shop_ids = list(Shop.objects.filter(status=ShopStatus.INSTALLED).values_list("pk", flat=True))
    for shop_id in shop_ids:
        enqueue(shop_tags_check_task, shop_id)
    return len(shop_ids)
