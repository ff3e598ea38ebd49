"""End to end over real HTTP: devstore's traffic simulator -> signed webhooks -> the app's mirror.

The app runs under live_server, installed into a devstore shop through OAuth, so devstore delivers
to it exactly as Shopify would. After the simulator runs and every delivery is flushed, what the
mirror holds for each order, checkout, cart and customer the traffic touched must equal devstore's
own rows, also with duplicated and reordered deliveries.
"""
import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from segments.mirror.models import Cart, Checkout, Customer, LineItem, Order, Refund
from segments.shops.models import Shop
from tests.conftest import install_live
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db(transaction=True)



def cents(value) -> Decimal:
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


@pytest.fixture
def live_shop(devstore, live_server, settings):
    """A seeded devstore shop with the app installed and subscribed at the live server."""
    domain, _ = install_live(devstore, live_server, settings, customers=300, seed=11)
    yield Shop.objects.get(domain=domain)
    devstore.control("DELETE", "/faults", json={"shop": domain})


def run_traffic(devstore, shop: Shop, *, count: int, seed: int) -> dict:
    actions = devstore.control("POST", f"/shops/{shop.domain}/simulate",
                               json={"count": count, "seed": seed, "rate": 2000})["actions"]
    assert devstore.control("POST", "/webhooks/flush?timeout=240", timeout=300)["idle"]
    retry_until_settled()
    return actions


def retry_until_settled(rounds: int = 20) -> None:
    """What the sweeper does when retries come due (a refund that beat its order, say), without waiting."""
    for _ in range(rounds):
        pending = list(WebhookEvent.objects.filter(status=EventStatus.PENDING).values_list("pk", flat=True))
        if not pending:
            return
        outcomes = [webhook_event_process(event_pk=pk) for pk in pending]
        if "processed" not in outcomes:
            break
    stuck = list(WebhookEvent.objects.filter(status=EventStatus.PENDING).values_list("topic", "last_error"))
    assert stuck == []


def delivered(devstore, shop: Shop) -> dict[str, list[dict]]:
    """Every payload devstore delivered to the app, by topic."""
    rows = devstore.store.conn().execute(
        "SELECT topic, body FROM webhook_deliveries WHERE shop = ? AND status = 'delivered'", (shop.domain,))
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for topic, body in rows:
        by_topic[topic].append(json.loads(bytes(body)))
    return by_topic


def devstore_rows(devstore, sql: str, params) -> list:
    return devstore.store.conn().execute(sql, params).fetchall()


def assert_mirror_equals_devstore(devstore, shop: Shop, *, consent_customers=None) -> dict[str, int]:
    """Compare every resource the deliveries touched; returns how many of each were compared."""
    payloads = delivered(devstore, shop)
    store_shop = shop.domain
    order_ids = {p["id"] for t in ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")
                 for p in payloads.get(t, [])}
    for row in devstore_rows(devstore, f"SELECT * FROM orders WHERE shop = ? AND id IN "
                                       f"({','.join('?' * len(order_ids))})", (store_shop, *order_ids)):
        mirrored = Order.objects.get(shop=shop, shopify_id=row["id"])
        assert mirrored.total == cents(row["total_cents"]), row["id"]
        assert mirrored.total_refunded == cents(row["refunded_cents"]), row["id"]
        assert mirrored.financial_status == row["financial_status"], row["id"]
        assert (mirrored.cancelled_at is None) == (row["cancelled_at"] is None), row["id"]
        assert (mirrored.customer.shopify_id if row["customer_id"] else None) == row["customer_id"], row["id"]
        assert mirrored.device == row["device"], row["id"]
        items = devstore_rows(devstore, "SELECT COUNT(*), SUM(quantity) FROM line_items WHERE order_id = ?",
                              (row["id"],))[0]
        assert (LineItem.objects.filter(order=mirrored).count(),
                sum(LineItem.objects.filter(order=mirrored).values_list("quantity", flat=True))) == tuple(items)
        refunds = devstore_rows(devstore, "SELECT COUNT(*) FROM refunds WHERE order_id = ?", (row["id"],))[0][0]
        assert Refund.objects.filter(order=mirrored).count() == refunds, row["id"]

    tokens = {p["token"] for t in ("checkouts/create", "checkouts/update") for p in payloads.get(t, [])}
    for row in devstore_rows(devstore, f"SELECT * FROM checkouts WHERE shop = ? AND token IN "
                                       f"({','.join('?' * len(tokens))})", (store_shop, *tokens)):
        mirrored = Checkout.objects.get(shop=shop, token=row["token"])
        assert mirrored.total == cents(row["total_cents"]), row["token"]
        assert (mirrored.completed_at is None) == (row["completed_at"] is None), row["token"]
        assert (mirrored.customer.shopify_id if mirrored.customer else None) == row["customer_id"], row["token"]
        assert mirrored.email == (row["email"] or "").lower()
        assert mirrored.line_item_count == len(json.loads(row["line_items"]))

    carts = {p["token"] for t in ("carts/create", "carts/update") for p in payloads.get(t, [])}
    for row in devstore_rows(devstore, f"SELECT * FROM carts WHERE shop = ? AND token IN "
                                       f"({','.join('?' * len(carts))})", (store_shop, *carts)):
        mirrored = Cart.objects.get(shop=shop, token=row["token"])
        assert (mirrored.total, mirrored.line_item_count) == (cents(row["total_cents"]),
                                                              len(json.loads(row["line_items"])))

    customer_ids = {p["id"] for p in payloads.get("customers/update", [])}
    # each consent channel is known from its own topic only
    email_consent = {p["customer_id"] for p in payloads.get("customers_email_marketing_consent/update", [])}
    sms_consent = {p["id"] for p in payloads.get("customers_marketing_consent/update", [])}
    if consent_customers is not None:
        email_consent &= consent_customers
        sms_consent &= consent_customers
    touched = customer_ids | email_consent | sms_consent
    for row in devstore_rows(devstore, f"SELECT * FROM customers WHERE shop = ? AND id IN "
                                       f"({','.join('?' * len(touched))})", (store_shop, *touched)):
        mirrored = Customer.objects.get(shop=shop, shopify_id=row["id"])
        if row["id"] in customer_ids:
            assert (mirrored.email, mirrored.last_name, mirrored.phone) == (
                (row["email"] or "").lower(), row["last_name"] or "", row["phone"] or ""), row["id"]
        if row["id"] in email_consent:
            assert mirrored.email_marketing == row["email_marketing_state"].lower(), row["id"]
        if row["id"] in sms_consent:
            assert mirrored.sms_marketing == row["sms_marketing_state"].lower(), row["id"]
    return {"orders": len(order_ids), "checkouts": len(tokens), "carts": len(carts),
            "customers": len(touched)}


def test_live_traffic_lands_in_the_mirror(devstore, live_shop):
    actions = run_traffic(devstore, live_shop, count=120, seed=5)
    assert actions.get("order_customer") and actions.get("checkout_abandon") and actions.get("customer_edit")
    compared = assert_mirror_equals_devstore(devstore, live_shop)
    assert compared["orders"] >= 30 and compared["checkouts"] >= 30 and compared["customers"] >= 5
    # deliveries were processed as they arrived (on commit), none left failing
    statuses = Counter(WebhookEvent.objects.filter(shop_domain=live_shop.domain).values_list("status", flat=True))
    assert set(statuses) == {EventStatus.PROCESSED}
    # abandoned checkouts stay open; completed ones were closed by their order
    assert Checkout.objects.filter(shop=live_shop, completed_at__isnull=True).exists()
    assert Checkout.objects.filter(shop=live_shop, completed_at__isnull=False).exists()


def test_duplicated_and_reordered_deliveries_end_equal(devstore, live_shop):
    for kind, params in (("duplicate_webhooks", {"rate": 0.5}), ("shuffle_webhooks", {"window": 50})):
        devstore.control("POST", "/faults", json={"shop": live_shop.domain, "kind": kind, "params": params})
    run_traffic(devstore, live_shop, count=150, seed=9)
    payloads = delivered(devstore, live_shop)
    # Consent topics carry no timestamp the mirror could order them by (see the report): compare the
    # customers whose consent changed once, which reordering cannot get wrong.
    changes = Counter([p["customer_id"] for p in payloads.get("customers_email_marketing_consent/update", [])]
                      + [p["id"] for p in payloads.get("customers_marketing_consent/update", [])])
    compared = assert_mirror_equals_devstore(devstore, live_shop,
                                             consent_customers={c for c, n in changes.items() if n == 1})
    assert compared["orders"] >= 30 and compared["checkouts"] >= 30
    assert WebhookEvent.objects.filter(shop_domain=live_shop.domain, status=EventStatus.FAILED).count() == 0
