"""Privacy, proved across every table of the database.

Given a shop where one shopper left a trail everywhere the app keeps data (deliveries built from
Shopify's published sample payloads, with addresses; a merged-away older account; orders, a refund,
checkouts, a cart; memberships, their history, the tag outbox, the tag ledger and audit, a bulk tag
mutation; KPI snapshots; a data-request export), when Shopify's customers/redact arrives through
the webhook endpoint and is processed by the drain task as in production, then a scan of every
table (tests/segments/privacy/privacy_scan.py) finds none of the shopper's ids, emails, phone, names or
address lines, except where ALLOWED says why the law lets the shop keep it.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from segments.measurement.snapshots import kpi_snapshot_day
from segments.membership.definitions import segment_create
from segments.membership.models import Segment, SegmentStatus, TagChange
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import ComplianceKind, ComplianceRequest, Customer, Order
from segments.shops.calendar import shop_today
from segments.tags.models import BulkStatus, TagBulkOperation
from segments.tags.sync import shop_tags_sync
from tests.segments.privacy.privacy_scan import Hit, Needles, database_scan
from tests.segments.tags.conftest import BUYERS, REPEAT, tagstore  # noqa: F401 - the fixture
from tests.webhooks.test_compliance_webhooks import deliver
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_drain

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).resolve().parents[2] / "webhooks" / "samples"


class Persona:
    """One shopper, with values no other row of the test can contain by chance."""

    first_name = "Ottoline"
    last_name = "Quarrington"
    email = "ottoline.quarrington@example.org"
    old_email = "o.quarrington@oldmail.example"       # the older account's, merged away
    phone = "+16135550142"
    national_phone = "6135550142"
    address1 = "17 Quillfeather Lane"
    address2 = "Attic Suite Q9"
    zip = "K9Q 4Z7"

    def __init__(self, shopify_id: int, merged_id: int):
        self.shopify_id, self.merged_id = shopify_id, merged_id

    @property
    def needles(self) -> Needles:
        return Needles(ids=(self.shopify_id, self.merged_id),
                       texts=(self.email, self.old_email, self.phone, self.national_phone, self.first_name,
                              self.last_name, self.address1, self.address2, self.zip))

    def address(self, customer_id: int | None = None) -> dict:
        return {"first_name": self.first_name, "last_name": self.last_name,
                "name": f"{self.first_name} {self.last_name}", "address1": self.address1,
                "address2": self.address2, "zip": self.zip, "city": "Ottawa", "phone": self.phone,
                **({"customer_id": customer_id} if customer_id else {})}


def sample(topic: str) -> dict:
    return json.loads((SAMPLES / f"{topic.replace('/', '__')}.json").read_text())


def iso(when: dt.datetime) -> str:
    return when.isoformat()


def customer_body(p: Persona, *, shopify_id: int, email: str, updated: dt.datetime, topic="customers/create"):
    body = sample(topic)
    address = {**body["default_address"], **p.address(shopify_id)}
    body.update(id=shopify_id, email=email, phone=p.phone, first_name=p.first_name, last_name=p.last_name,
                created_at=iso(updated - dt.timedelta(days=400)), updated_at=iso(updated),
                admin_graphql_api_id=f"gid://shopify/Customer/{shopify_id}", default_address=address,
                addresses=[address], note=f"Prefers {p.first_name} on the parcel")
    return body


def nested_customer(p: Persona, shopify_id: int, email: str) -> dict:
    return {**sample("orders/create")["customer"], "id": shopify_id, "email": email, "phone": p.phone,
            "first_name": p.first_name, "last_name": p.last_name,
            "admin_graphql_api_id": f"gid://shopify/Customer/{shopify_id}",
            "default_address": {**sample("orders/create")["customer"]["default_address"], **p.address(shopify_id)}}


def order_body(p: Persona, *, order_id: int, shopify_id: int, email: str, at: dt.datetime, cart: str,
               topic="orders/create") -> dict:
    body = sample(topic)
    body.update(id=order_id, test=False, email=email, contact_email=email, phone=p.phone, created_at=iso(at),
                processed_at=iso(at), updated_at=iso(at), cancelled_at=None, cart_token=cart,
                checkout_token=f"chk-{order_id}", name=f"#{order_id % 10_000}", order_number=order_id % 10_000,
                customer=nested_customer(p, shopify_id, email), discount_codes=[{"code": "OTTOLINE-VIP",
                                                                                  "amount": "5.00",
                                                                                  "type": "fixed_amount"}],
                billing_address={**body["billing_address"], **p.address()},
                shipping_address={**body["shipping_address"], **p.address()},
                note=f"Leave it with {p.first_name}, {p.address1}")
    return body


def checkout_body(p: Persona, *, token: str, cart: str, at: dt.datetime) -> dict:
    body = sample("checkouts/create")
    body.update(token=token, cart_token=cart, email=p.email, phone=p.phone, sms_marketing_phone=p.phone,
                created_at=iso(at), updated_at=iso(at), completed_at=None,
                customer=nested_customer(p, p.shopify_id, p.email),
                billing_address={**body["billing_address"], **p.address()},
                shipping_address={**body["shipping_address"], **p.address()})
    return body


def devstore_customer(tagstore, p: Persona) -> None:
    """Shopify (devstore) holds the shopper too, so tag writes to them succeed."""
    with tagstore.devstore.store.tx() as conn:
        conn.execute("INSERT INTO customers (id, shop, first_name, last_name, email, tags, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, '[]', ?, ?)",
                     (p.shopify_id, tagstore.shop.domain, p.first_name, p.last_name, p.email,
                      iso(timezone.now()), iso(timezone.now())))


def sync_until_idle(tagstore, timeout: float = 60.0) -> None:
    import time

    from segments.tags import bulk as tag_bulk
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shop_tags_sync(shop_id=tagstore.shop.pk)
        if not TagBulkOperation.objects.filter(shop=tagstore.shop, status__in=tag_bulk.ACTIVE).exists() \
                and not tagstore.pending():
            return
        time.sleep(0.1)
    raise AssertionError("tag sync did not finish")


def shopper_everywhere(client, settings, capture, tagstore) -> Persona:
    """The shopper's trail through every table, made by the app's own paths."""
    shop, domain = tagstore.shop, tagstore.shop.domain
    shopify_id, merged_id = tagstore.devstore.store.next_ids("Customer", 2)
    p = Persona(shopify_id, merged_id)
    devstore_customer(tagstore, p)
    now = timezone.now()

    def send(topic: str, body: dict) -> WebhookEvent:
        return deliver(client, settings, capture, topic, domain, body)

    # the older account, its order, then the current account; Shopify merges the two
    send("customers/create", customer_body(p, shopify_id=merged_id, email=p.old_email,
                                           updated=now - dt.timedelta(days=300)))
    send("orders/create", order_body(p, order_id=9_100_000_001, shopify_id=merged_id, email=p.old_email,
                                     at=now - dt.timedelta(days=300), cart="cart-ottoline-old"))
    send("customers/create", customer_body(p, shopify_id=shopify_id, email=p.email,
                                           updated=now - dt.timedelta(days=30)))
    failed = {**sample("customers/merge"), "admin_graphql_api_customer_kept_id": f"gid://shopify/Customer/{shopify_id}",
              "admin_graphql_api_customer_deleted_id": f"gid://shopify/Customer/{merged_id}"}
    failed["errors"] = [{"customer_ids": [shopify_id], "field": "merge_in_progress",
                         "message": f"{p.first_name} {p.last_name} is currently being merged."}]
    send("customers/merge", failed)
    send("customers/merge", {**failed, "status": "completed", "errors": []})
    # orders (one refunded), an abandoned checkout, a cart, consent, a hand-written tag
    for n, days_ago in enumerate((20, 6), start=2):
        body = order_body(p, order_id=9_100_000_000 + n, shopify_id=shopify_id, email=p.email,
                          at=now - dt.timedelta(days=days_ago), cart=f"cart-ottoline-{n}")
        send("orders/create", body)
    send("orders/updated", {**order_body(p, order_id=9_100_000_002, shopify_id=shopify_id, email=p.email,
                                         at=now - dt.timedelta(days=20), cart="cart-ottoline-2",
                                         topic="orders/updated"), "updated_at": iso(now - dt.timedelta(days=19))})
    refund = sample("refunds/create")
    refund.update(id=9_200_000_001, order_id=9_100_000_002, created_at=iso(now - dt.timedelta(days=19)),
                  note=f"Returned by {p.first_name} {p.last_name}")
    send("refunds/create", refund)
    send("checkouts/create", checkout_body(p, token="co-ottoline", cart="cart-ottoline-9",
                                           at=now - dt.timedelta(days=3)))
    send("carts/create", {**sample("carts/create"), "id": "cart-ottoline-9", "token": "cart-ottoline-9",
                          "created_at": iso(now - dt.timedelta(days=3)), "updated_at": iso(now - dt.timedelta(days=3))})
    send("customers_email_marketing_consent/update", {
        "customer_id": shopify_id, "email_address": p.email,
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                    "consent_updated_at": iso(now - dt.timedelta(days=29))}})
    send("customers_marketing_consent/update", {
        "id": shopify_id, "phone": p.phone,
        "sms_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                  "consent_updated_at": iso(now - dt.timedelta(days=29)),
                                  "consent_collected_from": "SHOPIFY"}})
    send("customer.tags_added", {"customerId": f"gid://shopify/Customer/{shopify_id}", "tags": ["wholesale"],
                                 "occurredAt": iso(now - dt.timedelta(days=1))})
    assert Customer.objects.filter(shop=shop, shopify_id=shopify_id, email=p.email, first_name=p.first_name).exists()
    assert Order.objects.filter(shop=shop, customer__shopify_id=shopify_id).count() == 3   # the merged one moved

    # segments over the shop: the shopper and 205 others enter "buyers" and are tagged by a bulk
    # mutation (the bulk path starts at 200 customers); "repeat" (the shopper alone) leaves a row in
    # the outbox; KPI snapshots of yesterday
    sids = tagstore.customers(205)
    for sid in sids:
        tagstore.order(sid)
    settings.SHOPSEG_TAG_BULK_THRESHOLD = 10
    buyers = segment_create(shop=shop, name="Buyers", rules=BUYERS)
    customer_metrics_rebuild(shop=shop)
    segments_recompute(shop=shop)
    sync_until_idle(tagstore)
    assert TagBulkOperation.objects.filter(shop=shop, status=BulkStatus.COMPLETED).exists()
    segment_create(shop=shop, name="Repeat", rules=REPEAT)
    segments_recompute(shop=shop)
    mine = Customer.objects.get(shop=shop, shopify_id=shopify_id)
    assert TagChange.objects.filter(customer=mine, processed_at__isnull=True).exists()
    kpi_snapshot_day(shop=shop, day=shop_today(shop) - dt.timedelta(days=1))
    # "buyers" archived: everyone leaves, and the removal runs as a bulk mutation, still running when
    # the redaction comes (its lines name the shopper, like the queued addition behind it)
    Segment.objects.filter(pk=buyers.pk).update(status=SegmentStatus.ARCHIVED)
    segments_recompute(shop=shop, segments=list(Segment.objects.filter(shop=shop)))
    shop_tags_sync(shop_id=shop.pk)
    assert TagBulkOperation.objects.filter(shop=shop, status=BulkStatus.RUNNING).exists()
    # and the shop asked for the shopper's data once
    request = sample("customers/data_request")
    request.update(shop_domain=domain, customer={"id": shopify_id, "email": p.email, "phone": p.phone},
                   orders_requested=[], data_request={"id": 31337})
    send("customers/data_request", request)
    assert ComplianceRequest.objects.get(shop_domain=domain, kind=ComplianceKind.DATA_REQUEST).export
    return p


def redact(client, settings, capture, shop, p: Persona) -> WebhookEvent:
    """customers/redact as Shopify sends it: signed, to the endpoint, processed by the drain task."""
    body = sample("customers/redact")
    body.update(shop_domain=shop.domain, customer={"id": p.shopify_id, "email": p.email, "phone": p.phone},
                orders_to_redact=[9_100_000_002, 9_100_000_003])
    event = deliver(client, settings, capture, "customers/redact", shop.domain, body)
    webhook_events_drain()
    event.refresh_from_db()
    return event


# What the app keeps after a customers/redact, and why the law lets it.
ALLOWED = {
    # The log of privacy requests: which request came, for which customer id, when, and what was
    # done (counts). GDPR Art. 5(2) (accountability) and Art. 17: the shop must be able to show
    # that it honoured the erasure; the Shopify id is the least that identifies the request, and
    # no email, phone, name or address goes with it.
    ("segments_compliancerequest", "customer_shopify_id"),
}


def test_customer_redact_leaves_the_shopper_in_no_table(client, settings, tagstore,
                                                        django_capture_on_commit_callbacks):
    p = shopper_everywhere(client, settings, django_capture_on_commit_callbacks, tagstore)
    before = {(h.table, h.column) for h in database_scan(p.needles)}
    # the scan sees the shopper wherever the app holds them (so an empty scan later means something)
    assert {("segments_customer", "shopify_id"), ("segments_customer", "email"), ("segments_customer", "phone"),
            ("segments_customer", "first_name"), ("segments_customer", "last_name"), ("segments_order", "email"),
            ("segments_checkout", "email"), ("webhooks_webhookevent", "payload"),
            ("segments_compliancerequest", "export"), ("segments_compliancerequest", "customer_shopify_id"),
            ("segments_tagaudit", "customer_shopify_id"), ("segments_tagbulkoperation", "lines")} <= before

    event = redact(client, settings, django_capture_on_commit_callbacks, tagstore.shop, p)

    assert event.status == EventStatus.PROCESSED
    summary = ComplianceRequest.objects.get(shop_domain=tagstore.shop.domain, kind=ComplianceKind.CUSTOMER_REDACT).summary
    assert summary["customers"] == 2 and summary["bulk_tag_lines"] == 2      # the running removal, the queued addition
    left = {h for h in database_scan(p.needles) if (h.table, h.column) not in ALLOWED}
    assert left == set(), sorted((h.table, h.column, h.needle) for h in left)
    kept = {h for h in database_scan(p.needles) if (h.table, h.column) in ALLOWED}
    assert kept == {Hit("segments_compliancerequest", "customer_shopify_id", str(p.shopify_id))}
    # the running bulk mutation finishes without the shopper's line, and keeps no lines once done
    sync_until_idle(tagstore)
    assert not TagBulkOperation.objects.filter(shop=tagstore.shop).exclude(lines=[]).exists()
    assert {(h.table, h.column) for h in database_scan(p.needles)} <= ALLOWED
    # the orders stay for the shop's books, about nobody
    assert Order.objects.filter(shop=tagstore.shop, shopify_id__in=[9_100_000_001, 9_100_000_002, 9_100_000_003],
                                customer=None, email="").count() == 3


def test_the_scan_finds_a_value_planted_in_a_compressed_payload(shop_for_scan):
    """A planted email in a large payload (stored lz4-compressed by PostgreSQL) and a planted id
    in a column nobody would think of are both reported: the scan reads what it claims to read."""
    planted = "planted.person@example.org"
    big = {**sample("orders/create"), "id": 1, "note": f"ship to {planted}"}       # ~12 KB: compressed
    event = WebhookEvent.objects.create(webhook_id="planted-1", shop_domain=shop_for_scan.domain,
                                        topic="orders/create", payload=big, status=EventStatus.PROCESSED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(payload) FROM webhooks_webhookevent WHERE id = %s",
                       [event.pk])
        assert cursor.fetchone()[0] in ("lz4", "pglz")      # stored compressed, read decompressed
    ComplianceRequest.objects.create(shop_domain=shop_for_scan.domain, kind=ComplianceKind.CUSTOMER_REDACT,
                                     customer_shopify_id=4_242_424_242_4242)

    hits = database_scan(Needles(ids=(4_242_424_242_4242,), texts=(planted.upper(),)))

    assert hits == {Hit("webhooks_webhookevent", "payload", planted.upper()),
                    Hit("segments_compliancerequest", "customer_shopify_id", "42424242424242")}


@pytest.fixture
def shop_for_scan():
    from segments.shops.models import Shop
    return Shop.objects.create(domain="scan-planted.myshopify.com", access_token="shpat_planted")


# -- the setting: API and page -------------------------------------------------------------------------
from tests.segments.web.api.conftest import api, assert_error, shop  # noqa: E402,F401 - fixtures
from tests.segments.web.pages.conftest import get_page  # noqa: E402,F401 - the fixture
