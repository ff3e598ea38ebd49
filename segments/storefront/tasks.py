"""Celery entry points for the storefront: the pixel activated per shop, visitor-days rolled up,
daily partitions made ahead."""
from __future__ import annotations

from celery import shared_task

from segments.storefront.partitions import partitions_ensure
from segments.storefront.pixel import pixel_activate
from segments.storefront.rollup import BATCH, visitor_days_rollup
from shopseg.batches import drain_batches

ROLLUP_BATCHES_PER_RUN = 20


@shared_task(acks_late=True)
def visitor_days_rollup_task() -> int:
    """Every 2 s (beat): the visitor-days behind their raw events, a batch at a time. Taking a batch and
    redoing it is one transaction, so a killed worker leaves the batch for the next run."""
    return drain_batches(visitor_days_rollup, batch=BATCH, runs=ROLLUP_BATCHES_PER_RUN)


@shared_task(acks_late=True)
def storefront_partitions_task() -> int:
    """Hourly (beat): the raw events' partitions from yesterday to three days ahead."""
    return partitions_ensure()


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=5, retry_jitter=True, max_retries=8)
def pixel_activate_task(shop_id: int) -> str:
    """After an install: the shop's pixel row and key, and the pixel activated in Shopify with them."""
    return pixel_activate(shop_id=shop_id)
