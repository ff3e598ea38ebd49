"""A shop's consecutive order deliveries in a drain batch are applied as one run, with the outcome of
applying them one by one: a bad delivery fails alone, and where their order decides, one by one."""
import json
import uuid
from pathlib import Path

import pytest

from segments.mirror.models import Customer, Order
from segments.shops.models import Shop
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_drain

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "bench" / "order_sample.json").read_text())


@pytest.fixture
def shop():
    return Shop.objects.create(domain="runs.myshopify.com", access_token="shpat_x", scopes="read_orders")


def order(n: int, **changes) -> dict:
    return {**SAMPLE, "id": 6_300_000_000 + n, "name": f"#R{n}",
            "line_items": [{**item, "id": 63_000_000_000 + n * 10 + k} for k, item in enumerate(SAMPLE["line_items"])],
            **changes}


def record(shop, *bodies, topic="orders/create") -> list[WebhookEvent]:
    return [WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop.domain, topic=topic,
                                        payload=body) for body in bodies]


def test_a_run_applies_every_order_and_marks_each_delivery_once(shop):
    events = record(shop, *[order(n) for n in range(6)])
    assert webhook_events_drain() == 6
    assert Order.objects.filter(shop=shop).count() == 6
    assert Customer.objects.get(shop=shop).dirty_cause == "orders/create"
    assert {(e.status, e.attempts, e.last_error) for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} \
        == {(EventStatus.PROCESSED, 1, "")}


def test_a_bad_delivery_in_a_run_fails_alone(shop):
    good = record(shop, order(1), order(2))
    bad = record(shop, order(3, id=None))       # the parser refuses it
    later = record(shop, order(4))
    assert webhook_events_drain() == 4
    assert set(Order.objects.filter(shop=shop).values_list("shopify_id", flat=True)) == {
        6_300_000_001, 6_300_000_002, 6_300_000_004}
    assert bad[0].pk not in set(WebhookEvent.objects.filter(status=EventStatus.PROCESSED).values_list("pk", flat=True))
    bad = WebhookEvent.objects.get(pk=bad[0].pk)
    assert (bad.status, bad.attempts) == (EventStatus.PENDING, 1) and bad.last_error     # retried later, alone
    assert set(WebhookEvent.objects.filter(pk__in=[e.pk for e in good + later]).values_list("status", flat=True)) \
        == {EventStatus.PROCESSED}


def test_an_order_that_becomes_a_test_order_within_a_run_is_applied_in_delivery_order(shop):
    real, then_test = order(1, updated_at="2026-11-20T10:00:00Z"), order(1, test=True, updated_at="2026-11-20T10:05:00Z")
    record(shop, real, then_test, order(2))
    assert webhook_events_drain() == 3
    assert set(Order.objects.filter(shop=shop).values_list("shopify_id", flat=True)) == {6_300_000_002}


def test_two_versions_of_an_order_within_one_second_keep_the_same_second_rule(shop):
    """Refunded, then (delivered late) the same second's unrefunded version: one by one, the writer
    keeps the refund (ORDER_TIE); a run taking the last delivery would lose it."""
    stamp = "2026-11-20T10:00:00Z"
    refunded = order(1, updated_at=stamp, refunds=[{
        "id": 99, "order_id": 6_300_000_001, "created_at": stamp, "transactions": [
            {"id": 1, "kind": "refund", "status": "success", "amount": "10.00"}], "refund_line_items": []}])
    record(shop, refunded, order(1, updated_at=stamp, refunds=[]))
    assert webhook_events_drain() == 2
    assert Order.objects.get(shop=shop).total_refunded > 0
