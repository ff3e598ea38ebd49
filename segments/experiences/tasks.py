"""Celery entry points of the storefront's and Flow's experiences. Thin: ids in, services out."""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from segments.experiences.flow import flow_outbox_purge, shop_flow_send, shops_with_due_flow_triggers
from segments.experiences.publish import shop_storefront_publish, shops_with_due_storefront

__all__ = ["flow_outbox_purge_task", "flow_triggers_sweep_task", "storefront_publish_sweep_task"]


@shared_task
def flow_triggers_sweep_task() -> int:
    """Beat, every SHOPSEG_FLOW_SECONDS: each installed shop's due Flow triggers sent. Two runs at once
    are safe: each takes the rows the other has not locked."""
    shop_ids = shops_with_due_flow_triggers()
    for shop_id in shop_ids:
        shop_flow_send(shop_id=shop_id)
    return len(shop_ids)


@shared_task
def flow_outbox_purge_task() -> int:
    """Beat, hourly: sent, capped, refused and failed Flow triggers past the outbox retention deleted."""
    return flow_outbox_purge(older_than=dt.timedelta(days=settings.SHOPSEG_TAG_OUTBOX_RETENTION_DAYS))


@shared_task
def storefront_publish_sweep_task() -> int:
    """Beat, every SHOPSEG_FLOW_SECONDS: each shop whose offers or experiences changed written to Shopify.
    Each shop is leased to one run, so overlapping sweeps never write it twice."""
    shop_ids = shops_with_due_storefront()
    for shop_id in shop_ids:
        shop_storefront_publish(shop_id=shop_id)
    return len(shop_ids)
