"""Drain lanes: each delivery is keyed by the customer its body names, and each drain applies only
its lane, so concurrent drains never share a customer and all of them together apply everything."""
import json
import threading
import uuid
from pathlib import Path

import pytest
from django.db import connections

from segments.mirror.models import Customer, Order
from segments.shops.models import Shop
from tests.webhooks.test_receive import post
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import Lane, webhook_events_drain, webhook_events_pending_due

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "bench" / "order_sample.json").read_text())


def recorded(client, settings, topic, payload, shop="lanes.myshopify.com"):
    webhook_id = str(uuid.uuid4())
    assert post(client, settings, topic, shop, payload, webhook_id=webhook_id).status_code == 200
    return WebhookEvent.objects.get(webhook_id=webhook_id)


@pytest.mark.django_db
@pytest.mark.parametrize("topic,payload,key", [
    ("orders/create", {"id": 1, "customer": {"id": 7001}}, 7001),
    ("checkouts/update", {"token": "t", "customer": {"id": "7002"}}, 7002),
    ("customers/update", {"id": 7003, "email": "a@example.com"}, 7003),
    ("customers_email_marketing_consent/update", {"customer_id": 7004}, 7004),
    ("customer.tags_added", {"customerId": "gid://shopify/Customer/7005", "tags": ["x"]}, 7005),
    ("customers/redact", {"customer": {"id": 7006}, "orders_to_redact": []}, 7006),
    ("orders/create", {"id": 1, "customer": None}, None),          # a guest's order
    ("products/update", {"id": 7007}, None),                       # not a customer's id
    ("orders/create", {"id": 1, "customer": {"id": "not-a-number"}}, None),
    ("orders/create", {"id": 1, "customer": {"id": 10 ** 30}}, None),   # beyond bigint: no key, still recorded
])
def test_the_recording_keys_each_delivery_by_the_customer_its_body_names(client, settings, topic, payload, key):
    assert recorded(client, settings, topic, payload).customer_key == key


@pytest.mark.django_db
def test_a_drain_applies_its_lane_only_and_the_lanes_together_apply_everything(settings):
    shop = Shop.objects.create(domain="lanes.myshopify.com", access_token="shpat_x", scopes="read_orders")
    for n, customer in enumerate([10, 11, 12, 13, None]):
        body = {**SAMPLE, "id": 6_100_000_000 + n, "customer": {**SAMPLE["customer"], "id": customer}
                if customer else None, "line_items": [{**i, "id": 61_000_000_000 + n * 10 + k}
                                                      for k, i in enumerate(SAMPLE["line_items"])]}
        WebhookEvent.objects.create(webhook_id=f"l{n}", shop_domain=shop.domain, topic="orders/create",
                                    payload=body, customer_key=customer)

    assert webhook_events_drain(lane=Lane(number=1, of=2)) == 2      # customers 11 and 13
    assert set(Customer.objects.filter(shop=shop).values_list("shopify_id", flat=True)) == {11, 13}
    assert not webhook_events_pending_due(Lane(number=1, of=2))
    assert webhook_events_pending_due(Lane(number=0, of=2))
    assert webhook_events_drain(lane=Lane(number=0, of=2)) == 3      # 10, 12 and the guest
    assert Order.objects.filter(shop=shop).count() == 5
    assert not WebhookEvent.objects.filter(status=EventStatus.PENDING).exists()


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_share_the_work_without_waiting_on_each_other(settings):
    """Two drains in their own connections over one shop's orders for ten customers: everything is
    applied once, and each drain applied only its own customers' orders."""
    shop = Shop.objects.create(domain="lanes2.myshopify.com", access_token="shpat_x", scopes="read_orders")
    events = []
    for n in range(200):
        customer = 20 + n % 10
        body = {**SAMPLE, "id": 6_200_000_000 + n, "customer": {**SAMPLE["customer"], "id": customer},
                "line_items": [{**i, "id": 62_000_000_000 + n * 10 + k} for k, i in enumerate(SAMPLE["line_items"])]}
        events.append(WebhookEvent(webhook_id=f"m{n}", shop_domain=shop.domain, topic="orders/create",
                                   payload=body, customer_key=customer))
    WebhookEvent.objects.bulk_create(events)
    done: dict[int, int] = {}

    def drain(number: int) -> None:
        try:
            done[number] = webhook_events_drain(batch=10, lane=Lane(number=number, of=2))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert done == {0: 100, 1: 100}
    assert Order.objects.filter(shop=shop).count() == 200
    assert set(WebhookEvent.objects.values_list("status", "attempts").distinct()) == {(EventStatus.PROCESSED, 1)}
