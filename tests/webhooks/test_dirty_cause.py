"""A delivery's topic becomes the dirty_cause of the customers it dirties, from the endpoint to the mirror."""
import uuid

import pytest

from segments.mirror.cause import current_dirty_cause
from segments.mirror.models import Customer
from segments.shops.models import Shop
from tests.webhooks.test_handlers import customer, deliver, order
from tests.webhooks.test_receive import post
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return Shop.objects.create(domain="dirtycause.myshopify.com")


def state(shopify_id=1):
    return Customer.objects.values_list("dirty_at", "dirty_cause").get(shopify_id=shopify_id)


def test_an_orders_create_delivery_end_to_end_names_its_topic(client, settings, shop,
                                                               django_capture_on_commit_callbacks):
    settings.REDIS_URL = ""          # in-process: the delivery is drained when its recording commits
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, settings, "customers/create", shop.domain, customer(1)).status_code == 200
    assert state()[1] == "customers/create"
    Customer.objects.update(dirty_at=None, dirty_cause="")

    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, settings, "orders/create", shop.domain, order(customer=1)).status_code == 200

    assert WebhookEvent.objects.get(topic="orders/create").status == EventStatus.PROCESSED
    dirty_at, cause = state()
    assert dirty_at is not None and cause == "orders/create"
    assert current_dirty_cause() == ""      # nothing leaks past the delivery


def test_a_customers_update_echo_of_our_own_tags_keeps_mark_and_cause(shop):
    deliver(shop, "customers/create", customer(1))
    deliver(shop, "orders/create", order(customer=1))
    before = state()
    assert before[0] is not None and before[1] == "orders/create"
    stamp = Customer.objects.get().updated_at

    # tagsAdd of our seg: tag fires customer.tags_added and customers/update (with or without tags)
    deliver(shop, "customer.tags_added", {"customerId": "gid://shopify/Customer/1", "tags": ["seg:vip"]})
    echo = deliver(shop, "customers/update", customer(1, minutes=5))
    again = deliver(shop, "customers/update", customer(1, minutes=6, tags="seg:vip"))

    assert echo.status == again.status == EventStatus.PROCESSED
    c = Customer.objects.get()
    assert c.updated_at > stamp and c.tags == ["seg:vip"]     # the echoes did apply
    assert state() == before                                  # and dirtied no one


def test_tag_topics_name_themselves_only_for_merchant_tags(shop):
    deliver(shop, "customers/create", customer(1))
    Customer.objects.update(dirty_at=None, dirty_cause="")
    tag = {"customerId": "gid://shopify/Customer/1", "tags": ["seg:vip"], "occurredAt": "2026-11-20T15:05:00Z"}
    deliver(shop, "customer.tags_added", tag)
    assert Customer.objects.get().tags == ["seg:vip"] and state() == (None, "")

    deliver(shop, "customer.tags_added", {**tag, "tags": ["wholesale"]})
    dirty_at, cause = state()
    assert dirty_at is not None and cause == "customer.tags_added"


def test_the_latest_delivery_to_dirty_a_customer_names_the_cause(shop):
    deliver(shop, "orders/create", order(customer=1))
    assert state()[1] == "orders/create"     # the stub made for the order
    deliver(shop, "orders/cancelled", order(customer=1, minutes=3, cancelled_at="2026-11-20T15:03:00Z"))
    assert state()[1] == "orders/cancelled"
    deliver(shop, "customers/update", customer(1, minutes=4))   # fills the stub: a behaviour change
    assert state()[1] == "customers/update"


def test_a_failed_delivery_leaves_no_cause_and_its_retry_names_the_topic(shop):
    refund = {"id": 9, "order_id": 100, "created_at": "2026-11-20T15:05:00Z",
              "transactions": [{"kind": "refund", "status": "success", "amount": "5.00"}]}
    event = deliver(shop, "refunds/create", refund)          # its order has not arrived yet
    assert event.status == EventStatus.PENDING and event.attempts == 1
    assert current_dirty_cause() == ""
    deliver(shop, "orders/create", order(customer=1))
    Customer.objects.update(dirty_at=None, dirty_cause="")

    from webhooks.services import webhook_event_process
    assert webhook_event_process(event_pk=event.pk) == "processed"

    dirty_at, cause = state()
    assert dirty_at is not None and cause == "refunds/create"


def test_a_delivery_for_another_shop_dirties_nobody(shop):
    deliver(shop, "orders/create", order(customer=1))
    Customer.objects.update(dirty_at=None, dirty_cause="")
    other = WebhookEvent.objects.create(webhook_id=str(uuid.uuid4()), shop_domain="gone.myshopify.com",
                                        topic="orders/create", payload=order(customer=1, minutes=9))
    from webhooks.services import webhook_event_process
    webhook_event_process(event_pk=other.pk)
    assert state() == (None, "")
