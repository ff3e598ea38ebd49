"""Celery entry points for history backfill and reconciliation. Thin: reload by id, check, call a service."""
from __future__ import annotations

from celery import shared_task

from segments.mirror.backfill import backfill_advance, backfill_start, backfills_due
from segments.mirror.models import BackfillStatus, ShopSync
from segments.mirror.reconcile import shop_reconcile, shops_to_reconcile
from segments.shops.models import Shop
from segments.shops.tokens import ShopUnavailable
from shopseg.enqueue import enqueue
from shopseg.retries import task_retry
from shopseg.shopify.errors import ShopifyTransientError


def _active(shop_id: int) -> bool:
    shop = Shop.objects.filter(pk=shop_id).first()
    return shop is not None and shop.is_active


@shared_task(bind=True, max_retries=8, acks_late=True)
def backfill_start_task(self, shop_id: int) -> None:
    if not _active(shop_id):
        return
    try:
        backfill_start(shop_id=shop_id)
    except ShopUnavailable:
        return
    except ShopifyTransientError as exc:
        raise task_retry(self, exc) from None


@shared_task(bind=True, max_retries=8, acks_late=True)
def backfill_advance_task(self, shop_id: int) -> str | None:
    if not _active(shop_id):
        return None
    try:
        return backfill_advance(shop_id=shop_id)
    except ShopUnavailable:
        return None
    except ShopifyTransientError as exc:
        raise task_retry(self, exc) from None


@shared_task
def backfills_resume_task() -> int:
    """Beat, every 2 minutes: poll running exports (a lost webhook costs at most this), take over quiet loads."""
    unstarted, stalled = backfills_due()
    for shop_id in unstarted:
        enqueue(backfill_start_task, shop_id)
    for shop_id in stalled:
        enqueue(backfill_advance_task, shop_id)
    return len(unstarted) + len(stalled)


@shared_task(bind=True, max_retries=5, acks_late=True)
def shop_reconcile_task(self, shop_id: int) -> int | None:
    if not _active(shop_id) or not ShopSync.objects.filter(shop_id=shop_id,
                                                           backfill_status=BackfillStatus.DONE).exists():
        return None
    try:
        return shop_reconcile(shop_id=shop_id)
    except ShopUnavailable:
        return None
    except ShopifyTransientError as exc:
        raise task_retry(self, exc) from None


@shared_task
def shops_reconcile_task() -> int:
    """Beat: one reconciliation per installed shop whose backfill is done."""
    shop_ids = shops_to_reconcile()
    for shop_id in shop_ids:
        enqueue(shop_reconcile_task, shop_id)
    return len(shop_ids)


__all__ = ["backfill_advance_task", "backfill_start_task", "backfills_resume_task", "shop_reconcile_task",
           "shops_reconcile_task"]
