"""Privacy compliance: data-request exports, customer and shop redaction, retention, the merchant's page.

Given a shop mirror with one customer's data spread over every table (linked and guest rows, a
merged-away customer, raw deliveries keyed every way Shopify names a customer), when a request
is handled, then exactly that customer's (or shop's) data is gone or exported, and nothing else moved.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from segments.mirror.models import (
    Cart, Checkout, ComplianceKind, ComplianceRequest, Customer, LineItem, Order, Product, Refund, ShopSync,
)
from segments.privacy import compliance
from segments.privacy.compliance import (
    ComplianceRequestInvalid, compliance_customer_redact, compliance_data_request, register_customer_eraser,
)
from segments.shops.models import Shop, ShopStatus
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db

CUSTOMER = 7_700_000_001
OTHER = 7_700_000_002
MERGED = 7_700_000_003          # an older account of CUSTOMER's, merged into it
EMAIL = "jane.roe@example.org"
OTHER_EMAIL = "sam.poe@example.org"
GUEST_ORDER = 5_500_000_002     # placed as a guest with CUSTOMER's email
NAMED_ORDER = 5_500_000_003     # a guest order under another address that Shopify lists as theirs
MIRROR = (Customer, Order, LineItem, Refund, Product, Checkout, Cart, ShopSync)
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def new_domain() -> str:
    return f"c{uuid.uuid4().hex[:10]}.myshopify.com"


def event(shop: Shop | str, topic: str, payload: dict, *, status=EventStatus.PROCESSED, received_at=None):
    domain = shop if isinstance(shop, str) else shop.domain
    return WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=domain, topic=topic,
                                       payload=payload, status=status, received_at=received_at or timezone.now())


def add_order(shop, shopify_id, *, customer=None, email="", cart_token="", discount_codes=(), total="50.00"):
    order = Order.objects.create(shop=shop, shopify_id=shopify_id, customer=customer, email=email,
                                 name=f"#{shopify_id % 10_000}", created_at=T0, updated_at=T0, total=Decimal(total),
                                 cart_token=cart_token, checkout_token=f"ck-{shopify_id}",
                                 discount_codes=list(discount_codes))
    LineItem.objects.create(shop=shop, order=order, shopify_id=shopify_id * 10 + 1, title="Wool socks",
                            product_type="Socks", vendor="Knits", quantity=2, price=Decimal("25.00"))
    return order


def populate(shop: Shop, *, shopify_id: int = CUSTOMER, email: str = EMAIL, tag: str = "a") -> Customer:
    """One customer's data in every mirror table and in deliveries named every way Shopify names them."""
    customer = Customer.objects.create(shop=shop, shopify_id=shopify_id, email=email, phone="+15550100",
                                       first_name="Jane", last_name="Roe", tags=["vip"], created_at=T0,
                                       updated_at=T0)
    Customer.objects.create(shop=shop, shopify_id=shopify_id + 2, merged_into_id=shopify_id, deleted_at=T0)
    linked = add_order(shop, shopify_id - 2_200_000_000, customer=customer, email=email,
                       cart_token=f"cart-{tag}-1", discount_codes=["JANE-10"])
    Refund.objects.create(shop=shop, order=linked, shopify_id=shopify_id + 900, created_at=T0, amount=Decimal("5"))
    add_order(shop, GUEST_ORDER, email=email)
    add_order(shop, NAMED_ORDER, email=f"other-{tag}@example.net")
    Checkout.objects.create(shop=shop, token=f"co-{tag}-1", cart_token=f"cart-{tag}-2", customer=customer,
                            email=email, total=Decimal("80"), created_at=T0)
    Checkout.objects.create(shop=shop, token=f"co-{tag}-2", email=email, total=Decimal("12"), created_at=T0)
    Cart.objects.create(shop=shop, token=f"cart-{tag}-1", created_at=T0)
    Cart.objects.create(shop=shop, token=f"cart-{tag}-2", created_at=T0)
    gid = f"gid://shopify/Customer/{shopify_id}"
    event(shop, "customers/update", {"id": shopify_id, "email": email, "first_name": "Jane"})
    event(shop, "orders/create", {"id": linked.shopify_id, "email": email, "customer": {"id": shopify_id}})
    event(shop, "checkouts/create", {"token": f"co-{tag}-2", "email": email.upper(), "customer": None})
    event(shop, "refunds/create", {"id": shopify_id + 900, "order_id": linked.shopify_id})
    event(shop, "orders/updated", {"id": NAMED_ORDER, "email": f"other-{tag}@example.net"})
    event(shop, "carts/update", {"token": f"cart-{tag}-2", "line_items": []})
    event(shop, "checkouts/delete", {"id": 1, "cart_token": f"cart-{tag}-1"})
    event(shop, "customer.tags_added", {"customerId": gid, "tags": ["vip"]})
    event(shop, "customers_email_marketing_consent/update", {"customer_id": shopify_id, "email_address": email})
    event(shop, "customers_marketing_consent/update", {"id": shopify_id, "phone": "+15550100"})
    return customer


def populate_other(shop: Shop) -> Customer:
    """Someone else in the same shop: nothing of theirs may move."""
    other = Customer.objects.create(shop=shop, shopify_id=OTHER, email=OTHER_EMAIL, first_name="Sam",
                                    created_at=T0, updated_at=T0)
    add_order(shop, 5_500_000_009, customer=other, email=OTHER_EMAIL, cart_token="cart-other")
    Checkout.objects.create(shop=shop, token="co-other", cart_token="cart-other", customer=other,
                            email=OTHER_EMAIL, created_at=T0)
    Cart.objects.create(shop=shop, token="cart-other", created_at=T0)
    Product.objects.create(shop=shop, shopify_id=42, title="Wool socks")
    ShopSync.objects.create(shop=shop)
    event(shop, "customers/update", {"id": OTHER, "email": OTHER_EMAIL})
    event(shop, "orders/create", {"id": 5_500_000_009, "email": OTHER_EMAIL, "customer": {"id": OTHER}})
    return other


def shop_snapshot(shop: Shop | None, domain: str) -> str:
    """Every stored byte of a shop's data, as text: mirror rows, delivery payloads, compliance exports.

    The request log itself (kind, customer id, times, counts) is left out: it is meant to outlive the data.
    """
    rows = []
    if shop is not None:
        for model in MIRROR:
            rows += [model_to_dict(r) for r in model.objects.filter(shop=shop).order_by("pk")]
    rows += list(WebhookEvent.objects.filter(shop_domain=domain).order_by("pk").values("topic", "payload", "status"))
    rows += list(ComplianceRequest.objects.filter(shop_domain=domain, export__isnull=False).order_by("pk")
                 .values("export"))
    return json.dumps(rows, default=str, sort_keys=True)


def mentions(text: str, *needles) -> list[str]:
    return [str(n) for n in needles if re.search(rf"(?<![\w.@-]){re.escape(str(n))}(?![\w@-])", text, re.I)]


def redact_payload(shop, *, shopify_id=CUSTOMER, email=EMAIL, orders=(NAMED_ORDER,)):
    return {"shop_id": 1, "shop_domain": shop.domain, "customer": {"id": shopify_id, "email": email,
                                                                    "phone": "+15550100"},
            "orders_to_redact": list(orders)}


@pytest.fixture
def shop():
    return Shop.objects.create(domain=new_domain(), name="Knit Shop", email="owner@knit.example")


@pytest.fixture
def other_shop():
    """A second shop where the same Shopify id and email exist (ids are per shop)."""
    other = Shop.objects.create(domain=new_domain())
    populate(other, tag="b")
    return other


# -- customers/redact ------------------------------------------------------------------------------
def test_customer_redact_leaves_nothing_of_the_customer(shop, other_shop):
    populate(shop)
    assert mentions(shop_snapshot(shop, shop.domain), CUSTOMER, EMAIL, MERGED, "Jane", "+15550100", "JANE-10")

    request = compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))

    assert mentions(shop_snapshot(shop, shop.domain), CUSTOMER, EMAIL, MERGED, "Jane", "+15550100", "JANE-10",
                    "cart-a-1", "cart-a-2", "other-a@example.net") == []
    assert not Customer.objects.filter(shop=shop).exists()
    assert not Checkout.objects.filter(shop=shop).exists() and not Cart.objects.filter(shop=shop).exists()
    assert request.kind == ComplianceKind.CUSTOMER_REDACT and request.completed_at is not None
    assert request.customer_shopify_id == CUSTOMER and request.export is None
    assert request.summary == {"webhook_payloads": 10, "compliance_exports": 0, "customers_blanked": 1,
                               "order_emails_blanked": 3, "checkout_emails_blanked": 2, "bulk_tag_lines": 0,
                               "customers": 2, "orders_anonymised": 3, "checkouts": 2, "carts": 2}


def test_compliance_logs_say_what_and_how_many_never_who(shop, caplog):
    populate(shop)
    caplog.set_level(logging.DEBUG)
    compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop))
    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))
    assert "customers/data_request" in caplog.text and "customers/redact" in caplog.text
    assert shop.domain in caplog.text and "'customers': 2" in caplog.text
    assert mentions(caplog.text, CUSTOMER, EMAIL, "Jane", "Roe", "+15550100") == []


def test_customer_redact_keeps_orders_as_anonymous_sales(shop):
    populate(shop)
    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))
    orders = Order.objects.filter(shop=shop)
    assert orders.count() == 3 and LineItem.objects.filter(shop=shop).count() == 3
    assert Refund.objects.filter(shop=shop).count() == 1
    assert sum(o.total for o in orders) == Decimal("150.00")
    assert {(o.customer_id, o.email, o.cart_token, o.checkout_token, tuple(o.discount_codes)) for o in orders} == \
        {(None, "", "", "", ())}
    # the metadata of every delivery stays (dedupe, the delivery log); only payloads went
    assert WebhookEvent.objects.filter(shop_domain=shop.domain).count() == 10
    assert all(p == {} for p in WebhookEvent.objects.filter(shop_domain=shop.domain).values_list("payload", flat=True))


def test_customer_redact_touches_no_other_customer_and_no_other_shop(shop, other_shop):
    populate(shop)
    other = populate_other(shop)
    other_rows = [model_to_dict(r) for r in (other, *Order.objects.filter(customer=other),
                                             *Checkout.objects.filter(customer=other),
                                             *Cart.objects.filter(token="cart-other"))]
    other_events = list(WebhookEvent.objects.filter(shop_domain=shop.domain, payload__email=OTHER_EMAIL)
                        .values("pk", "payload", "status"))
    before_other_shop = shop_snapshot(other_shop, other_shop.domain)

    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))

    assert [model_to_dict(r) for r in (Customer.objects.get(pk=other.pk), *Order.objects.filter(customer=other),
                                       *Checkout.objects.filter(customer=other),
                                       *Cart.objects.filter(token="cart-other"))] == other_rows
    assert list(WebhookEvent.objects.filter(pk__in=[e["pk"] for e in other_events])
                .values("pk", "payload", "status")) == other_events
    assert Product.objects.filter(shop=shop).count() == 1 and ShopSync.objects.filter(shop=shop).count() == 1
    assert shop_snapshot(other_shop, other_shop.domain) == before_other_shop


def test_customer_redact_twice_finds_nothing_the_second_time(shop):
    populate(shop)
    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))
    after_first = shop_snapshot(shop, shop.domain)

    second = compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))

    assert second.completed_at is not None
    assert set(second.summary.values()) == {0}
    assert shop_snapshot(shop, shop.domain) == after_first


def test_customer_redact_works_after_uninstall(shop):
    populate(shop)
    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.UNINSTALLED, access_token=None, refresh_token=None)
    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))
    assert mentions(shop_snapshot(shop, shop.domain), CUSTOMER, EMAIL) == []


def test_customer_redact_for_a_shop_we_never_knew_blanks_its_deliveries():
    domain = new_domain()
    kept = event(domain, "customers/update", {"id": OTHER, "email": OTHER_EMAIL})
    event(domain, "orders/create", {"id": 1, "email": EMAIL.upper()})
    event(domain, "customers/create", {"id": CUSTOMER})

    request = compliance_customer_redact(shop_domain=domain, payload={"customer": {"id": CUSTOMER, "email": EMAIL}})

    assert mentions(shop_snapshot(None, domain), CUSTOMER, EMAIL) == []
    assert WebhookEvent.objects.get(pk=kept.pk).payload == {"id": OTHER, "email": OTHER_EMAIL}
    assert request.summary == {"webhook_payloads": 2, "compliance_exports": 0}


def test_customer_redact_erases_earlier_data_request_exports(shop):
    populate(shop)
    export = compliance_data_request(shop_domain=shop.domain, payload={
        "customer": {"id": CUSTOMER, "email": EMAIL}, "orders_requested": [], "data_request": {"id": 9001}})
    other = compliance_data_request(shop_domain=shop.domain, payload={
        "customer": {"id": OTHER}, "orders_requested": [], "data_request": {"id": 9002}})

    request = compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))

    export.refresh_from_db()
    other.refresh_from_db()
    assert export.export is None and export.summary["orders"] == 2   # the counts stay, the copy goes
    assert other.export is not None
    assert request.summary["compliance_exports"] == 1


def test_pending_deliveries_of_a_redacted_customer_are_never_applied(shop):
    populate(shop)
    pending = event(shop, "customers/update", {"id": CUSTOMER, "email": EMAIL, "first_name": "Jane"},
                    status=EventStatus.PENDING)
    unrelated = event(shop, "customers/update", {"id": OTHER, "email": OTHER_EMAIL}, status=EventStatus.PENDING)

    compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))

    pending.refresh_from_db()
    assert (pending.status, pending.payload) == (EventStatus.IGNORED, {})
    assert webhook_event_process(event_pk=pending.pk) == "skipped"
    assert not Customer.objects.filter(shop=shop, shopify_id=CUSTOMER).exists()
    unrelated.refresh_from_db()
    assert unrelated.status == EventStatus.PENDING and unrelated.payload["id"] == OTHER


def test_customer_redact_without_a_customer_id_records_nothing(shop):
    populate(shop)
    before = shop_snapshot(shop, shop.domain)
    with pytest.raises(ComplianceRequestInvalid):
        compliance_customer_redact(shop_domain=shop.domain, payload={"customer": {"email": EMAIL}})
    assert not ComplianceRequest.objects.filter(shop_domain=shop.domain).exists()
    assert shop_snapshot(shop, shop.domain) == before


def test_registered_customer_erasers_run_with_the_customers_keys(shop, monkeypatch):
    customer = populate(shop)
    monkeypatch.setattr(compliance, "_customer_erasers", list(compliance._customer_erasers))
    seen = []

    @register_customer_eraser
    def memberships(*, keys):
        seen.append(keys)
        return {"memberships": 3}

    register_customer_eraser(memberships)   # twice is once
    request = compliance_customer_redact(shop_domain=shop.domain, payload=redact_payload(shop))

    assert len(seen) == 1
    keys = seen[0]
    assert keys.customer_shopify_id == CUSTOMER and customer.pk in keys.customer_pks and len(keys.customer_pks) == 2
    assert keys.emails == {EMAIL}
    assert {GUEST_ORDER, NAMED_ORDER} <= keys.order_shopify_ids
    assert keys.cart_tokens == {"cart-a-1", "cart-a-2"}
    assert request.summary["memberships"] == 3


# -- customers/data_request ------------------------------------------------------------------------
def data_request_payload(shop, *, request_id=9001, orders=()):
    return {"shop_id": 1, "shop_domain": shop.domain, "customer": {"id": CUSTOMER, "email": EMAIL, "phone": None},
            "orders_requested": list(orders), "data_request": {"id": request_id}}


def test_data_request_exports_everything_stored_about_the_customer(shop, other_shop):
    customer = populate(shop)
    populate_other(shop)
    segment_records(shop, customer)

    request = compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop))

    request = ComplianceRequest.objects.get(pk=request.pk)     # as stored: JSON all the way down
    export = request.export
    assert request.kind == ComplianceKind.DATA_REQUEST and request.request_id == "9001"
    assert request.completed_at is not None and request.customer_shopify_id == CUSTOMER
    assert export["customer"]["shopify_id"] == CUSTOMER and export["customer"]["email"] == EMAIL
    assert export["customer"]["first_name"] == "Jane" and export["customer"]["tags"] == ["vip"]
    assert "id" not in export["customer"] and "shop_id" not in export["customer"]
    orders = {o["shopify_id"]: o for o in export["orders"]}
    linked = customer.orders.get().shopify_id
    assert set(orders) == {linked, GUEST_ORDER}      # theirs by link and by email; not the other address's
    assert orders[linked]["line_items"][0]["title"] == "Wool socks" and orders[linked]["total"] == "50.00"
    assert [r["amount"] for r in orders[linked]["refunds"]] == ["5.00"]
    assert orders[GUEST_ORDER]["refunds"] == []
    assert sorted(c["token"] for c in export["checkouts"]) == ["co-a-1", "co-a-2"]
    assert sorted(c["token"] for c in export["carts"]) == ["cart-a-1", "cart-a-2"]
    topics = sorted(d["topic"] for d in export["webhook_deliveries"])
    assert topics == sorted(["customers/update", "orders/create", "checkouts/create", "refunds/create",
                             "carts/update", "checkouts/delete", "customer.tags_added",
                             "customers_email_marketing_consent/update", "customers_marketing_consent/update"])
    assert OTHER_EMAIL not in json.dumps(export) and str(OTHER) not in json.dumps(export)
    segments = export["segments"]
    assert [(m["segment"], m["tag"], m["holdout"]) for m in segments["memberships"]] == [("VIP", "seg:vip", False)]
    assert [(e["segment"], e["entered"], e["trigger"]) for e in segments["history"]] == [("VIP", True, "event")]
    assert [(t["tag"], t["add"], t["result"]) for t in segments["tag_changes"]] == [("seg:vip", True, "applied")]
    assert [(f["segment"], f["entered"], f["result"]) for f in segments["flow_triggers"]] == [("VIP", True, "sent")]
    assert request.summary == {"customer": 1, "orders": 2, "line_items": 2, "refunds": 1, "checkouts": 2,
                               "carts": 2, "webhook_deliveries": 9, "segment_memberships": 1, "tag_changes": 1,
                               "storefront_visitors": 0}


def segment_records(shop, customer):
    """The app's own decisions about the customer: a segment, its entry, the tag written."""
    from segments.membership.models import FlowTrigger, Membership, MembershipEvent, Segment
    from segments.tags.models import TagAudit

    segment = Segment.objects.create(shop=shop, name="VIP", handle="vip")
    now = timezone.now()
    Membership.objects.create(shop=shop, segment=segment, customer=customer, entered_at=now, version=1)
    MembershipEvent.objects.create(shop=shop, segment=segment, customer=customer, entered=True, at=now, version=1,
                                   trigger="event")
    TagAudit.objects.create(shop=shop, customer=customer, customer_shopify_id=customer.shopify_id, tag="seg:vip",
                            add=True, segment=segment, source="membership", result="applied", at=now)
    FlowTrigger.objects.create(shop=shop, segment=segment, customer=customer, entered=True, created_at=now,
                               processed_at=now, result="sent")


def test_data_request_limits_orders_to_those_requested(shop):
    populate(shop)
    request = compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop,
                                                                                        orders=[NAMED_ORDER]))
    assert [o["shopify_id"] for o in request.export["orders"]] == [NAMED_ORDER]
    assert request.summary["orders"] == 1


def test_data_request_is_idempotent_per_request_id(shop):
    populate(shop)
    first = compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop))
    Customer.objects.filter(shop=shop, shopify_id=CUSTOMER).update(first_name="Changed")

    again = compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop))

    assert again.pk == first.pk
    assert ComplianceRequest.objects.filter(shop_domain=shop.domain).count() == 1
    assert again.export["customer"]["first_name"] == "Jane"
    newer = compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop, request_id=9002))
    assert newer.pk != first.pk and newer.export["customer"]["first_name"] == "Changed"


def test_data_request_for_someone_we_hold_nothing_about(shop):
    populate_other(shop)
    request = compliance_data_request(shop_domain=shop.domain, payload=data_request_payload(shop))
    assert request.export["customer"] is None
    assert request.export["orders"] == request.export["checkouts"] == request.export["webhook_deliveries"] == []
    assert set(request.summary.values()) == {0}
