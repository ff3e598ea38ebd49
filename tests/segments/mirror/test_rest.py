"""REST webhook payloads -> records: Shopify's own samples parse and apply; odd payloads never crash."""
import copy
import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from segments.mirror import rest
from segments.mirror.models import Cart, Checkout, Customer, LineItem, Order, Product
from segments.shops.models import Shop
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process

SAMPLES = Path(__file__).resolve().parents[2] / "webhooks" / "samples"
# Topics whose work belongs to other services (backfill, compliance, install); the mirror skips them.
NOT_MIRROR = {"bulk_operations/finish", "customers/data_request", "customers/redact", "shop/redact",
              "app/uninstalled"}
EST = dt.timezone(dt.timedelta(hours=-5))
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
IPAD = "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
ANDROID_PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"


def sample(topic: str) -> dict:
    return json.loads((SAMPLES / f"{topic.replace('/', '__')}.json").read_text())


def sample_topics() -> list[str]:
    return sorted(p.stem.replace("__", "/") for p in SAMPLES.glob("*.json"))


@pytest.fixture
def shop(db):
    return Shop.objects.create(domain="rest.myshopify.com")


def deliver(shop, topic, payload) -> WebhookEvent:
    event = WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop.domain, topic=topic,
                                        payload=payload)
    webhook_event_process(event_pk=event.pk)
    event.refresh_from_db()
    return event


# -- every published sample ---------------------------------------------------------------------
# Handled topics whose sample is not stored (tests/webhooks/samples/README.md): shop/update sends the
# Shop resource that app/uninstalled's sample shows (tests/webhooks/test_shop_topics.py uses it).
NO_STORED_SAMPLE = {"shop/update", "app/scopes_update"}


def test_there_is_a_sample_for_every_mirror_topic():
    from webhooks.handlers import HANDLERS

    assert set(HANDLERS) - set(sample_topics()) == NO_STORED_SAMPLE


@pytest.mark.django_db
@pytest.mark.parametrize("topic", [t for t in sample_topics() if t not in NOT_MIRROR])
def test_each_sample_applies_through_its_handler(shop, topic):
    if topic == "refunds/create":  # a refund needs its order, and the sample order is a test one
        deliver(shop, "orders/create", dict(sample("orders/create"), test=False))
    event = deliver(shop, topic, sample(topic))
    assert (event.status, event.last_error) == (EventStatus.PROCESSED, "")


def test_order_sample_parses_to_shop_money():
    record = rest.order_record(sample("orders/create"))
    assert record.shopify_id == 820982911946154508
    assert record.customer_shopify_id == 115310627314723954 and record.email == "jon@example.com"
    assert (record.total, record.subtotal, record.total_discounts, record.total_shipping) == (
        Decimal("404.95"), Decimal("404.95"), Decimal("20.00"), Decimal("10.00"))
    assert record.created_at == dt.datetime(2021, 12, 31, 19, 0, tzinfo=EST)
    assert record.cancelled_at.utcoffset() == dt.timedelta(hours=-5)
    assert (record.shipping_method, record.shipping_speed, record.device) == ("Generic Shipping", "standard",
                                                                               "unknown")
    assert [line.shopify_id for line in record.line_items][:2] == [487817672276298554, 789012345678901234]
    first = record.line_items[0]
    assert (first.product_id, first.variant_id, first.price, first.quantity, first.vendor) == (
        788032119674292922, None, Decimal("89.99"), 1, "")
    assert record.refunds == [] and record.total_refunded == Decimal("0.00")


@pytest.mark.django_db
def test_test_orders_never_reach_the_mirror(shop):
    assert rest.order_is_test(sample("orders/create"))
    deliver(shop, "orders/create", sample("orders/create"))
    assert Order.objects.count() == 0 and Customer.objects.count() == 0


@pytest.mark.django_db
def test_a_live_order_is_stored_with_product_types_from_the_mirror(shop):
    deliver(shop, "products/update", sample("products/update"))
    live = dict(sample("orders/create"), test=False)
    deliver(shop, "orders/create", live)
    order = Order.objects.get()
    assert order.total == Decimal("404.95") and order.customer.shopify_id == 115310627314723954
    types = dict(LineItem.objects.filter(order=order).values_list("shopify_id", "product_type"))
    assert types[487817672276298554] == "Shirts"        # product 788032119674292922 is in the mirror
    assert types[789012345678901234] == ""              # no product_id: nothing to look up


@pytest.mark.django_db
def test_an_order_that_becomes_a_test_order_is_removed(shop):
    live = dict(sample("orders/create"), test=False)
    deliver(shop, "orders/create", live)
    assert Order.objects.count() == 1
    deliver(shop, "orders/updated", dict(live, test=True, updated_at="2022-01-01T10:00:00-05:00"))
    assert Order.objects.count() == 0 and LineItem.objects.count() == 0


def test_refund_amount_is_the_successful_refund_transactions():
    record = rest.refund_record(sample("refunds/create"))
    assert (record.shopify_id, record.order_shopify_id, record.amount) == (
        890088186047892319, 820982911946154508, Decimal("85.00"))
    no_money_moved = dict(sample("refunds/create"), transactions=[])
    assert rest.refund_amount(no_money_moved) == Decimal("414.95")   # the refunded lines' subtotals
    failed = copy.deepcopy(sample("refunds/create"))
    failed["transactions"][1]["status"] = "failure"
    assert rest.refund_amount(failed) == Decimal("75.00")


def test_customer_sample_has_no_tags_and_no_consent():
    record = rest.customer_record(sample("customers/update"))
    assert (record.shopify_id, record.email, record.tags) == (706405506930370084, "bob@biller.com", None)
    assert (record.email_marketing, record.sms_marketing) == ("unknown", "unknown")


def test_customer_consent_and_tags_are_read_when_present():
    payload = dict(sample("customers/update"), email="Bob@Biller.COM", tags="vip, wholesale ,",
                   email_marketing_consent={"state": "SUBSCRIBED"},
                   sms_marketing_consent={"state": "something_new"})
    record = rest.customer_record(payload)
    assert record.email == "bob@biller.com" and record.tags == ["vip", "wholesale"]
    assert (record.email_marketing, record.sms_marketing) == ("subscribed", "unknown")


def test_consent_topics_and_tag_topics():
    assert rest.email_consent(sample("customers_email_marketing_consent/update")) == rest.ConsentRecord(
        706405506930370084, email_marketing="not_subscribed")
    assert rest.sms_consent(sample("customers_marketing_consent/update")) == rest.ConsentRecord(
        706405506930370084)  # the sample's state is null: nothing to apply
    assert rest.tag_change(sample("customer.tags_added")) == rest.TagChange(1, ["tag1", "tag2"])
    merge = rest.customer_merge(sample("customers/merge"))
    assert (merge.kept_shopify_id, merge.merged_shopify_id, merge.completed) == (1, 2, False)


def test_checkout_cart_and_product_samples():
    checkout = rest.checkout_record(sample("checkouts/create"))
    assert (checkout.token, checkout.cart_token, checkout.customer_shopify_id, checkout.email) == (
        "123123123", "eeafa272cebfd4b22385bc4b645e762c", 603851970716743426, "example@email.com")
    assert (checkout.total, checkout.line_item_count, checkout.completed_at, checkout.shopify_id) == (
        Decimal("421.88"), 2, None, None)
    assert rest.checkout_deleted(sample("checkouts/delete")) == rest.CheckoutDeletion(
        token=None, shopify_id=981820079255243537, cart_token="eeafa272cebfd4b22385bc4b645e762c")
    cart = rest.cart_record(sample("carts/create"))
    assert (cart.token, cart.total, cart.line_item_count) == ("exampleCartId", Decimal("59.97"), 1)
    assert cart.updated_at == dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc)
    product = rest.product_record(sample("products/update"))
    assert (product.product_type, product.vendor, product.tags) == ("Shirts", "Acme", ["example", "mens", "t-shirt"])


@pytest.mark.django_db
def test_samples_land_in_the_mirror(shop):
    deliver(shop, "checkouts/create", sample("checkouts/create"))
    deliver(shop, "carts/create", sample("carts/create"))
    deliver(shop, "customers/create", sample("customers/create"))
    deliver(shop, "customers_email_marketing_consent/update", sample("customers_email_marketing_consent/update"))
    checkout = Checkout.objects.get()
    assert checkout.total == Decimal("421.88") and checkout.customer.shopify_id == 603851970716743426
    assert Cart.objects.get().total == Decimal("59.97")
    bob = Customer.objects.get(shopify_id=706405506930370084)
    assert (bob.email, bob.email_marketing) == ("bob@biller.com", "not_subscribed")
    deliver(shop, "products/create", sample("products/create"))
    deliver(shop, "products/delete", sample("products/delete"))
    assert Product.objects.get().deleted_at is not None


# -- derived fields -----------------------------------------------------------------------------
@pytest.mark.parametrize("agent, device", [
    (IPHONE, "mobile"), (ANDROID_PHONE, "mobile"), (IPAD, "tablet"), (ANDROID_TABLET, "tablet"),
    (WINDOWS, "desktop"), ("", "unknown"), (None, "unknown")])
def test_device_from_the_user_agent(agent, device):
    payload = dict(sample("orders/create"), client_details={"user_agent": agent})
    assert rest.order_record(payload).device == device


def test_point_of_sale_orders_are_pos_whatever_the_agent():
    payload = dict(sample("orders/create"), source_name="pos", client_details={"user_agent": IPHONE})
    assert rest.order_record(payload).device == "pos"


@pytest.mark.parametrize("lines, speed", [
    ([{"title": "Express Shipping", "code": "express"}], "expedited"),
    ([{"title": "Overnight Shipping", "code": "overnight"}], "expedited"),
    ([{"title": "Priority Mail", "code": None}], "expedited"),
    ([{"title": "Next Day Air", "code": "ups_1"}], "expedited"),
    ([{"title": "FedEx 2-Day", "code": "fedex"}], "expedited"),
    ([{"title": "Local Pickup", "code": "pickup"}], "pickup"),
    ([{"title": "Store", "code": "local"}], "pickup"),
    ([{"title": "Standard Shipping", "code": "standard"}], "standard"),
    ([], "none"),
])
def test_shipping_speed(lines, speed):
    payload = dict(sample("orders/create"), shipping_lines=lines)
    record = rest.order_record(payload)
    assert record.shipping_speed == speed
    assert record.shipping_method == (lines[0]["title"] if lines else "")


def test_money_falls_back_to_the_plain_fields_and_codes_are_listed():
    payload = {key: value for key, value in sample("orders/create").items() if not key.endswith("_set")}
    payload["discount_codes"] = [{"code": "SAVE15", "amount": "15.00", "type": "percentage"}, {"code": None}]
    record = rest.order_record(payload)
    assert (record.total, record.subtotal, record.total_discounts) == (
        Decimal("404.95"), Decimal("404.95"), Decimal("20.00"))
    assert record.total_shipping == Decimal("10.00")   # from the shipping lines
    assert record.discount_codes == ["SAVE15"]


def test_nulls_everywhere_parse_to_defaults():
    payload = {"id": 5, "created_at": "2026-11-20T10:15:00Z", "updated_at": None, "total_price": None,
               "total_price_set": None, "line_items": None, "shipping_lines": None, "customer": None,
               "client_details": None, "refunds": None, "discount_codes": None, "email": None}
    record = rest.order_record(payload)
    assert (record.total, record.line_items, record.refunds, record.customer_shopify_id) == (
        Decimal("0.00"), [], [], None)
    assert record.created_at == dt.datetime(2026, 11, 20, 10, 15, tzinfo=dt.timezone.utc)
    assert (record.device, record.shipping_speed, record.updated_at) == ("unknown", "none", None)


@pytest.mark.parametrize("topic, payload", [
    ("orders/create", {"created_at": "2026-11-20T10:15:00Z"}),
    ("orders/create", {"id": None, "created_at": "2026-11-20T10:15:00Z"}),
    ("orders/create", {"id": 1}),                                   # no created_at either
    ("refunds/create", {"id": 1, "created_at": "2026-11-20T10:15:00Z"}),
    ("checkouts/update", {"created_at": "2026-11-20T10:15:00Z"}),
    ("carts/update", {"line_items": []}),
    ("customers/update", {"email": "a@b.c"}),
    ("customer.tags_added", {"customerId": "gid://shopify/Customer/", "tags": ["x"]}),
    ("products/update", {}),
])
def test_a_payload_without_its_id_is_a_clear_value_error(topic, payload):
    parse = {"orders/create": rest.order_record, "refunds/create": rest.refund_record,
             "checkouts/update": rest.checkout_record, "carts/update": rest.cart_record,
             "customers/update": rest.customer_record, "customer.tags_added": rest.tag_change,
             "products/update": rest.product_record}[topic]
    with pytest.raises(ValueError, match="payload has no usable"):
        parse(payload)


@pytest.mark.django_db
def test_a_bad_payload_is_recorded_as_the_events_error(shop):
    event = deliver(shop, "orders/create", {"total_price": "10.00"})
    assert event.status == EventStatus.PENDING and event.attempts == 1
    assert event.last_error == "PayloadError: order payload has no usable 'id'"
    assert Order.objects.count() == 0
