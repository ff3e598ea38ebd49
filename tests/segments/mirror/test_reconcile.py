"""Reconciliation against devstore: changes whose webhooks were lost are repaired from `updated_at:>` queries."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from segments.mirror.models import BackfillStatus, Checkout, Customer, Order, ShopSync
from segments.mirror.reconcile import RESOURCES, changed_since, shop_reconcile
from segments.mirror.tasks import shops_reconcile_task
from segments.shops import graphql as shop_graphql
from tests.segments.mirror.test_backfill import devstore_counts, mirror_counts, run_backfill, seeded_install

pytestmark = pytest.mark.django_db


def stamped(rows) -> set[tuple[int, dt.datetime]]:
    return {(row[0], dt.datetime.fromisoformat(row[1])) for row in rows}


def devstore_versions(devstore, domain: str) -> dict:
    conn = devstore.store.conn()
    return {
        "customers": stamped(conn.execute("SELECT id, updated_at FROM customers WHERE shop = ?", (domain,))),
        "orders": stamped(conn.execute("SELECT id, updated_at FROM orders WHERE shop = ? AND test = 0", (domain,))),
        "checkouts": stamped(conn.execute("SELECT id, updated_at FROM checkouts WHERE shop = ? "
                                          "AND completed_at IS NULL", (domain,))),
    }


def mirror_versions(shop) -> dict:
    return {
        "customers": set(Customer.objects.filter(shop=shop).values_list("shopify_id", "updated_at")),
        "orders": set(Order.objects.filter(shop=shop).values_list("shopify_id", "updated_at")),
        "checkouts": set(Checkout.objects.filter(shop=shop, completed_at__isnull=True)
                         .values_list("shopify_id", "updated_at")),
    }


@pytest.fixture
def backfilled(client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=120)
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    return shop


def lost_traffic(devstore, shop, count: int = 80) -> dict:
    """Live traffic whose webhooks all vanish."""
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "drop_webhooks", "params": {"rate": 1.0}})
    actions = devstore.control("POST", f"/shops/{shop.domain}/simulate", json={"count": count, "rate": 10000,
                                                                               "seed": 11})["actions"]
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "drop_webhooks", "params": None})
    return actions


def test_reconcile_repairs_what_lost_webhooks_missed_and_a_second_run_repairs_nothing(devstore, backfilled):
    shop = backfilled
    assert mirror_versions(shop) == devstore_versions(devstore, shop.domain)
    actions = lost_traffic(devstore, shop)
    assert actions.get("order_customer") and actions.get("customer_edit") and actions.get("checkout_abandon")
    assert mirror_versions(shop) != devstore_versions(devstore, shop.domain)      # the mirror missed them
    before = ShopSync.objects.get(shop=shop).reconciled_until

    repaired = shop_reconcile(shop_id=shop.pk)

    sync = ShopSync.objects.get(shop=shop)
    assert repaired > 0 and sync.last_reconcile_repaired == repaired
    assert mirror_versions(shop) == devstore_versions(devstore, shop.domain)
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    assert sync.reconciled_until > before and sync.last_reconcile_at >= sync.reconciled_until

    assert shop_reconcile(shop_id=shop.pk) == 0
    assert ShopSync.objects.get(shop=shop).last_reconcile_repaired == 0


def test_reconcile_with_nothing_lost_writes_nothing(devstore, backfilled):
    shop = backfilled
    Customer.objects.filter(shop=shop).update(dirty_at=None)

    assert shop_reconcile(shop_id=shop.pk) == 0

    assert not Customer.objects.filter(shop=shop, dirty_at__isnull=False).exists()


def test_throttling_is_waited_out(devstore, backfilled, monkeypatch):
    shop = backfilled
    lost_traffic(devstore, shop, count=30)
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "throttle", "params": {"available": 0}})
    waits, now = [], [time.time()]

    def wait_then_lift(seconds):   # the shop's budget waits on this clock
        waits.append(seconds)
        now[0] += seconds
        if len(waits) == 2:
            devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "throttle", "params": None})

    monkeypatch.setattr(shop_graphql, "sleep", wait_then_lift)
    monkeypatch.setattr(shop_graphql, "clock", lambda: now[0])

    assert shop_reconcile(shop_id=shop.pk) > 0

    assert len(waits) >= 2 and waits[0] > 0
    assert mirror_versions(shop) == devstore_versions(devstore, shop.domain)


def test_every_page_query_fits_the_single_query_cost_cap(devstore, backfilled):
    for resource in RESOURCES:
        result = shop_graphql.shop_graphql(shop_id=backfilled.pk, query=resource.query,
                                           variables={"query": "updated_at:>'2000-01-01T00:00:00Z'"})
        assert result.requested_cost <= 1000, resource.root
        assert result.data[resource.root]["edges"], resource.root


def test_the_search_includes_a_change_made_in_the_very_second_it_starts_from(devstore, backfilled):
    """Inclusive and quoted: a customer updated exactly at `since` is read (with `>` it was not)."""
    customers = shop_graphql.shop_graphql(shop_id=backfilled.pk, query=RESOURCES[0].query,
                                          variables={"query": "updated_at:>='2000-01-01T00:00:00Z'"})
    newest = max(dt.datetime.fromisoformat(e["node"]["updatedAt"].replace("Z", "+00:00"))
                 for e in customers.data["customers"]["edges"])
    since = newest.replace(microsecond=0)
    assert since == newest       # devstore keeps whole seconds, as Shopify's updatedAt shows them

    found = shop_graphql.shop_graphql(shop_id=backfilled.pk, query=RESOURCES[0].query,
                                      variables={"query": changed_since(since)})

    assert changed_since(since) == f"updated_at:>='{since:%Y-%m-%dT%H:%M:%SZ}'"
    assert any(dt.datetime.fromisoformat(e["node"]["updatedAt"].replace("Z", "+00:00")) >= since
               for e in found.data["customers"]["edges"])


def test_only_shops_with_a_finished_backfill_are_reconciled(client, devstore, settings,
                                                            django_capture_on_commit_callbacks, backfilled):
    waiting = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=5)
    assert ShopSync.objects.get(shop=waiting).backfill_status == BackfillStatus.RUNNING

    assert shops_reconcile_task() == 1

    assert ShopSync.objects.get(shop=backfilled).last_reconcile_at is not None
    assert ShopSync.objects.get(shop=waiting).last_reconcile_at is None


def test_an_order_that_became_a_test_order_leaves_the_mirror(devstore, backfilled):
    shop = backfilled
    order = Order.objects.filter(shop=shop, customer__isnull=False).order_by("shopify_id").first()
    stamp = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with devstore.store.tx() as conn:    # staff marked it a test order in the admin
        conn.execute("UPDATE orders SET test = 1, updated_at = ? WHERE id = ?", (stamp, order.shopify_id))
    Customer.objects.filter(shop=shop).update(dirty_at=None)

    assert shop_reconcile(shop_id=shop.pk) == 1

    assert not Order.objects.filter(pk=order.pk).exists()
    assert Customer.objects.get(pk=order.customer_id).dirty_at is not None
