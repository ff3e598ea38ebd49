"""Celery entry points for shops. Thin: reload by id, check it still applies, call a service."""
from __future__ import annotations

from celery import shared_task

from segments.shops.install import shop_post_install
from segments.shops.models import Shop, ShopStatus
from segments.shops.subscriptions import webhook_subscriptions_reconcile
from segments.shops.tokens import ShopUnavailable
from shopseg.enqueue import enqueue
from shopseg.retries import task_retry
from shopseg.shopify.errors import ShopifyTransientError

__all__ = ["shop_post_install_task", "shop_webhooks_reconcile_task", "shops_setup_sweep_task"]


def _shop_call(task, shop_id: int, service) -> None:
    """Run `service(shop_id=…)` for an active shop; Shopify's transient errors retry the task."""
    shop = Shop.objects.filter(pk=shop_id).first()
    if shop is None or not shop.is_active:
        return
    try:
        service(shop_id=shop_id)
    except ShopUnavailable:
        return
    except ShopifyTransientError as exc:
        raise task_retry(task, exc, base=1.0) from None


@shared_task(bind=True, max_retries=8, acks_late=True)
def shop_post_install_task(self, shop_id: int) -> None:
    _shop_call(self, shop_id, shop_post_install)


@shared_task(bind=True, max_retries=8, acks_late=True)
def shop_webhooks_reconcile_task(self, shop_id: int) -> None:
    """After the shop's scopes changed (app/scopes_update): subscribe to what they now allow."""
    _shop_call(self, shop_id, webhook_subscriptions_reconcile)


@shared_task
def shops_setup_sweep_task() -> int:
    """Finish set-up for installed shops whose post-install task never reached a worker."""

    pending = list(Shop.objects.filter(status=ShopStatus.INSTALLED, shopify_gid="").values_list("pk", flat=True)[:100])
    for pk in pending:
        enqueue(shop_post_install_task, pk)
    return len(pending)
