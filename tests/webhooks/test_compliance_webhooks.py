"""Compliance topics through POST /webhooks/shopify: signed deliveries in, the work really done.

Installed, uninstalled and never-known shops alike; a bad signature stores and erases nothing; and
devstore sends the three requests over real HTTP to a live app.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from devstore import mutations
from segments.mirror.models import Checkout, ComplianceKind, ComplianceRequest, Customer, Order, Product
from segments.shops.models import Shop, ShopStatus
from shopseg.shopify.signatures import webhook_hmac
from tests.conftest import install_live, settle
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_drain

pytestmark = pytest.mark.django_db

CUSTOMER = 8_800_000_001
EMAIL = "river.song@example.org"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def post(client, settings, topic, shop, payload, *, secret=None, webhook_id=None):
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/shopify", data=body, content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic, HTTP_X_SHOPIFY_SHOP_DOMAIN=shop,
        HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id or str(uuid.uuid4()), HTTP_X_SHOPIFY_EVENT_ID=str(uuid.uuid4()),
        HTTP_X_SHOPIFY_API_VERSION="2026-10", HTTP_X_SHOPIFY_TRIGGERED_AT=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        HTTP_X_SHOPIFY_HMAC_SHA256=webhook_hmac(body, secret or settings.SHOPIFY_API_SECRET),
    )


def deliver(client, settings, capture, topic, shop, payload, **kwargs):
    """Post a delivery, run what it scheduled on commit, then drain as a worker would.

    The drain finds nothing when the in-process task already ran; it keeps these tests about
    compliance, whatever state another test left the Celery app in.
    """
    with capture(execute=True):
        response = post(client, settings, topic, shop, payload, **kwargs)
    assert response.status_code == 200
    webhook_events_drain()
    return WebhookEvent.objects.filter(topic=topic, shop_domain=shop).latest("pk")


def mirror_customer(shop: Shop, *, shopify_id: int = CUSTOMER, email: str = EMAIL,
                    order_ids: tuple[int, ...] = (6_600_000_001,)) -> Customer:
    customer = Customer.objects.create(shop=shop, shopify_id=shopify_id, email=email, first_name="River",
                                       created_at=T0, updated_at=T0)
    for order_id in order_ids:
        Order.objects.create(shop=shop, shopify_id=order_id, customer=customer, email=email, created_at=T0,
                             total=Decimal("30.00"))
    Checkout.objects.create(shop=shop, token=f"co-{shopify_id}", customer=customer, email=email, created_at=T0)
    WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop.domain, topic="customers/update",
                                payload={"id": shopify_id, "email": email}, status=EventStatus.PROCESSED)
    return customer


def held_about(domain: str, *needles) -> list[str]:
    """Which needles any stored row of the shop still contains (mirror, payloads, exports)."""
    rows = list(WebhookEvent.objects.filter(shop_domain=domain).values_list("payload", flat=True))
    rows += list(Customer.objects.filter(shop__domain=domain).values("shopify_id", "email", "first_name"))
    rows += list(Order.objects.filter(shop__domain=domain).values("email", "customer__shopify_id"))
    rows += list(Checkout.objects.filter(shop__domain=domain).values("email", "token"))
    rows += list(ComplianceRequest.objects.filter(shop_domain=domain, export__isnull=False)
                 .values_list("export", flat=True))
    text = json.dumps(rows, default=str)
    return [str(n) for n in needles if str(n) in text]


def redact_body(domain, *, customer_id=CUSTOMER, email=EMAIL, orders=(6_600_000_001,)):
    return {"shop_id": 1, "shop_domain": domain, "customer": {"id": customer_id, "email": email, "phone": None},
            "orders_to_redact": list(orders)}


def test_data_request_delivery_is_exported(client, settings, installed_shop, django_capture_on_commit_callbacks):
    mirror_customer(installed_shop)
    event = deliver(client, settings, django_capture_on_commit_callbacks, "customers/data_request",
                    installed_shop.domain, {"shop_id": 1, "shop_domain": installed_shop.domain,
                                            "customer": {"id": CUSTOMER, "email": EMAIL, "phone": None},
                                            "orders_requested": [6_600_000_001], "data_request": {"id": 4242}})

    assert event.status == EventStatus.PROCESSED
    request = ComplianceRequest.objects.get(shop_domain=installed_shop.domain)
    assert (request.kind, request.request_id, request.customer_shopify_id) == \
        (ComplianceKind.DATA_REQUEST, "4242", CUSTOMER)
    assert request.export["customer"]["email"] == EMAIL
    assert [o["shopify_id"] for o in request.export["orders"]] == [6_600_000_001]
    assert request.summary["checkouts"] == 1


def test_data_request_delivered_twice_is_exported_once(client, settings, installed_shop,
                                                       django_capture_on_commit_callbacks):
    body = {"customer": {"id": CUSTOMER, "email": EMAIL}, "orders_requested": [], "data_request": {"id": 4243}}
    for _ in range(2):   # two deliveries of one request, under distinct webhook ids: receive-side dedupe misses it
        deliver(client, settings, django_capture_on_commit_callbacks, "customers/data_request",
                installed_shop.domain, body)
    assert ComplianceRequest.objects.filter(shop_domain=installed_shop.domain, request_id="4243").count() == 1
    assert WebhookEvent.objects.filter(topic="customers/data_request",
                                       status=EventStatus.PROCESSED).count() == 2


def test_customer_redact_delivery_erases_the_customer(client, settings, installed_shop,
                                                      django_capture_on_commit_callbacks):
    mirror_customer(installed_shop)
    other = mirror_customer(installed_shop, shopify_id=CUSTOMER + 1, email="amy.pond@example.org",
                            order_ids=(6_600_000_009,))
    assert held_about(installed_shop.domain, CUSTOMER, EMAIL) == [str(CUSTOMER), EMAIL]

    event = deliver(client, settings, django_capture_on_commit_callbacks, "customers/redact",
                    installed_shop.domain, redact_body(installed_shop.domain))

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED and event.payload == {}     # its own copy of the email too
    assert held_about(installed_shop.domain, CUSTOMER, EMAIL) == []
    assert Customer.objects.filter(pk=other.pk, email="amy.pond@example.org").exists()
    assert Order.objects.filter(shop=installed_shop).count() == 2
    request = ComplianceRequest.objects.get(shop_domain=installed_shop.domain)
    assert request.summary["customers"] == 1 and request.summary["checkouts"] == 1


def test_customer_redact_after_uninstall_still_erases(client, settings, installed_shop,
                                                      django_capture_on_commit_callbacks):
    mirror_customer(installed_shop)
    deliver(client, settings, django_capture_on_commit_callbacks, "app/uninstalled", installed_shop.domain,
            {"id": 1, "domain": installed_shop.domain})
    assert Shop.objects.get(pk=installed_shop.pk).status == ShopStatus.UNINSTALLED

    event = deliver(client, settings, django_capture_on_commit_callbacks, "customers/redact",
                    installed_shop.domain, redact_body(installed_shop.domain))

    assert WebhookEvent.objects.get(pk=event.pk).status == EventStatus.PROCESSED
    assert held_about(installed_shop.domain, CUSTOMER, EMAIL) == []


def test_customer_redact_for_a_shop_we_never_knew(client, settings, django_capture_on_commit_callbacks):
    domain = f"n{uuid.uuid4().hex[:10]}.myshopify.com"
    deliver(client, settings, django_capture_on_commit_callbacks, "orders/create", domain,
            {"id": 1, "email": EMAIL, "customer": {"id": CUSTOMER}})      # recorded as ignored, payload kept

    event = deliver(client, settings, django_capture_on_commit_callbacks, "customers/redact", domain,
                    redact_body(domain))

    assert WebhookEvent.objects.get(pk=event.pk).status == EventStatus.PROCESSED
    assert held_about(domain, CUSTOMER, EMAIL) == []
    assert ComplianceRequest.objects.get(shop_domain=domain).summary["webhook_payloads"] == 2


def test_shop_redact_delivery_after_uninstall_erases_the_shop(client, settings, installed_shop,
                                                              django_capture_on_commit_callbacks):
    mirror_customer(installed_shop)
    deliver(client, settings, django_capture_on_commit_callbacks, "app/uninstalled", installed_shop.domain,
            {"id": 1, "domain": installed_shop.domain})

    event = deliver(client, settings, django_capture_on_commit_callbacks, "shop/redact", installed_shop.domain,
                    {"shop_id": 1, "shop_domain": installed_shop.domain})

    assert WebhookEvent.objects.get(pk=event.pk).status == EventStatus.PROCESSED
    assert not Shop.objects.filter(domain=installed_shop.domain).exists()
    assert not Customer.objects.filter(shop_id=installed_shop.pk).exists()
    assert not Order.objects.filter(shop_id=installed_shop.pk).exists()
    assert sorted(WebhookEvent.objects.filter(shop_domain=installed_shop.domain).values_list("topic", flat=True)) \
        == ["shop/redact"]


def test_compliance_delivery_with_a_bad_signature_erases_nothing(client, settings, installed_shop,
                                                                 django_capture_on_commit_callbacks):
    mirror_customer(installed_shop)
    events_before = WebhookEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, settings, "customers/redact", installed_shop.domain,
                        redact_body(installed_shop.domain), secret="not-the-secret")
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == events_before
    assert not ComplianceRequest.objects.exists()
    assert held_about(installed_shop.domain, CUSTOMER, EMAIL) == [str(CUSTOMER), EMAIL]


# -- end to end: devstore sends the requests over HTTP to a live app ------------------------------
@pytest.mark.django_db(transaction=True)
def test_devstore_compliance_requests_reach_the_live_app(devstore, live_server, settings):
    domain, _ = install_live(devstore, live_server, settings)
    shop = Shop.objects.get(domain=domain)
    settle(devstore, domain)

    # A shopper signs up, checks out and orders: Shopify's webhooks build the mirror.
    store = devstore.store
    customer_id = mutations.customer_create(store, domain, first_name="River", last_name="Song", email=EMAIL,
                                            phone="+15550199")
    product_id = mutations.product_create(store, domain, title="Sonic screwdriver", product_type="Tools",
                                          vendor="Gallifrey", variants=[{"price_cents": 4200}])
    variant_id = store.conn().execute("SELECT id FROM variants WHERE product_id = ?", (product_id,)).fetchone()[0]
    mutations.checkout_create(store, domain, line_items=[{"variant_id": variant_id}], customer_id=customer_id,
                              cart_token="e2e-cart")
    order_id = mutations.order_create(store, domain, line_items=[{"variant_id": variant_id, "quantity": 2}],
                                      customer_id=customer_id, cart_token="e2e-cart")
    settle(devstore, domain)
    assert Customer.objects.filter(shop=shop, shopify_id=customer_id, email=EMAIL).exists()
    assert Order.objects.filter(shop=shop, shopify_id=order_id, customer__shopify_id=customer_id).exists()

    def send(kind: str, **body) -> None:
        devstore.control("POST", f"/shops/{domain}/compliance/{kind}", json=body)
        settle(devstore, domain)

    send("data_request", customer_id=customer_id)
    request = ComplianceRequest.objects.get(shop_domain=domain, kind=ComplianceKind.DATA_REQUEST)
    assert request.completed_at is not None and request.request_id
    assert request.export["customer"]["email"] == EMAIL and request.export["customer"]["first_name"] == "River"
    assert [o["shopify_id"] for o in request.export["orders"]] == [order_id]
    assert request.export["orders"][0]["line_items"][0]["title"] == "Sonic screwdriver"
    assert {"customers/create", "orders/create"} <= {d["topic"] for d in request.export["webhook_deliveries"]}

    send("customers_redact", customer_id=customer_id)
    assert WebhookEvent.objects.filter(shop_domain=domain, topic="customers/redact",
                                       status=EventStatus.PROCESSED).count() == 1
    assert held_about(domain, customer_id, EMAIL, "+15550199", "River", "e2e-cart") == []
    assert Order.objects.filter(shop=shop, shopify_id=order_id, customer=None, email="").exists()

    devstore.control("POST", f"/shops/{domain}/uninstall/{settings.SHOPIFY_API_KEY}")
    settle(devstore, domain)
    assert Shop.objects.get(domain=domain).status == ShopStatus.UNINSTALLED
    send("shop_redact")
    assert not Shop.objects.filter(domain=domain).exists()
    assert not Order.objects.filter(shop_id=shop.pk).exists() and not Product.objects.filter(shop_id=shop.pk).exists()
    assert list(ComplianceRequest.objects.filter(shop_domain=domain).order_by("pk").values_list("kind", flat=True)) \
        == [ComplianceKind.DATA_REQUEST, ComplianceKind.CUSTOMER_REDACT, ComplianceKind.SHOP_REDACT]


def test_a_redaction_drained_with_a_later_delivery_about_the_customer_stays_erased(client, settings, installed_shop):
    # both wait in line (no drain ran on commit), and one drain takes them in one batch
    mirror_customer(installed_shop)
    post(client, settings, "customers/redact", installed_shop.domain, redact_body(installed_shop.domain))
    post(client, settings, "customers/update", installed_shop.domain,
         {"id": CUSTOMER, "email": EMAIL, "first_name": "River", "updated_at": "2026-11-21T10:00:00Z"})
    redact, update = WebhookEvent.objects.filter(shop_domain=installed_shop.domain,
                                                 status=EventStatus.PENDING).order_by("pk")

    webhook_events_drain()

    redact.refresh_from_db()
    update.refresh_from_db()
    assert redact.status == EventStatus.PROCESSED
    assert update.status == EventStatus.IGNORED and update.payload == {}    # erased before it was applied
    assert held_about(installed_shop.domain, CUSTOMER, EMAIL) == []
    assert not Customer.objects.filter(shop=installed_shop, shopify_id=CUSTOMER).exists()
