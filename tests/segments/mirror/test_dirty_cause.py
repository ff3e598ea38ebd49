"""Customer.dirty_cause: every writer statement that sets dirty_at names the current write's cause with it."""
import datetime as dt
import threading
from decimal import Decimal

import pytest

from segments.mirror.cause import MAX_LENGTH, current_dirty_cause, dirty_cause
from segments.mirror.models import Checkout, Customer
from segments.mirror.records import CheckoutRecord, CustomerRecord, LineItemRecord, OrderRecord, RefundRecord
from segments.mirror.writer import customer_consent_apply, customer_delete, customer_tags_apply, customers_merge, customers_upsert, mark_dirty
from segments.mirror.orders import checkouts_upsert, orders_delete, orders_upsert, refunds_upsert
from segments.shops.models import Shop

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def at(minutes):
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def shop():
    return Shop.objects.create(domain="cause.myshopify.com")


def order(shopify_id, minutes, customer=None, email="", **kw):
    return OrderRecord(shopify_id=shopify_id, created_at=T0, updated_at=at(minutes), customer_shopify_id=customer,
                       email=email, total=Decimal("10.00"),
                       line_items=[LineItemRecord(shopify_id=shopify_id * 10, quantity=1, price=Decimal("10.00"))],
                       **kw)


def marks(shop, **filters):
    """shopify_id -> (dirty_at is set, dirty_cause)."""
    return {sid: (at_ is not None, cause) for sid, at_, cause in
            Customer.objects.filter(shop=shop, **filters).values_list("shopify_id", "dirty_at", "dirty_cause")}


def clean(shop):
    Customer.objects.filter(shop=shop).update(dirty_at=None, dirty_cause="")


# -- the context ---------------------------------------------------------------------------------
def test_the_cause_is_unknown_outside_a_block_and_the_innermost_block_wins():
    assert current_dirty_cause() == ""
    with dirty_cause("orders/create") as cause:
        assert cause == current_dirty_cause() == "orders/create"
        with dirty_cause("reconcile"):
            assert current_dirty_cause() == "reconcile"
        assert current_dirty_cause() == "orders/create"
    assert current_dirty_cause() == ""


def test_the_cause_is_restored_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with dirty_cause("orders/create"):
            raise RuntimeError("boom")
    assert current_dirty_cause() == ""


def test_a_long_cause_is_cut_to_the_column_and_none_is_unknown():
    with dirty_cause("x" * 300):
        assert current_dirty_cause() == "x" * MAX_LENGTH
    with dirty_cause(None):
        assert current_dirty_cause() == ""
    assert Customer._meta.get_field("dirty_cause").max_length == MAX_LENGTH


def test_threads_do_not_see_each_others_cause():
    seen = []
    with dirty_cause("orders/create"):
        worker = threading.Thread(target=lambda: seen.append(current_dirty_cause()))
        worker.start()
        worker.join()
    assert seen == [""]


# -- every writer site ---------------------------------------------------------------------------
def test_without_a_block_the_cause_is_empty(shop):
    customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])
    assert marks(shop) == {1: (True, "")}


def test_customers_upsert_sets_the_cause_on_insert_and_on_a_behaviour_change(shop):
    with dirty_cause("customers/create"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])
    assert marks(shop) == {1: (True, "customers/create")}
    clean(shop)
    with dirty_cause("customers/update"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(2), email="b@x.com")])
    assert marks(shop) == {1: (True, "customers/update")}


def test_customers_upsert_without_a_behaviour_change_keeps_mark_and_cause(shop):
    with dirty_cause("orders/create"):
        orders_upsert(shop=shop, records=[order(100, 1, customer=1)])   # a stub, dirty for the order
    with dirty_cause("customers/create"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])  # fills the stub
    before = Customer.objects.values_list("dirty_at", "dirty_cause").get()
    assert before[1] == "customers/create"
    # our own tag write echoing back: updated_at and tags move, nothing we segment on does
    with dirty_cause("customers/update"):
        assert customers_upsert(shop=shop, records=[CustomerRecord(1, at(2), email="a@x.com", tags=["seg:vip"])])
    assert Customer.objects.values_list("dirty_at", "dirty_cause").get() == before
    assert Customer.objects.get().tags == ["seg:vip"]


def test_a_stale_customer_delivery_keeps_mark_and_cause(shop):
    with dirty_cause("customers/update"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(5), email="new@x.com")])
    with dirty_cause("reconcile"):
        assert customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="old@x.com")]) == []
    assert marks(shop) == {1: (True, "customers/update")}


def test_a_large_customer_batch_sets_the_cause_too(shop):
    """Batches of 100+ rows travel as typed arrays on PostgreSQL: the cause column with them."""
    records = [CustomerRecord(i, at(1), email=f"c{i}@x.com") for i in range(1, 151)]
    with dirty_cause("backfill"):
        customers_upsert(shop=shop, records=records)
    assert set(marks(shop).values()) == {(True, "backfill")} and len(marks(shop)) == 150
    clean(shop)
    changed = [CustomerRecord(i, at(2), email=f"c{i}@x.com" if i % 2 else f"d{i}@x.com") for i in range(1, 151)]
    with dirty_cause("reconcile"):
        customers_upsert(shop=shop, records=changed)
    assert {sid: m for sid, m in marks(shop).items() if m[0]} == {i: (True, "reconcile") for i in range(2, 151, 2)}
    assert set(marks(shop, dirty_at__isnull=True).values()) == {(False, "")}


def test_orders_mark_their_customer_and_stubs_with_the_cause(shop):
    with dirty_cause("customers/create"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(1), email="a@x.com")])
    clean(shop)
    with dirty_cause("orders/create"):
        orders_upsert(shop=shop, records=[order(100, 1, customer=1), order(101, 1, customer=2)])  # 2: a stub
    assert marks(shop) == {1: (True, "orders/create"), 2: (True, "orders/create")}
    clean(shop)
    with dirty_cause("orders/create"):   # a duplicate delivery applies nothing and dirties no one
        orders_upsert(shop=shop, records=[order(100, 1, customer=1)])
    assert marks(shop) == {1: (False, ""), 2: (False, "")}
    with dirty_cause("orders/updated"):
        orders_upsert(shop=shop, records=[order(100, 2, customer=1, cancelled_at=at(2))])
    assert marks(shop) == {1: (True, "orders/updated"), 2: (False, "")}


def test_orders_delete_refunds_and_checkouts_carry_the_cause(shop):
    with dirty_cause("orders/create"):
        orders_upsert(shop=shop, records=[order(100, 1, customer=1), order(101, 1, customer=2)])
    clean(shop)
    with dirty_cause("refunds/create"):
        refunds_upsert(shop=shop, records=[RefundRecord(5, 100, at(2), Decimal("3.00"))])
    assert marks(shop) == {1: (True, "refunds/create"), 2: (False, "")}
    with dirty_cause("reconcile"):
        orders_delete(shop=shop, shopify_ids=[101])
    assert marks(shop)[2] == (True, "reconcile")
    clean(shop)
    with dirty_cause("checkouts/update"):
        checkouts_upsert(shop=shop, records=[CheckoutRecord("tok", T0, at(1), customer_shopify_id=1)])
    assert marks(shop) == {1: (True, "checkouts/update"), 2: (False, "")}
    assert Checkout.objects.get().customer.shopify_id == 1


def test_guest_activity_linked_by_email_names_the_customer_write(shop):
    with dirty_cause("orders/create"):
        orders_upsert(shop=shop, records=[order(100, 1, email="guest@x.com")])
    assert not Customer.objects.exists()
    with dirty_cause("customers/create"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(2), email="guest@x.com")])
    assert marks(shop) == {1: (True, "customers/create")}


def test_delete_merge_consent_and_tags_carry_the_cause(shop):
    with dirty_cause("customers/create"):
        customers_upsert(shop=shop, records=[CustomerRecord(i, at(1), email=f"c{i}@x.com") for i in (1, 2, 3)])
    clean(shop)
    with dirty_cause("customers/delete"):
        assert customer_delete(shop=shop, shopify_id=3)
    with dirty_cause("customers/merge"):
        customers_merge(shop=shop, kept_shopify_id=1, merged_shopify_id=2)
    assert marks(shop) == {1: (True, "customers/merge"), 2: (True, "customers/merge"), 3: (True, "customers/delete")}
    clean(shop)
    with dirty_cause("customers_email_marketing_consent/update"):
        assert customer_consent_apply(shop=shop, shopify_id=1, email_marketing="subscribed", at=at(3))
    assert marks(shop)[1] == (True, "customers_email_marketing_consent/update")
    clean(shop)
    with dirty_cause("customer.tags_added"):
        assert customer_tags_apply(shop=shop, shopify_id=1, added=["seg:vip"])    # our own: no mark
    assert marks(shop)[1] == (False, "")
    with dirty_cause("customer.tags_added"):
        assert customer_tags_apply(shop=shop, shopify_id=1, added=["wholesale"])
    assert marks(shop)[1] == (True, "customer.tags_added")


def test_mark_dirty_sets_both(shop):
    with dirty_cause("customers/create"):
        customers_upsert(shop=shop, records=[CustomerRecord(1, at(1))])
    clean(shop)
    with dirty_cause("reconcile"):
        assert mark_dirty(shop=shop, customer_pks=Customer.objects.values_list("pk", flat=True)) == 1
    assert marks(shop) == {1: (True, "reconcile")}
