"""Celery entry points for privacy compliance and data retention."""
from __future__ import annotations

from celery import shared_task

from segments.privacy.compliance import INACTIVE_CUSTOMERS_PER_RUN, retention_purge, shop_inactive_customers_anonymise
from segments.shops.models import Shop
from shopseg.enqueue import enqueue


@shared_task(acks_late=True)
def retention_purge_task() -> int:
    """Hourly (beat): every registered retention purge (raw webhook payloads past their shop's
    retention, ...). Re-running is harmless."""
    return retention_purge()


@shared_task
def inactive_customers_sweep_task() -> int:
    """Hourly (beat): a run of the inactive-customer retention for every shop that has it on."""
    shop_ids = list(Shop.objects.exclude(inactive_customer_days=0).values_list("pk", flat=True))
    for shop_id in shop_ids:
        enqueue(shop_inactive_customers_anonymise_task, shop_id)
    return len(shop_ids)


@shared_task(acks_late=True)
def shop_inactive_customers_anonymise_task(shop_id: int) -> int:
    """One batch of a shop's inactive customers anonymised; a full batch queues the next one.
    Re-running is harmless: an anonymised customer is no longer a candidate."""
    shop = Shop.objects.filter(pk=shop_id).first()
    if shop is None:
        return 0
    done = shop_inactive_customers_anonymise(shop=shop)
    if done >= INACTIVE_CUSTOMERS_PER_RUN:
        enqueue(shop_inactive_customers_anonymise_task, shop_id)
    return done


__all__ = ["retention_purge_task", "inactive_customers_sweep_task", "shop_inactive_customers_anonymise_task"]
