"""History backfill against devstore: bulk exports running ahead of loading, streamed into the mirror in
stage order, resumable, throttle-proof."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from devstore import mutations
from devstore.state import parse_gid
from segments.mirror import backfill as backfill_service
from segments.mirror import backfill_plan
from segments.mirror.backfill import backfill_advance
from segments.mirror.backfill_plan import STAGES, order_count_estimate, order_slices
from segments.mirror.models import BackfillStatus, Checkout, Customer, LineItem, Order, Product, ShopSync
from segments.shops.models import Shop
from tests.conftest import run_install

pytestmark = pytest.mark.django_db


def seeded_install(client, devstore, settings, capture, *, customers: int, scopes: str | None = None,
                   now: dt.datetime | None = None) -> Shop:
    """A shop seeded with `customers` (its history ending at the start of `now`'s UTC day; today by
    default), installed through OAuth."""
    domain = devstore.create_shop()
    devstore.control("POST", f"/shops/{domain}/seed", json={"customers": customers, "seed": 7,
                                                             **({"now": now.isoformat()} if now else {})})
    # A staff member's test order, which must never count as a sale.
    variant = devstore.store.conn().execute("SELECT id FROM variants WHERE shop = ? LIMIT 1", (domain,)).fetchone()
    mutations.order_create(devstore.store, domain, line_items=[{"variant_id": variant[0], "quantity": 1}],
                           email="staff@example.com", test=True)
    if scopes is not None:
        settings.SHOPIFY_OPTIONAL_SCOPES = scopes
    with capture(execute=True):
        assert run_install(client, devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
    return Shop.objects.get(domain=domain)


def wait_for_exports(devstore, shop: Shop) -> None:
    """Until every export devstore holds for the shop has ended."""
    runner = devstore.server.app.admin_api.bulk
    for (operation_id,) in devstore.store.conn().execute("SELECT id FROM bulk_operations WHERE shop = ?",
                                                        (shop.domain,)).fetchall():
        assert runner.wait(operation_id, timeout=120)


def running_exports(devstore, shop: Shop) -> int:
    return devstore.store.conn().execute(
        "SELECT COUNT(*) FROM bulk_operations WHERE shop = ? AND status IN ('CREATED', 'RUNNING', 'CANCELING')",
        (shop.domain,)).fetchone()[0]


def exports_run(devstore, shop: Shop) -> int:
    return devstore.store.conn().execute("SELECT COUNT(*) FROM bulk_operations WHERE shop = ?",
                                         (shop.domain,)).fetchone()[0]


def run_backfill(devstore, shop: Shop) -> ShopSync:
    """Drive the backfill as the bulk_operations/finish webhooks would: exports end, then advance."""
    for _ in range(100):
        sync = ShopSync.objects.get(shop=shop)
        if sync.backfill_status in (BackfillStatus.DONE, BackfillStatus.FAILED):
            return sync
        assert sum(s["status"] == "running" for s in sync.stages) <= backfill_plan.RUNNING_EXPORTS
        wait_for_exports(devstore, shop)
        backfill_advance(shop_id=shop.pk)
    raise AssertionError("the backfill did not finish")


def devstore_counts(devstore, domain: str, since: str = "") -> dict:
    conn = devstore.store.conn()

    def one(sql: str, *params) -> int:
        return conn.execute(sql, (domain, *params)).fetchone()[0]

    real = "shop = ? AND test = 0 AND created_at >= ?"
    return {
        "customers": one("SELECT COUNT(*) FROM customers WHERE shop = ?"),
        "products": one("SELECT COUNT(*) FROM products WHERE shop = ?"),
        "orders": one(f"SELECT COUNT(*) FROM orders WHERE {real}", since),
        "line_items": one(f"SELECT COUNT(*) FROM line_items WHERE order_id IN (SELECT id FROM orders WHERE {real})",
                          since),
        "abandoned_checkouts": one("SELECT COUNT(*) FROM checkouts WHERE shop = ? AND completed_at IS NULL"),
        "order_total_cents": one(f"SELECT COALESCE(SUM(total_cents), 0) FROM orders WHERE {real}", since),
    }


def mirror_counts(shop: Shop) -> dict:
    total = Order.objects.filter(shop=shop).aggregate(s=Sum("total"))["s"] or Decimal(0)
    return {
        "customers": Customer.objects.filter(shop=shop).count(),
        "products": Product.objects.filter(shop=shop).count(),
        "orders": Order.objects.filter(shop=shop).count(),
        "line_items": LineItem.objects.filter(shop=shop).count(),
        "abandoned_checkouts": Checkout.objects.filter(shop=shop, completed_at__isnull=True).count(),
        "order_total_cents": int(total * 100),
    }


def devstore_customer_links(devstore, domain: str) -> set[tuple[int, int]]:
    return {(row[0], row[1]) for row in devstore.store.conn().execute(
        "SELECT id, customer_id FROM orders WHERE shop = ? AND test = 0 AND customer_id IS NOT NULL", (domain,))}


def mirror_customer_links(shop: Shop) -> set[tuple[int, int]]:
    return set(Order.objects.filter(shop=shop, customer__isnull=False)
               .values_list("shopify_id", "customer__shopify_id"))


def sliced(monkeypatch, per_slice: int = 300) -> None:
    """Split the orders export of a test-sized shop into several date slices."""
    monkeypatch.setattr(backfill_plan, "ORDERS_PER_SLICE", per_slice)


def stage_roots(sync: ShopSync) -> list[str]:
    return [s["root"] for s in sync.stages]


def test_install_starts_the_first_exports_and_the_backfill_makes_the_mirror_equal_devstore(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300)
    started = ShopSync.objects.get(shop=shop)
    assert started.backfill_status == BackfillStatus.RUNNING and started.history_since is None
    # ~1,200 orders are one slice; exports start in loading order, two at a time
    assert stage_roots(started) == ["customers", "products", "orders", "abandonedCheckouts", "productVariants"]
    assert [s["status"] for s in started.stages] == ["running", "running", "pending", "pending", "pending"]
    assert exports_run(devstore, shop) == backfill_plan.RUNNING_EXPORTS
    assert started.bulk_operation_id == started.stages[0]["operation"]

    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE, sync.backfill_error
    expected = devstore_counts(devstore, shop.domain)
    assert expected["orders"] > 600 and expected["abandoned_checkouts"] > 0
    assert mirror_counts(shop) == expected
    links = devstore_customer_links(devstore, shop.domain)
    assert links and links <= mirror_customer_links(shop)
    test_orders = [row[0] for row in devstore.store.conn().execute(
        "SELECT id FROM orders WHERE shop = ? AND test = 1", (shop.domain,))]
    assert test_orders and not Order.objects.filter(shop=shop, shopify_id__in=test_orders).exists()
    assert sync.lines_done == sync.objects_total > expected["orders"] + expected["customers"]
    assert sync.reconciled_until == sync.backfill_started_at
    assert all(s["status"] == "loaded" for s in sync.stages) and exports_run(devstore, shop) == len(sync.stages)


def test_orders_export_in_date_slices_that_cover_every_order_once(
        client, devstore, settings, django_capture_on_commit_callbacks, monkeypatch):
    sliced(monkeypatch)
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300)
    started = ShopSync.objects.get(shop=shop)
    roots = stage_roots(started)
    assert roots[:2] == ["customers", "products"] and roots[-2:] == ["abandonedCheckouts", "productVariants"]
    slices = [s["search"] for s in started.stages if s["root"] == "orders"]
    assert len(slices) >= 3 and roots[2:-2] == ["orders"] * len(slices)
    assert "created_at:>=" not in slices[0] and "created_at:<" not in slices[-1]   # open at both ends
    assert all(s.startswith("test:false") for s in slices)

    for _ in range(100):    # as the webhooks would drive it, never more than two exports at once
        sync = ShopSync.objects.get(shop=shop)
        if sync.backfill_status == BackfillStatus.DONE:
            break
        assert running_exports(devstore, shop) <= backfill_plan.RUNNING_EXPORTS
        wait_for_exports(devstore, shop)
        backfill_advance(shop_id=shop.pk)

    assert sync.backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    order_objects = [s["objects"] for s in sync.stages if s["root"] == "orders"]
    assert sum(1 for n in order_objects if n > 0) >= 3        # the slices share the orders
    assert exports_run(devstore, shop) == len(sync.stages)     # each export ran once
    assert sync.lines_done == sync.objects_total == sum(s["objects"] for s in sync.stages)


def test_order_slices_split_the_span_and_fall_back_to_one_export():
    oldest, newest = "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"
    assert order_slices(oldest_at=oldest, newest_at=newest, orders=4000, per_slice=1000, most=24) == [
        "test:false created_at:<'2024-01-02T00:00:00Z'",
        "test:false created_at:>='2024-01-02T00:00:00Z' created_at:<'2024-01-03T00:00:00Z'",
        "test:false created_at:>='2024-01-03T00:00:00Z' created_at:<'2024-01-04T00:00:00Z'",
        "test:false created_at:>='2024-01-04T00:00:00Z'",
    ]
    assert len(order_slices(oldest_at=oldest, newest_at=newest, orders=4000, per_slice=100, most=6)) == 6
    one = ["test:false"]
    assert order_slices(oldest_at=oldest, newest_at=newest, orders=4000, per_slice=50_000, most=24) == one
    assert order_slices(oldest_at=None, newest_at=None, orders=0, per_slice=1000, most=24) == one   # no orders
    assert order_slices(oldest_at=oldest, newest_at=newest, orders=0, per_slice=1000, most=24) == one
    assert order_slices(oldest_at=oldest, newest_at=oldest, orders=4000, per_slice=1000, most=24) == one


def test_the_order_count_comes_from_order_numbers():
    assert order_count_estimate(lowest="#1001", highest="#5000") == 4000
    assert order_count_estimate(lowest="EU-1001-B", highest="EU-2000-B") == 1000    # the shop's prefix, suffix
    assert order_count_estimate(lowest="first", highest="#5000") == 0
    assert order_count_estimate(lowest=None, highest=None) == 0
    assert order_count_estimate(lowest="#5000", highest="#1001") == 0


def test_spot_checked_order_matches_devstore(client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)
    run_backfill(devstore, shop)
    row = devstore.store.conn().execute(
        "SELECT * FROM orders WHERE shop = ? AND test = 0 AND discount_cents > 0 AND shipping_code IS NOT NULL "
        "ORDER BY id LIMIT 1", (shop.domain,)).fetchone()
    order = Order.objects.get(shop=shop, shopify_id=row["id"])
    assert order.total == Decimal(row["total_cents"]) / 100
    assert order.total_discounts == Decimal(row["discount_cents"]) / 100
    assert order.total_shipping == Decimal(row["shipping_cents"]) / 100
    assert order.financial_status == row["financial_status"] and order.name == row["name"]
    assert order.shipping_method == row["shipping_title"]
    assert order.shipping_speed == {"standard": "standard", "express": "expedited", "overnight": "expedited",
                                    "pickup": "pickup"}[row["shipping_code"]]
    items = list(devstore.store.conn().execute("SELECT * FROM line_items WHERE order_id = ? ORDER BY id",
                                               (row["id"],)))
    mirrored = list(order.line_items.order_by("shopify_id"))
    assert [(i["id"], i["quantity"], Decimal(i["price_cents"]) / 100, i["product_id"], i["vendor"])
            for i in items] == [(m.shopify_id, m.quantity, m.price, m.product_id, m.vendor) for m in mirrored]
    assert all(m.product_type for m in mirrored)


def test_a_load_that_dies_mid_way_resumes_after_the_last_committed_batch(
        client, devstore, settings, django_capture_on_commit_callbacks, monkeypatch):
    sliced(monkeypatch)
    monkeypatch.setattr(backfill_service, "REFRESH_SECONDS", 0.0)     # the loader keeps the exports going
    small_batches = dataclasses.replace(STAGES[2], batch=50)
    monkeypatch.setattr(backfill_plan, "STAGE_BY_ROOT", {**backfill_plan.STAGE_BY_ROOT, "orders": small_batches})
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300)
    real_upsert = backfill_plan.orders_upsert
    calls = []

    def dies_in_the_second_slice(*, shop, records):
        calls.append(len(records))
        sync = ShopSync.objects.get(shop=shop)
        second = [s for s in sync.stages if s["root"] == "orders"][1]
        if sync.bulk_operation_id == second["operation"] and sync.lines_done > _lines_before(sync, second) \
                and not dies_in_the_second_slice.died:
            dies_in_the_second_slice.died = True
            raise RuntimeError("worker killed")
        return real_upsert(shop=shop, records=records)

    dies_in_the_second_slice.died = False
    monkeypatch.setattr(backfill_plan, "orders_upsert", dies_in_the_second_slice)
    with pytest.raises(RuntimeError):
        for _ in range(100):
            wait_for_exports(devstore, shop)
            backfill_advance(shop_id=shop.pk)

    interrupted = ShopSync.objects.get(shop=shop)
    orders = [s for s in interrupted.stages if s["root"] == "orders"]
    assert interrupted.backfill_status == BackfillStatus.LOADING
    assert interrupted.bulk_operation_id == orders[1]["operation"]
    assert orders[0]["status"] == "loaded" and orders[1]["status"] == "completed"
    # the loader kept the exports going: the later slices are exported or exporting, none loaded
    assert all(s["status"] in ("running", "completed") for s in orders[2:])
    resumed_from = interrupted.lines_done
    committed = resumed_from - _lines_before(interrupted, orders[1])
    assert committed > 0
    first_slice_end = orders[0]["search"].split("created_at:<'")[1].rstrip("'")
    first_slice_orders = devstore.store.conn().execute(
        "SELECT COUNT(*) FROM orders WHERE shop = ? AND test = 0 AND created_at < ?",
        (shop.domain, first_slice_end)).fetchone()[0]
    # the first slice, then one committed batch of the second; the batch that died rolled back
    assert Order.objects.filter(shop=shop).count() == first_slice_orders + 50
    exports_before = exports_run(devstore, shop)

    monkeypatch.setattr(backfill_plan, "orders_upsert", real_upsert)
    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    assert sync.lines_done == sync.objects_total > resumed_from
    # resuming reused the finished exports: every stage was exported exactly once
    assert exports_run(devstore, shop) == len(sync.stages) >= exports_before


def _lines_before(sync: ShopSync, stage: dict) -> int:
    """JSONL lines of the stages loaded before `stage`."""
    index = sync.stages.index(stage)
    return sum(s["objects"] for s in sync.stages[:index])


def test_customers_load_before_orders_even_when_their_export_finishes_last(
        client, devstore, settings, django_capture_on_commit_callbacks, monkeypatch):
    sliced(monkeypatch)
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300)
    wait_for_exports(devstore, shop)
    customers_stage = ShopSync.objects.get(shop=shop).stages[0]
    # Shopify is still exporting the customers (say), while everything after them finishes
    devstore_operation(devstore, customers_stage["operation"], status="RUNNING", object_count=120)
    for _ in range(40):
        backfill_advance(shop_id=shop.pk)
        wait_for_exports(devstore, shop)
        sync = ShopSync.objects.get(shop=shop)
        if all(s["status"] == "completed" for s in sync.stages[1:]):
            break
    assert all(s["status"] == "completed" for s in sync.stages[1:])
    assert sync.backfill_status == BackfillStatus.RUNNING and sync.lines_done == 0
    assert sync.bulk_operation_id == customers_stage["operation"]
    assert not Order.objects.filter(shop=shop).exists() and not Customer.objects.filter(shop=shop).exists()
    assert not Product.objects.filter(shop=shop).exists()

    devstore_operation(devstore, customers_stage["operation"], status="COMPLETED", object_count=300)
    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.DONE      # everything was waiting on them

    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    links = devstore_customer_links(devstore, shop.domain)
    assert links and links <= mirror_customer_links(shop)
    # no order ever met a missing customer: no stub was made, so none was dirtied as one
    assert not Customer.objects.filter(shop=shop, state="").exists()
    assert Customer.objects.filter(shop=shop).count() == 300


def test_a_second_loader_leaves_a_load_in_progress_alone(client, devstore, settings,
                                                         django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=30)
    wait_for_exports(devstore, shop)
    # Another worker took the finished customers export a moment ago and is loading it.
    ShopSync.objects.filter(shop=shop).update(backfill_status=BackfillStatus.LOADING, objects_total=90,
                                              updated_at=dt.datetime.now(dt.timezone.utc))

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.LOADING

    assert not Customer.objects.filter(shop=shop).exists()
    after = ShopSync.objects.get(shop=shop)
    assert after.lines_done == 0
    # but it kept the exports going: customers and products are recorded as finished, orders started
    assert [s["status"] for s in after.stages] == ["completed", "completed", "running", "running", "pending"]


def test_a_quiet_load_of_no_known_stage_hands_back_to_the_stages(client, devstore, settings,
                                                                  django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=30)
    wait_for_exports(devstore, shop)
    ShopSync.objects.filter(shop=shop).update(backfill_status=BackfillStatus.LOADING,
                                              bulk_operation_id="gid://shopify/BulkOperation/1",
                                              updated_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))

    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)


def test_a_backfill_begun_before_per_stage_state_carries_on(client, devstore, settings,
                                                            django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)
    wait_for_exports(devstore, shop)
    sync = ShopSync.objects.get(shop=shop)
    # what the one-export-at-a-time backfill recorded: the customers export, no stages
    ShopSync.objects.filter(shop=shop).update(stages=[], bulk_operation_id=sync.stages[0]["operation"])

    done = run_backfill(devstore, shop)

    assert done.backfill_status == BackfillStatus.DONE
    assert stage_roots(done) == [s.root for s in STAGES]
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)


def test_without_read_all_orders_only_sixty_days_arrive(client, devstore, settings,
                                                        django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300, scopes="")
    assert not shop.has_scope("read_all_orders")

    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE
    assert sync.history_since is not None
    assert abs(sync.history_since - (sync.backfill_started_at - dt.timedelta(days=60))) < dt.timedelta(seconds=1)
    cutoff = (sync.history_since + dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = devstore_counts(devstore, shop.domain, since=cutoff)
    assert 0 < expected["orders"] < devstore_counts(devstore, shop.domain)["orders"]
    assert mirror_counts(shop) == expected
    assert Order.objects.filter(shop=shop).order_by("created_at").first().created_at >= sync.history_since


def devstore_operation(devstore, operation_id: str, **columns) -> None:
    """Hand-edit devstore's record of an export (what Shopify would report)."""
    assignments = ", ".join(f"{column} = ?" for column in columns)
    with devstore.store.tx() as conn:
        conn.execute(f"UPDATE bulk_operations SET {assignments} WHERE id = ?",   # noqa: S608 - test names
                     (*columns.values(), parse_gid(operation_id, "BulkOperation")))
