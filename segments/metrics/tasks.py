"""Celery entry points that keep the per-customer metrics table current. Thin: ids in, services out."""
from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from segments.engine.triggers import Trigger
from segments.membership.recompute import segments_recompute
from segments.membership.visitors import visitor_segments_recompute
from segments.metrics.refresh import DIRTY_MARGIN, customer_metrics_rebuild, dirty_marks_clear, dirty_shops_refresh
from segments.metrics.schedule import shops_due_for_nightly
from segments.predictions.service import shop_predictions_fit
from segments.shops.models import Shop, ShopStatus
from shopseg.enqueue import enqueue

__all__ = ["customer_metrics_rebuild_task", "metrics_dirty_refresh_task", "shops_metrics_rebuild_task"]


# A rebuild is one transaction and idempotent: one that a transient database error (a deadlock with
# another writer, a lost connection) rolled back is run again, not left for the nightly one, since
# until it succeeds the shop's ranks describe whatever it held before. Failures reach the worker's log.
@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=2, retry_backoff_max=60,
             retry_jitter=True, max_retries=8)
def customer_metrics_rebuild_task(shop_id: int, trigger: str = Trigger.NIGHTLY, cause: str = "") -> int | None:
    """A whole shop: after its backfill, and nightly (re-ranks what incremental refreshes ranked, refits
    the shop's prediction models and rescores every buyer); then every segment of the shop is
    recomputed over the fresh table."""
    shop = Shop.objects.filter(pk=shop_id, status=ShopStatus.INSTALLED).first()
    if shop is None:
        return None
    started = timezone.now()
    written = customer_metrics_rebuild(shop=shop, now=started)
    shop_predictions_fit(shop=shop, now=started)
    segments_recompute(shop=shop, trigger=trigger, cause=cause)
    visitor_segments_recompute(shop=shop)
    # The marks this covered need no incremental pass (after a backfill: every customer's).
    dirty_marks_clear(shop=shop, before=started - DIRTY_MARGIN)
    return written


@shared_task
def shops_metrics_rebuild_task() -> int:
    """Beat, hourly: the nightly rebuild of every installed shop whose history is in and whose
    recompute hour (the merchant's setting, in the shop's time zone) has just begun."""
    shop_ids = shops_due_for_nightly(now=timezone.now())
    for shop_id in shop_ids:
        enqueue(customer_metrics_rebuild_task, shop_id)
    return len(shop_ids)


@shared_task(acks_late=True)
def metrics_dirty_refresh_task() -> int:
    """Beat, every second: refresh the metrics and memberships of the customers whose behaviour
    changed, shops in turns. A burst of events for one customer is one dirty mark, so it costs one
    recompute."""
    return dirty_shops_refresh()
