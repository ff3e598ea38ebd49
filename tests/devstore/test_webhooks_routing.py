"""devstore's webhooks: which topics go to which app (scopes, uninstalls, compliance), the chaos faults
(dropped, duplicated, shuffled), the delivery list, and waiting for idle."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

from devstore import compliance_mutations, mutations, oauth, topics
from devstore.state import iso, utcnow
from devstore.webhook_sender import verify
from tests.devstore.test_webhooks import (  # noqa: F401 - fixtures
    SHOP, install, make_sender, product, receiver, rows, sender, subscriptions,
)


# -- who receives what ---------------------------------------------------------------------------
def test_topics_need_their_scope(store, sender, receiver):
    install(store, receiver.url, api_key="customers-only", scopes="read_customers", path="/a",
            subscribe=("CUSTOMERS_CREATE", "ORDERS_CREATE", "CHECKOUTS_CREATE", "PRODUCTS_CREATE"))
    install(store, receiver.url, api_key="writer", scopes="write_orders,write_customers", path="/b",
            subscribe=("ORDERS_CREATE", "CHECKOUTS_CREATE"))
    variant = product(store)
    customer_id = mutations.customer_create(store, SHOP, email="c@example.com")
    mutations.checkout_create(store, SHOP, line_items=[{"variant_id": variant}], customer_id=customer_id)
    mutations.order_create(store, SHOP, line_items=[{"variant_id": variant}], customer_id=customer_id)

    assert [r["topic"] for r in rows(store, api_key="customers-only")] == ["customers/create"]
    assert [r["topic"] for r in rows(store, api_key="writer")] == ["checkouts/create", "orders/create"]


def test_an_uninstalled_app_receives_nothing(store, sender, receiver):
    install(store, receiver.url, uninstalled_at=iso(utcnow()))
    mutations.customer_create(store, SHOP, email="c@example.com")
    assert rows(store) == []


def test_app_uninstalled_is_delivered_then_the_apps_subscriptions_are_gone(store, sender, receiver):
    install(store, receiver.url, subscribe=("APP_UNINSTALLED", "CUSTOMERS_CREATE"), path="/gone")
    install(store, receiver.url, api_key="app-2", subscribe=("APP_UNINSTALLED",), path="/stays")

    assert oauth.uninstall(store, SHOP, "app-1")
    assert subscriptions(store, "app-1") == []
    assert len(subscriptions(store, "app-2")) == 1
    sender.deliver_due()
    [request] = receiver.on("/gone")
    assert request["headers"]["X-Shopify-Topic"] == "app/uninstalled"
    assert verify(request["body"], request["headers"]["X-Shopify-Hmac-Sha256"], ["secret-1"])
    body = json.loads(request["body"])
    assert body["id"] == store.shop(SHOP)["id"] and body["myshopify_domain"] == SHOP
    assert receiver.on("/stays") == []

    mutations.customer_create(store, SHOP, email="after@example.com")
    assert [r["topic"] for r in rows(store)] == ["app/uninstalled"]


def test_compliance_topics_go_to_the_compliance_uri_of_installed_and_recently_uninstalled_apps(
        store, sender, receiver):
    long_ago = iso(utcnow() - dt.timedelta(days=90))
    recently = iso(utcnow() - dt.timedelta(days=2))
    install(store, receiver.url + "/installed", api_key="installed", subscribe=())
    install(store, receiver.url + "/recent", api_key="recent", subscribe=(), uninstalled_at=recently)
    install(store, receiver.url + "/old", api_key="old", subscribe=(), uninstalled_at=long_ago)
    customer_id = mutations.customer_create(store, SHOP, email="gdpr@example.com", phone="+15550001")

    compliance_mutations.customers_data_request(store, SHOP, customer_id, [])
    compliance_mutations.customers_redact(store, SHOP, customer_id)
    compliance_mutations.shop_redact(store, SHOP)
    sender.deliver_due()

    for prefix in ("/installed", "/recent"):
        got = receiver.on(prefix + topics.COMPLIANCE_PATH)
        assert [r["headers"]["X-Shopify-Topic"] for r in got] == [
            "customers/data_request", "customers/redact", "shop/redact"]
        assert all(verify(r["body"], r["headers"]["X-Shopify-Hmac-Sha256"], ["secret-1"]) for r in got)
        data_request = json.loads(got[0]["body"])
        assert data_request["customer"] == {"id": customer_id, "email": "gdpr@example.com", "phone": "+15550001"}
        assert data_request["shop_domain"] == SHOP
    assert receiver.on("/old" + topics.COMPLIANCE_PATH) == []
    assert {r["subscription_id"] for r in rows(store)} == {None}


# -- fault injection -----------------------------------------------------------------------------
def test_dropped_deliveries_are_recorded_but_never_sent(store, sender, receiver):
    install(store, receiver.url)
    store.fault_set(SHOP, "drop_webhooks", {"rate": 1.0})
    mutations.customer_create(store, SHOP, email="lost@example.com")

    assert sender.deliver_due() == 0
    assert [r["status"] for r in rows(store)] == ["dropped"]
    assert receiver.requests == []


def test_duplicated_deliveries_repeat_the_same_webhook(store, sender, receiver):
    install(store, receiver.url)
    store.fault_set(SHOP, "duplicate_webhooks", {"rate": 1.0})
    mutations.customer_create(store, SHOP, email="twice@example.com")

    sender.deliver_due()
    first, second = receiver.on("/webhooks")
    assert first["headers"]["X-Shopify-Webhook-Id"] == second["headers"]["X-Shopify-Webhook-Id"]
    assert first["body"] == second["body"]
    assert rows(store)[0]["status"] == "delivered"


def test_shuffled_deliveries_arrive_out_of_order(store, sender, receiver):
    install(store, receiver.url)
    store.fault_set(SHOP, "shuffle_webhooks", {"window": 12})
    for n in range(12):
        mutations.customer_create(store, SHOP, email=f"c{n}@example.com")

    sender.deliver_due()
    enqueued = [r["webhook_id"] for r in rows(store)]
    received = [r["headers"]["X-Shopify-Webhook-Id"] for r in receiver.on("/webhooks")]
    assert sorted(received) == sorted(enqueued)
    assert received != enqueued


# -- control API helpers -------------------------------------------------------------------------
def test_deliveries_lists_newest_first_with_filters(store, sender, receiver):
    install(store, receiver.url, subscribe=("CUSTOMERS_CREATE", "CUSTOMERS_UPDATE"))
    customer_id = mutations.customer_create(store, SHOP, email="a@example.com")
    mutations.customer_update(store, SHOP, customer_id, first_name="Bea")

    listed = sender.deliveries(SHOP)
    assert [d["topic"] for d in listed] == ["customers/update", "customers/create"]
    assert listed[0]["payload"]["first_name"] == "Bea"
    json.dumps(listed)  # served as JSON by the control API
    assert [d["topic"] for d in sender.deliveries(SHOP, topic="customers/create")] == ["customers/create"]
    assert sender.deliveries(SHOP, status="delivered") == []
    assert len(sender.deliveries(SHOP, limit=1)) == 1
    assert sender.deliveries("other.myshopify.com") == []


def test_wait_idle_reports_whether_anything_is_still_due(store, devstore_config, receiver):
    install(store, receiver.url)
    sender = make_sender(store, dataclasses.replace(devstore_config, time_scale=1.0))
    try:
        assert sender.wait_idle(0.01)
        mutations.customer_create(store, SHOP, email="a@example.com")
        assert not sender.wait_idle(0.05)  # nobody is delivering
        sender.start()
        assert sender.wait_idle(15)
        assert rows(store)[0]["status"] == "delivered"

        receiver.scripts["/webhooks"] = [500]
        mutations.customer_create(store, SHOP, email="b@example.com")
        receiver.wait_for("/webhooks", 2)
        assert sender.wait_idle(15)  # the retry is a minute away: not worth waiting for
        assert rows(store)[1]["status"] == "pending"
    finally:
        sender.close()
