"""The mirror's whole life against devstore over real HTTP, as the issue's acceptance asks:
install -> backfill -> live traffic -> a delivery lost -> reconciliation repairs it -> a customer
is redacted and nothing of them remains."""
import time

import pytest
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from segments.mirror.models import BackfillStatus, Checkout, ComplianceRequest, Customer, Order, ShopSync
from segments.mirror.reconcile import shop_reconcile
from tests.segments.mirror.test_backfill import devstore_counts, mirror_counts
from tests.webhooks.test_live_traffic import assert_mirror_equals_devstore, live_shop, retry_until_settled, run_traffic
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["live_shop"]  # the fixture, imported for use here


def flush(devstore) -> None:
    assert devstore.control("POST", "/webhooks/flush?timeout=240", timeout=300)["idle"]
    retry_until_settled()


def wait_for_backfill(devstore, shop, timeout=240) -> ShopSync:
    """The bulk_operations/finish webhooks drive the backfill from stage to stage."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flush(devstore)
        sync = ShopSync.objects.get(shop=shop)
        if sync.backfill_status in (BackfillStatus.DONE, BackfillStatus.FAILED):
            return sync
        time.sleep(0.2)
    raise AssertionError("the backfill did not finish")


def test_install_backfill_traffic_loss_reconcile_redact(devstore, live_shop):
    shop = live_shop

    # backfill: the mirror holds the store's whole history
    assert wait_for_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)

    # live traffic arrives as webhooks
    run_traffic(devstore, shop, count=80, seed=21)
    assert assert_mirror_equals_devstore(devstore, shop)["orders"] > 0
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)

    # deliveries are lost on the way: the mirror misses them ...
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "drop_webhooks", "params": {"rate": 1.0}})
    actions = run_traffic(devstore, shop, count=40, seed=22)
    assert sum(actions.values()) == 40
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "drop_webhooks", "params": None})
    assert mirror_counts(shop) != devstore_counts(devstore, shop.domain)
    # ... until reconciliation repairs it
    assert shop_reconcile(shop_id=shop.pk) > 0
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    assert shop_reconcile(shop_id=shop.pk) == 0

    # a customer asks to be forgotten
    customer = (Customer.objects.filter(shop=shop, orders__isnull=False).exclude(email="")
                .order_by("shopify_id").first())
    email, shopify_id = customer.email, customer.shopify_id
    order_ids = list(Order.objects.filter(customer=customer).values_list("shopify_id", flat=True))
    devstore.control("POST", f"/shops/{shop.domain}/compliance/customers_redact",
                     json={"customer_id": shopify_id, "orders_to_redact": order_ids})
    flush(devstore)
    assert ComplianceRequest.objects.filter(shop_domain=shop.domain, kind="customers/redact",
                                            customer_shopify_id=shopify_id, completed_at__isnull=False).exists()
    assert not Customer.objects.filter(shop=shop, shopify_id=shopify_id).exists()
    assert not Order.objects.filter(Q(email=email) | Q(customer__shopify_id=shopify_id)).exists()
    assert not Checkout.objects.filter(Q(email=email) | Q(customer__shopify_id=shopify_id)).exists()
    payloads = WebhookEvent.objects.annotate(text=Cast("payload", TextField()))
    assert not payloads.filter(text__contains=email).exists()
    assert not payloads.exclude(topic="customers/redact").filter(text__contains=str(shopify_id)).exists()
