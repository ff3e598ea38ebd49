"""History backfill against devstore: staged bulk exports streamed into the mirror, resumable, throttle-proof."""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from segments.models import BackfillStatus, Checkout, Customer, LineItem, Order, Product, Shop, ShopSync
from segments.services import backfill as backfill_service
from segments.services import reconcile as reconcile_service
from segments.services.backfill import STAGES, backfill_advance, backfill_on_bulk_finish
from segments.services.install import shop_uninstall
from segments.tasks.backfill import backfills_resume_task
from shopseg.devstore import mutations
from shopseg.devstore.state import parse_gid
from tests.conftest import run_install
from tests.segments.test_embedded import embedded_query, session_token

pytestmark = pytest.mark.django_db


def seeded_install(client, devstore, settings, capture, *, customers: int, scopes: str | None = None) -> Shop:
    domain = devstore.create_shop()
    devstore.control("POST", f"/shops/{domain}/seed", json={"customers": customers, "seed": 7})
    # A staff member's test order, which must never count as a sale.
    variant = devstore.store.conn().execute("SELECT id FROM variants WHERE shop = ? LIMIT 1", (domain,)).fetchone()
    mutations.order_create(devstore.store, domain, line_items=[{"variant_id": variant[0], "quantity": 1}],
                           email="staff@example.com", test=True)
    if scopes is not None:
        settings.SHOPIFY_OPTIONAL_SCOPES = scopes
    with capture(execute=True):
        assert run_install(client, devstore, domain, settings.SHOPIFY_API_KEY).status_code == 302
    return Shop.objects.get(domain=domain)


def wait_for_export(devstore, sync: ShopSync) -> None:
    assert devstore.server.app.admin_api.bulk.wait(parse_gid(sync.bulk_operation_id, "BulkOperation"), timeout=120)


def run_backfill(devstore, shop: Shop) -> ShopSync:
    """Drive the backfill as the bulk_operations/finish webhook would: each export ends, then advance."""
    for _ in range(4 * len(STAGES)):
        sync = ShopSync.objects.get(shop=shop)
        if sync.backfill_status in (BackfillStatus.DONE, BackfillStatus.FAILED):
            return sync
        wait_for_export(devstore, sync)
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


def test_install_starts_one_export_and_the_backfill_makes_the_mirror_equal_devstore(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300)
    started = ShopSync.objects.get(shop=shop)
    assert started.backfill_status == BackfillStatus.RUNNING and started.history_since is None
    assert devstore.store.conn().execute("SELECT COUNT(*) FROM bulk_operations WHERE shop = ?",
                                         (shop.domain,)).fetchone()[0] == 1

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
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=300)
    for _ in range(2):   # customers and products in
        wait_for_export(devstore, ShopSync.objects.get(shop=shop))
        backfill_advance(shop_id=shop.pk)
    wait_for_export(devstore, ShopSync.objects.get(shop=shop))   # the orders export has finished
    before = ShopSync.objects.get(shop=shop).lines_done
    small_batches = dataclasses.replace(STAGES[2], batch=100)
    monkeypatch.setattr(backfill_service, "STAGES", (*STAGES[:2], small_batches, *STAGES[3:]))
    real_upsert = backfill_service.orders_upsert
    calls = []

    def dies_on_third_batch(*, shop, records):
        calls.append(len(records))
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real_upsert(shop=shop, records=records)

    monkeypatch.setattr(backfill_service, "orders_upsert", dies_on_third_batch)
    with pytest.raises(RuntimeError):
        backfill_advance(shop_id=shop.pk)

    interrupted = ShopSync.objects.get(shop=shop)
    assert interrupted.backfill_status == BackfillStatus.LOADING
    assert Order.objects.filter(shop=shop).count() == 200        # two committed batches, the third rolled back
    assert interrupted.lines_done > before
    monkeypatch.setattr(backfill_service, "orders_upsert", real_upsert)
    resumed_from = interrupted.lines_done
    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    assert sync.lines_done == sync.objects_total > resumed_from
    # the export ran once per stage: resuming reused the finished orders export
    assert devstore.store.conn().execute("SELECT COUNT(*) FROM bulk_operations WHERE shop = ?",
                                         (shop.domain,)).fetchone()[0] == len(STAGES)


def test_a_second_loader_leaves_a_load_in_progress_alone(client, devstore, settings,
                                                         django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=30)
    wait_for_export(devstore, ShopSync.objects.get(shop=shop))
    # Another worker took the finished customers export a moment ago and is loading it.
    ShopSync.objects.filter(shop=shop).update(backfill_status=BackfillStatus.LOADING, objects_total=90,
                                              updated_at=dt.datetime.now(dt.timezone.utc))

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.LOADING

    assert not Customer.objects.filter(shop=shop).exists()
    assert ShopSync.objects.get(shop=shop).lines_done == 0


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


def test_a_throttled_shop_still_completes(client, devstore, settings, django_capture_on_commit_callbacks,
                                          monkeypatch):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=50)
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "throttle",
                                                       "params": {"available": 0}})
    waits = []

    def wait_then_lift(seconds):   # the throttle lifts after a few refused calls
        waits.append(seconds)
        if len(waits) == 3:
            devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "throttle",
                                                               "params": None})

    monkeypatch.setattr(reconcile_service, "sleep", wait_then_lift)

    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE
    assert len(waits) >= 3 and all(w > 0 for w in waits[:3])
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)


def test_the_finish_webhook_schedules_loading_only_for_the_current_export(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_export(devstore, sync)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        backfill_on_bulk_finish(shop_domain=shop.domain, payload={
            "admin_graphql_api_id": "gid://shopify/BulkOperation/999999999", "status": "completed"})
    assert callbacks == [] and ShopSync.objects.get(shop=shop).lines_done == 0

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        backfill_on_bulk_finish(shop_domain=shop.domain, payload={
            "admin_graphql_api_id": sync.bulk_operation_id, "status": "completed"})
    assert len(callbacks) == 1
    after = ShopSync.objects.get(shop=shop)
    assert after.bulk_operation_id != sync.bulk_operation_id          # customers loaded, products started
    assert Customer.objects.filter(shop=shop).count() == 20


def test_polling_finishes_what_the_webhooks_never_announced(client, devstore, settings,
                                                             django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    for _ in range(4 * len(STAGES)):
        sync = ShopSync.objects.get(shop=shop)
        if sync.backfill_status == BackfillStatus.DONE:
            break
        wait_for_export(devstore, sync)
        backfills_resume_task()
    assert ShopSync.objects.get(shop=shop).backfill_status == BackfillStatus.DONE
    assert Customer.objects.filter(shop=shop).count() == 20


def home_page(client, devstore, settings, shop: Shop) -> str:
    token = session_token(devstore, shop.domain, settings.SHOPIFY_API_KEY)
    response = client.get("/?" + embedded_query(settings, shop.domain, token))
    assert response.status_code == 200
    return response.content.decode()


def test_home_page_shows_progress_then_the_outcome(client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=60)

    preparing = home_page(client, devstore, settings, shop)      # the customers export has not reported yet
    assert '<progress class="backfill-progress" aria-labelledby' in preparing
    assert "Shopify is exporting your store's history; 0 records" in preparing

    ShopSync.objects.filter(shop=shop).update(backfill_status=BackfillStatus.LOADING, lines_done=1200,
                                              objects_total=3400)
    loading = home_page(client, devstore, settings, shop)
    assert '<progress class="backfill-progress" value="1200" max="3400"' in loading
    assert "Importing: 1,200 of 3,400 records so far." in loading
    assert "last 60 days" not in loading

    ShopSync.objects.filter(shop=shop).update(backfill_status=BackfillStatus.RUNNING, lines_done=0,
                                              objects_total=None)
    done = run_backfill(devstore, shop)
    page = home_page(client, devstore, settings, shop)
    assert f"History imported: {done.lines_done:,} records" in page and "<progress" not in page


def test_home_page_says_history_is_limited_without_read_all_orders(client, devstore, settings,
                                                                   django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=10, scopes="")
    sync = run_backfill(devstore, shop)

    page = home_page(client, devstore, settings, shop)

    assert "History is limited to the last 60 days" in page
    assert f"only orders placed since {sync.history_since:%b} {sync.history_since.day}, {sync.history_since:%Y}" in page


def test_home_page_shows_a_failed_import(client, devstore, settings, installed_shop):
    ShopSync.objects.filter(shop=installed_shop).update(backfill_status=BackfillStatus.FAILED,
                                                        backfill_error="Shopify's export of orders ended failed")

    page = home_page(client, devstore, settings, installed_shop)

    assert "The history import stopped: Shopify&#x27;s export of orders ended failed" in page


def devstore_operation(devstore, sync: ShopSync, **columns) -> None:
    """Hand-edit devstore's record of the current export (what Shopify would report)."""
    assignments = ", ".join(f"{column} = ?" for column in columns)
    with devstore.store.tx() as conn:
        conn.execute(f"UPDATE bulk_operations SET {assignments} WHERE id = ?",   # noqa: S608 - test names
                     (*columns.values(), parse_gid(sync.bulk_operation_id, "BulkOperation")))


def test_a_running_export_reports_progress(client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_export(devstore, sync)
    devstore_operation(devstore, sync, status="RUNNING", object_count=12)

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.RUNNING

    after = ShopSync.objects.get(shop=shop)
    assert (after.objects_total, after.lines_done) == (12, 0)
    assert not Customer.objects.filter(shop=shop).exists()


def test_a_failed_export_fails_the_backfill_and_a_reinstall_starts_over(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_export(devstore, sync)
    devstore_operation(devstore, sync, status="FAILED", error_code="INTERNAL_SERVER_ERROR")

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.FAILED

    failed = ShopSync.objects.get(shop=shop)
    assert failed.backfill_error == "Shopify's export of customers ended failed (INTERNAL_SERVER_ERROR)"
    assert not Customer.objects.filter(shop=shop).exists()
    devstore.control("POST", f"/shops/{shop.domain}/uninstall/{settings.SHOPIFY_API_KEY}")
    shop_uninstall(domain=shop.domain)                        # what its app/uninstalled webhook does
    with django_capture_on_commit_callbacks(execute=True):   # and the merchant installs again
        assert run_install(client, devstore, shop.domain, settings.SHOPIFY_API_KEY).status_code == 302
    restarted = ShopSync.objects.get(shop=shop)
    assert restarted.backfill_status == BackfillStatus.RUNNING and restarted.backfill_error == ""
    assert restarted.bulk_operation_id != sync.bulk_operation_id
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    assert Customer.objects.filter(shop=shop).count() == 20


def test_an_expired_result_file_exports_the_stage_again(client, devstore, settings,
                                                          django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)
    for _ in range(2):   # customers and products in; the orders export has finished
        wait_for_export(devstore, ShopSync.objects.get(shop=shop))
        backfill_advance(shop_id=shop.pk)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_export(devstore, sync)
    devstore_operation(devstore, sync, result=None)     # the 7-day URL has lapsed

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.RUNNING

    again = ShopSync.objects.get(shop=shop)
    assert again.bulk_operation_id != sync.bulk_operation_id and again.lines_done == sync.lines_done
    assert not Order.objects.filter(shop=shop).exists()
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
