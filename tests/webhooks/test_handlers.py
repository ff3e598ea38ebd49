"""Handlers run through webhook_event_process: out of order, twice, early, late, for a shop we left."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from segments.mirror.models import Cart, Checkout, Customer, LineItem, Order, Refund
from segments.shops.models import Shop, ShopStatus
from tests.segments.mirror.test_rest import sample
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_event_process

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)


def at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()


@pytest.fixture
def shop():
    return Shop.objects.create(domain="handlers.myshopify.com")


def deliver(shop, topic, payload, triggered_at: dt.datetime | None = None) -> WebhookEvent:
    event = WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain=shop.domain, topic=topic,
                                        payload=payload, triggered_at=triggered_at)
    webhook_event_process(event_pk=event.pk)
    event.refresh_from_db()
    return event


def order(order_id=100, minutes=0, customer=None, email="buyer@example.com", total="50.00", lines=2, **extra):
    payload = {
        "id": order_id, "created_at": at(0), "updated_at": at(minutes), "processed_at": at(0), "email": email,
        "name": f"#{order_id}", "test": False, "financial_status": "paid", "currency": "USD",
        "total_price": total, "total_price_set": {"shop_money": {"amount": total, "currency_code": "USD"}},
        "subtotal_price": total, "total_discounts": "0.00", "source_name": "web", "discount_codes": [],
        "customer": {"id": customer, "email": email} if customer else None, "cancelled_at": None,
        "line_items": [{"id": order_id * 10 + i, "product_id": 7, "variant_id": 70, "quantity": 1, "price": "25.00",
                        "total_discount": "0.00", "title": "Tea", "vendor": "Leaf"} for i in range(lines)],
        "shipping_lines": [{"title": "Express Shipping", "code": "express", "price": "5.00"}], "refunds": [],
    }
    payload.update(extra)
    return payload


def customer(customer_id=1, minutes=0, email="ann@example.com", **extra):
    return {"id": customer_id, "created_at": at(0), "updated_at": at(minutes), "email": email, "first_name": "Ann",
            "last_name": "Lee", "state": "enabled", "phone": None, **extra}


def checkout(token="tok", minutes=0, email="guest@example.com", customer_id=None, completed=None):
    return {"token": token, "cart_token": "cart", "created_at": at(0), "updated_at": at(minutes), "email": email,
            "total_price": "30.00", "completed_at": completed, "line_items": [{"quantity": 1}],
            "customer": {"id": customer_id} if customer_id else None}


def test_out_of_order_update_never_rolls_back(shop):
    deliver(shop, "orders/create", order(minutes=0, total="50.00"))
    deliver(shop, "orders/updated", order(minutes=10, total="20.00", lines=1, financial_status="partially_refunded"))
    stale = deliver(shop, "orders/paid", order(minutes=0, total="50.00"))
    assert stale.status == EventStatus.PROCESSED
    o = Order.objects.get()
    assert (o.total, o.financial_status, o.line_items.count()) == (Decimal("20.00"), "partially_refunded", 1)
    assert (o.shipping_speed, o.shipping_method) == ("expedited", "Express Shipping")


def test_duplicate_delivery_changes_nothing(shop):
    deliver(shop, "orders/create", order(customer=1))
    Customer.objects.update(dirty_at=None)
    before = list(LineItem.objects.order_by("pk").values_list("pk", "price"))
    again = deliver(shop, "orders/create", order(customer=1))   # a second delivery (its own webhook id)
    assert again.status == EventStatus.PROCESSED
    assert list(LineItem.objects.order_by("pk").values_list("pk", "price")) == before   # not rewritten
    assert Customer.objects.get().dirty_at is None                                     # nobody to recompute


def test_refund_before_its_order_is_retried_then_applied(shop):
    refund = {"id": 9, "order_id": 100, "created_at": at(5),
              "transactions": [{"kind": "refund", "status": "success", "amount": "25.00"}]}
    early = deliver(shop, "refunds/create", refund)
    assert (early.status, early.attempts) == (EventStatus.PENDING, 1)
    assert early.last_error.startswith("OrderNotYetKnown") and early.next_attempt_at > early.received_at
    assert Refund.objects.count() == 0
    deliver(shop, "orders/create", order(customer=1))
    assert webhook_event_process(event_pk=early.pk) == "processed"   # what the sweeper does when it is due
    assert Refund.objects.get().amount == Decimal("25.00")


def test_refunds_of_test_orders_are_not_retried_forever(shop):
    refund = {"id": 9, "order_id": 100, "created_at": at(5),
              "transactions": [{"kind": "refund", "status": "success", "amount": "25.00", "test": True}]}
    assert deliver(shop, "refunds/create", refund).status == EventStatus.PROCESSED
    assert Refund.objects.count() == 0


def test_guest_checkout_attaches_when_the_customer_appears(shop):
    deliver(shop, "checkouts/create", checkout(email="Guest@Example.com"))
    assert Checkout.objects.get().customer is None
    deliver(shop, "customers/create", customer(5, email="guest@example.com"))
    assert Checkout.objects.get().customer.shopify_id == 5


def test_an_orders_checkout_token_closes_its_checkout(shop):
    deliver(shop, "checkouts/create", checkout(token="ck1"))
    deliver(shop, "orders/create", order(checkout_token="ck1"))
    assert Checkout.objects.get().completed_at == T0
    # and the checkouts/update that follows does not reopen it
    deliver(shop, "checkouts/update", checkout(token="ck1", minutes=1))
    assert Checkout.objects.get().completed_at == T0


def test_checkout_delete_by_id(shop):
    payload = dict(checkout(token="ck2"), id=77)
    deliver(shop, "checkouts/create", payload)
    deliver(shop, "checkouts/delete", {"id": 77, "cart_token": "cart"})
    assert Checkout.objects.get().deleted_at is not None


def test_checkout_delete_finds_a_checkout_recorded_from_shopifys_create_shape(shop):
    """Shopify's checkouts/create|update bodies name a checkout by token and cart token, with no id;
    its checkouts/delete body by id and cart token, with no token (tests/webhooks/samples)."""
    created, deleted = sample("checkouts/create"), sample("checkouts/delete")
    assert "id" not in created and "token" not in deleted and created["cart_token"] == deleted["cart_token"]
    deliver(shop, "checkouts/create", created)
    other = deliver(shop, "checkouts/create", dict(created, token="another", cart_token="another-cart"))
    assert other.status == EventStatus.PROCESSED
    Customer.objects.update(dirty_at=None)

    assert deliver(shop, "checkouts/delete", deleted).status == EventStatus.PROCESSED
    gone = Checkout.objects.get(token=created["token"])
    assert gone.deleted_at is not None
    assert gone.customer.dirty_at is not None          # its abandoned-checkout metrics are recomputed
    assert Checkout.objects.get(token="another").deleted_at is None
    # a later update of the deleted checkout does not bring it back
    deliver(shop, "checkouts/update", dict(created, updated_at="2030-01-01T00:00:00-05:00"))
    assert Checkout.objects.get(token=created["token"]).deleted_at is not None


def test_checkout_delete_from_devstores_bodies(shop, tmp_path):
    from devstore import mutations, payloads
    from devstore.state import DevStore

    store = DevStore(tmp_path / "devstore.db")
    store.shop_create(shop.domain)
    sent = []
    store.subscribe(lambda event: sent.append((event.topic, payloads.build(store, event))))
    lines = [{"title": "Tea", "price_cents": 1200}]
    kept = mutations.checkout_create(store, shop.domain, line_items=lines, email="a@example.com")
    dropped = mutations.checkout_create(store, shop.domain, line_items=lines, email="b@example.com")
    mutations.checkout_update(store, shop.domain, dropped, line_items=lines * 2)
    mutations.checkout_delete(store, shop.domain, dropped)
    store.close()
    for topic, body in sent:
        assert deliver(shop, topic, body).status == EventStatus.PROCESSED
    assert kept != dropped
    deleted = {c.email: c.deleted_at is not None for c in Checkout.objects.all()}
    assert deleted == {"a@example.com": False, "b@example.com": True}


def test_checkout_delete_leaves_a_checkout_with_another_id_on_the_same_cart(shop):
    deliver(shop, "checkouts/create", dict(checkout(token="ck3"), id=78))
    deliver(shop, "checkouts/delete", {"id": 79, "cart_token": "cart"})
    assert Checkout.objects.get().deleted_at is None


def test_customer_delete_keeps_a_tombstone(shop):
    deliver(shop, "customers/create", customer(1))
    deliver(shop, "customers/delete", {"id": 1, "tax_exemptions": []})
    gone = Customer.objects.get()
    assert gone.deleted_at is not None and gone.email == ""
    deliver(shop, "customers/update", customer(1, minutes=5, email="back@example.com"))
    assert Customer.objects.get().email == ""      # a late update never resurrects personal data


def test_customers_merge_moves_history_when_completed(shop):
    deliver(shop, "customers/create", customer(1))
    deliver(shop, "orders/create", order(customer=2, email="two@example.com"))
    merge = {"admin_graphql_api_customer_kept_id": "gid://shopify/Customer/1",
             "admin_graphql_api_customer_deleted_id": "gid://shopify/Customer/2", "status": "failed"}
    deliver(shop, "customers/merge", merge)
    assert Order.objects.get().customer.shopify_id == 2              # a failed merge changes nothing
    deliver(shop, "customers/merge", dict(merge, status="completed"))
    assert Order.objects.get().customer.shopify_id == 1
    assert Customer.objects.get(shopify_id=2).merged_into_id == 1


def test_our_own_tag_writes_echo_back_without_dirtying(shop):
    deliver(shop, "customers/create", customer(1, email_marketing_consent={"state": "subscribed"}))
    Customer.objects.update(dirty_at=None)
    # tagsAdd fires customer.tags_added and customers/update (no consent, no tags since 2025-01)
    deliver(shop, "customer.tags_added", {"customerId": "gid://shopify/Customer/1", "tags": ["seg:vip"]})
    deliver(shop, "customers/update", customer(1, minutes=1))
    c = Customer.objects.get()
    assert (c.tags, c.email_marketing, c.dirty_at) == (["seg:vip"], "subscribed", None)
    deliver(shop, "customer.tags_removed", {"customerId": "gid://shopify/Customer/1", "tags": ["SEG:VIP"]})
    assert (Customer.objects.get().tags, Customer.objects.get().dirty_at) == ([], None)


def test_merchant_tags_do_dirty(shop):
    deliver(shop, "customers/create", customer(1))
    Customer.objects.update(dirty_at=None)
    deliver(shop, "customer.tags_added", {"customerId": "gid://shopify/Customer/1", "tags": ["wholesale"]})
    c = Customer.objects.get()
    assert c.tags == ["wholesale"] and c.dirty_at is not None


def test_a_tag_event_older_than_the_last_one_about_that_tag_changes_nothing(shop):
    deliver(shop, "customers/create", customer(1))
    gid = "gid://shopify/Customer/1"
    # the merchant added vip at 12:00 and removed it at 12:05; the add's first attempt failed, so
    # the removal is applied first and the retried add arrives last
    deliver(shop, "customer.tags_removed", {"customerId": gid, "tags": ["vip"], "occurredAt": at(5)})
    Customer.objects.update(dirty_at=None)
    deliver(shop, "customer.tags_added", {"customerId": gid, "tags": ["VIP", "wholesale"], "occurredAt": at(0)})
    c = Customer.objects.get()
    assert c.tags == ["wholesale"]          # vip stays removed; the other tag of the event is new, so it lands
    # a later add of vip is applied
    deliver(shop, "customer.tags_added", {"customerId": gid, "tags": ["vip"], "occurredAt": at(6)})
    assert Customer.objects.get().tags == ["wholesale", "vip"]


def test_tag_event_before_the_customer_is_kept(shop):
    deliver(shop, "customer.tags_added", {"customerId": "gid://shopify/Customer/3", "tags": ["vip"]})
    deliver(shop, "customers/create", customer(3))
    c = Customer.objects.get()
    assert (c.tags, c.email) == (["vip"], "ann@example.com")


def test_consent_topics_set_their_channel(shop):
    deliver(shop, "customers/create", customer(1))
    Customer.objects.update(dirty_at=None)
    deliver(shop, "customers_email_marketing_consent/update",
            {"customer_id": 1, "email_address": "ann@example.com",
             "email_marketing_consent": {"state": "subscribed", "consent_updated_at": at(2)}})
    deliver(shop, "customers_marketing_consent/update",
            {"id": 1, "phone": "+15550000000", "sms_marketing_consent": {"state": "unsubscribed"}})
    c = Customer.objects.get()
    assert (c.email_marketing, c.sms_marketing) == ("subscribed", "unsubscribed") and c.dirty_at is not None
    deliver(shop, "customers/update", customer(1, minutes=5))   # no consent in it: kept
    assert Customer.objects.get().email_marketing == "subscribed"


def email_consent(state: str, updated_at: str | None, customer_id: int = 1) -> dict:
    """Shopify's customers_email_marketing_consent/update sample, for this customer and state."""
    body = sample("customers_email_marketing_consent/update")
    consent = dict(body["email_marketing_consent"], state=state, consent_updated_at=updated_at)
    return dict(body, customer_id=customer_id, email_marketing_consent=consent)


def sms_consent(state: str, updated_at: str | None, customer_id: int = 1) -> dict:
    body = sample("customers_marketing_consent/update")
    consent = dict(body["sms_marketing_consent"], state=state, consent_updated_at=updated_at)
    return dict(body, id=customer_id, sms_marketing_consent=consent)


def when(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_a_consent_without_a_time_is_applied_after_a_dated_one_by_when_it_was_triggered(shop):
    deliver(shop, "customers/create", customer(1))
    deliver(shop, "customers_email_marketing_consent/update", email_consent("subscribed", at(10)), when(10))
    # Shopify's sample shape: consent_updated_at null; the delivery was triggered later
    deliver(shop, "customers_email_marketing_consent/update", email_consent("not_subscribed", None), when(20))
    assert Customer.objects.get().email_marketing == "not_subscribed"
    deliver(shop, "customers_marketing_consent/update", sms_consent("subscribed", at(10)), when(10))
    deliver(shop, "customers_marketing_consent/update", sms_consent("unsubscribed", None), when(20))
    assert Customer.objects.get().sms_marketing == "unsubscribed"


def test_an_older_consent_never_wins_over_one_held_without_its_own_time(shop):
    deliver(shop, "customers/create", customer(1))
    deliver(shop, "customers_email_marketing_consent/update", email_consent("unsubscribed", None), when(20))
    # an earlier change, delivered late (its first attempt failed): it is older than what is held
    late = deliver(shop, "customers_email_marketing_consent/update", email_consent("subscribed", at(5)), when(5))
    assert late.status == EventStatus.PROCESSED
    assert Customer.objects.get().email_marketing == "unsubscribed"
    deliver(shop, "customers_marketing_consent/update", sms_consent("unsubscribed", None), when(20))
    deliver(shop, "customers_marketing_consent/update", sms_consent("subscribed", None), when(15))
    assert Customer.objects.get().sms_marketing == "unsubscribed"
    # a later one applies
    deliver(shop, "customers_email_marketing_consent/update", email_consent("subscribed", at(25)), when(25))
    assert Customer.objects.get().email_marketing == "subscribed"


def test_consent_read_with_the_customer_is_as_old_as_the_customers_updated_at(shop):
    from segments.mirror.records import CustomerRecord
    from segments.mirror.writer import customers_upsert

    # the history import (GraphQL) read the customer as of 12:30, consent included
    customers_upsert(shop=shop, records=[CustomerRecord(1, when(30), email="ann@example.com",
                                                        email_marketing="subscribed", sms_marketing="subscribed")])
    # a change from 12:10 delivered late is older than that
    deliver(shop, "customers_email_marketing_consent/update", email_consent("unsubscribed", at(10)), when(10))
    deliver(shop, "customers_marketing_consent/update", sms_consent("unsubscribed", None), when(10))
    c = Customer.objects.get()
    assert (c.email_marketing, c.sms_marketing) == ("subscribed", "subscribed")
    # a change from 12:50 is newer; a customer read as of 12:45 does not take it back
    deliver(shop, "customers_email_marketing_consent/update", email_consent("unsubscribed", at(50)), when(50))
    customers_upsert(shop=shop, records=[CustomerRecord(1, when(45), email="ann@example.com",
                                                        email_marketing="subscribed")])
    assert Customer.objects.get().email_marketing == "unsubscribed"
    # nor does one as of 13:00 that carries no consent (webhooks since 2025-01); one that does, as of 13:10, wins
    deliver(shop, "customers/update", customer(1, minutes=60))
    assert Customer.objects.get().email_marketing == "unsubscribed"
    customers_upsert(shop=shop, records=[CustomerRecord(1, when(70), email="ann@example.com",
                                                        email_marketing="subscribed")])
    assert Customer.objects.get().email_marketing == "subscribed"


def test_a_shop_we_no_longer_serve_gets_nothing(shop):
    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.UNINSTALLED)
    for topic, payload in (("orders/create", order()), ("customers/create", customer()),
                           ("checkouts/create", checkout()), ("carts/create", {"token": "c", "created_at": at(0)})):
        assert deliver(shop, topic, payload).status == EventStatus.PROCESSED
    assert (Order.objects.count(), Customer.objects.count(), Checkout.objects.count(), Cart.objects.count()) == (
        0, 0, 0, 0)
