"""The mirror writer: stale updates never win, guests attach by email, dirty marks what changed."""
import datetime as dt
from decimal import Decimal

import pytest

from segments.mirror.models import Cart, Checkout, Customer, LineItem, Order, Product, Refund
from segments.mirror.records import (
    CartRecord, CheckoutRecord, CustomerRecord, LineItemRecord, OrderRecord, ProductRecord, RefundRecord,
)
from segments.mirror.writer import OrderNotYetKnown, customer_delete, customer_tags_apply, customers_merge, customers_upsert
from segments.mirror.orders import carts_upsert, checkouts_upsert, orders_upsert, products_upsert, refunds_upsert
from segments.shops.models import Shop

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def at(minutes):
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def shop():
    return Shop.objects.create(domain="mirror.myshopify.com")


def order(shopify_id, minutes, customer=None, email="", total="10.00", items=1, **kw):
    return OrderRecord(shopify_id=shopify_id, created_at=T0, updated_at=at(minutes), customer_shopify_id=customer,
                       email=email, total=Decimal(total), line_items=[
                           LineItemRecord(shopify_id=shopify_id * 10 + i, quantity=1, price=Decimal("5.00"),
                                          product_type="Tea") for i in range(items)], **kw)


def test_customer_out_of_order_update_never_rolls_back(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(10), email="NEW@x.com", first_name="New")])
    assert customers_upsert(shop=shop, records=[CustomerRecord(1, at(5), email="old@x.com")]) == []
    c = Customer.objects.get(shop=shop, shopify_id=1)
    assert c.email == "new@x.com" and c.first_name == "New"


def test_dirty_only_on_behaviour_changes(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])
    Customer.objects.update(dirty_at=None)
    # an echo of our own tag write: updated_at moves, nothing we segment on changes
    assert customers_upsert(shop=shop, records=[CustomerRecord(1, at(2), email="a@x.com")])
    assert Customer.objects.get().dirty_at is None
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(3), email="a@x.com", email_marketing="subscribed")])
    assert Customer.objects.get().dirty_at is not None


def test_tags_kept_when_the_source_has_none(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), tags=["vip", "seg:x"])])
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(2), first_name="A")])
    assert Customer.objects.get().tags == ["vip", "seg:x"]


def test_order_with_unknown_customer_creates_a_stub_filled_later(shop):
    orders_upsert(shop=shop, records=[order(100, 1, customer=7)])
    stub = Customer.objects.get(shop=shop, shopify_id=7)
    assert stub.updated_at is None and stub.dirty_at is not None
    customers_upsert(shop=shop, records=[CustomerRecord(7, at(2), email="c@x.com")])
    assert Customer.objects.get(pk=stub.pk).email == "c@x.com"
    assert Order.objects.get(shopify_id=100).customer_id == stub.pk


def test_order_update_replaces_line_items_and_ignores_stale(shop):
    orders_upsert(shop=shop, records=[order(100, 1, items=3)])
    orders_upsert(shop=shop, records=[order(100, 5, items=1, total="20.00")])
    assert orders_upsert(shop=shop, records=[order(100, 3, items=2, total="15.00")]) == []
    o = Order.objects.get(shopify_id=100)
    assert o.total == Decimal("20.00") and LineItem.objects.filter(order=o).count() == 1


def test_guest_orders_attach_to_the_customer_with_that_email(shop):
    orders_upsert(shop=shop, records=[order(100, 1, email="Guest@X.com")])
    checkouts_upsert(shop=shop, records=[CheckoutRecord("tok", T0, at(1), email="guest@x.com")])
    assert Order.objects.get().customer is None
    [pk] = customers_upsert(shop=shop, records=[CustomerRecord(9, at(2), email="guest@x.com")])
    assert Order.objects.get().customer_id == pk and Checkout.objects.get().customer_id == pk
    # and later guest orders attach straight away
    orders_upsert(shop=shop, records=[order(101, 3, email="guest@x.com")])
    assert Order.objects.get(shopify_id=101).customer_id == pk


def test_refund_before_its_order_is_retried(shop):
    with pytest.raises(OrderNotYetKnown):
        refunds_upsert(shop=shop, records=[RefundRecord(5, 100, T0, Decimal("3.00"))])
    orders_upsert(shop=shop, records=[order(100, 1, customer=1)])
    assert refunds_upsert(shop=shop, records=[RefundRecord(5, 100, T0, Decimal("3.00"))]) == 1
    assert refunds_upsert(shop=shop, records=[RefundRecord(5, 100, T0, Decimal("3.00"))]) == 0  # duplicate
    assert Refund.objects.count() == 1


def test_checkout_completion_is_sticky_and_delete_is_final(shop):
    checkouts_upsert(shop=shop, records=[CheckoutRecord("tok", T0, at(1), completed_at=at(1))])
    checkouts_upsert(shop=shop, records=[CheckoutRecord("tok", T0, at(2))])
    assert Checkout.objects.get().completed_at == at(1)


def test_delete_and_merge(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com", first_name="A"),
                                         CustomerRecord(2, at(1), email="b@x.com")])
    orders_upsert(shop=shop, records=[order(100, 1, customer=2)])
    customers_merge(shop=shop, kept_shopify_id=1, merged_shopify_id=2)
    assert Order.objects.get().customer.shopify_id == 1
    assert Customer.objects.get(shopify_id=2).merged_into_id == 1
    assert customer_delete(shop=shop, shopify_id=1)
    gone = Customer.objects.get(shopify_id=1)
    assert gone.deleted_at and gone.email == "" and gone.first_name == ""
    assert customers_upsert(shop=shop, records=[CustomerRecord(1, at(9), email="back@x.com")]) == []


def test_tag_events_are_case_insensitive_sets(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), tags=["VIP"])])
    assert customer_tags_apply(shop=shop, shopify_id=1, added=["vip", "seg:new"])
    assert Customer.objects.get().tags == ["VIP", "seg:new"]
    assert customer_tags_apply(shop=shop, shopify_id=1, removed=["SEG:NEW"])
    assert not customer_tags_apply(shop=shop, shopify_id=1, removed=["absent"])
    assert Customer.objects.get().tags == ["VIP"]


def test_products_and_carts(shop):
    products_upsert(shop=shop, records=[ProductRecord(1, at(2), title="Tea", product_type="Tea", tags=["a"])])
    products_upsert(shop=shop, records=[ProductRecord(1, at(1), title="Old")])
    assert Product.objects.get().title == "Tea"
    carts_upsert(shop=shop, records=[CartRecord("c1", T0, at(1), total=Decimal("5")),
                                     CartRecord("c1", T0, at(3), total=Decimal("9"))])
    assert Cart.objects.get().total == Decimal("9")


def test_shops_never_see_each_other(shop):
    other = Shop.objects.create(domain="other.myshopify.com")
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])
    customers_upsert(shop=other, records=[CustomerRecord(1, at(1), email="b@x.com")])
    orders_upsert(shop=other, records=[order(100, 1, email="a@x.com")])
    assert Order.objects.get().customer is None   # shop A's customer is not shop B's guest
    assert Customer.objects.filter(shopify_id=1).count() == 2


def test_a_poorer_source_never_erases_what_a_richer_one_said(shop):
    """GraphQL orders have no device; customer webhooks have no consent; both say "unknown"."""
    orders_upsert(shop=shop, records=[order(100, 1, device="mobile")])
    orders_upsert(shop=shop, records=[order(100, 2, device="unknown", total="12.00")])
    assert (Order.objects.get().device, Order.objects.get().total) == ("mobile", Decimal("12.00"))
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email_marketing="subscribed")])
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(2))])
    assert Customer.objects.get().email_marketing == "subscribed"


def test_within_one_second_an_order_only_moves_forward(shop):
    orders_upsert(shop=shop, records=[order(100, 1, total_refunded=Decimal("5.00"))])
    # the same second, before the refund: older, whatever order the deliveries came in
    assert orders_upsert(shop=shop, records=[order(100, 1)]) == []
    assert Order.objects.get().total_refunded == Decimal("5.00")
    assert orders_upsert(shop=shop, records=[order(100, 1, total_refunded=Decimal("7.00"))])


def test_line_items_take_the_product_type_of_the_mirrors_product(shop):
    products_upsert(shop=shop, records=[ProductRecord(7, at(1), product_type="Coffee")])
    record = OrderRecord(shopify_id=100, created_at=T0, updated_at=at(1), line_items=[
        LineItemRecord(1, 1, Decimal("5"), product_id=7), LineItemRecord(2, 1, Decimal("5"), product_id=8),
        LineItemRecord(3, 1, Decimal("5"), product_id=7, product_type="Tea")])
    orders_upsert(shop=shop, records=[record])
    assert dict(LineItem.objects.values_list("shopify_id", "product_type")) == {1: "Coffee", 2: "", 3: "Tea"}


def test_tag_changes_dirty_only_for_tags_we_do_not_own(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1))])
    Customer.objects.update(dirty_at=None)
    assert customer_tags_apply(shop=shop, shopify_id=1, added=["seg:vip"])
    assert Customer.objects.get().dirty_at is None
    assert customer_tags_apply(shop=shop, shopify_id=1, added=["VIP"])
    assert Customer.objects.get().dirty_at is not None


def test_late_consent_delivery_does_not_roll_back(shop):
    from segments.mirror.writer import customer_consent_apply

    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])
    assert customer_consent_apply(shop=shop, shopify_id=1, email_marketing="unsubscribed", at=at(10))
    assert not customer_consent_apply(shop=shop, shopify_id=1, email_marketing="subscribed", at=at(5))
    assert Customer.objects.get().email_marketing == "unsubscribed"
    assert customer_consent_apply(shop=shop, shopify_id=1, email_marketing="subscribed", at=at(20))
    assert Customer.objects.get().email_marketing == "subscribed"


def test_large_batches_take_the_array_path_with_the_same_rules(shop):
    from segments.mirror.sql import ARRAY_MIN_ROWS

    many = [CustomerRecord(i, at(5), email=f"c{i}@x.com", tags=["vip", f"t{i}"]) for i in range(ARRAY_MIN_ROWS + 50)]
    assert len(customers_upsert(shop=shop, records=many)) == len(many)
    stale = [CustomerRecord(i, at(1), email="old@x.com") for i in range(ARRAY_MIN_ROWS + 50)]
    assert customers_upsert(shop=shop, records=stale) == []
    c = Customer.objects.get(shop=shop, shopify_id=7)
    assert c.email == "c7@x.com" and c.tags == ["vip", "t7"]
    orders_upsert(shop=shop, records=[order(1000 + i, 1, customer=i, items=2) for i in range(ARRAY_MIN_ROWS)])
    assert LineItem.objects.filter(shop=shop).count() == 2 * ARRAY_MIN_ROWS
