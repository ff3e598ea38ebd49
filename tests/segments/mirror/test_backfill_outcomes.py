"""The backfill under throttling, finish webhooks and polling, the progress and outcome the home page
shows, failed and expired exports, and the tables analyzed after loading."""
from __future__ import annotations

import time

import pytest

from segments.mirror import backfill as backfill_service
from segments.mirror.backfill import backfill_advance, backfill_on_bulk_finish
from segments.mirror.backfill_plan import STAGES
from segments.mirror.models import BackfillStatus, Customer, Order, ShopSync
from segments.mirror.tasks import backfills_resume_task
from segments.shops import graphql as shop_graphql
from segments.shops.install import shop_uninstall
from segments.shops.models import Shop
from tests.conftest import run_install
from tests.segments.mirror.test_backfill import (
    devstore_counts, devstore_operation, exports_run, mirror_counts, run_backfill, seeded_install, sliced,
    wait_for_exports,
)
from tests.segments.web.test_embedded import embedded_query, session_token

pytestmark = pytest.mark.django_db


def test_a_throttled_shop_still_completes(client, devstore, settings, django_capture_on_commit_callbacks,
                                          monkeypatch):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=50)
    devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "throttle",
                                                       "params": {"available": 0}})
    waits, now = [], [time.time()]

    def wait_then_lift(seconds):   # the throttle lifts after a few waits (on the budget's clock)
        waits.append(seconds)
        now[0] += seconds
        if len(waits) == 3:
            devstore.control("POST", "/faults", json={"shop": shop.domain, "kind": "throttle",
                                                               "params": None})

    monkeypatch.setattr(shop_graphql, "sleep", wait_then_lift)
    monkeypatch.setattr(shop_graphql, "clock", lambda: now[0])

    sync = run_backfill(devstore, shop)

    assert sync.backfill_status == BackfillStatus.DONE
    assert len(waits) >= 3 and all(w > 0 for w in waits[:3])
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)


def test_the_finish_webhook_schedules_the_backfill_only_for_its_own_exports(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_exports(devstore, shop)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        backfill_on_bulk_finish(shop_domain=shop.domain, payload={
            "admin_graphql_api_id": "gid://shopify/BulkOperation/999999999", "status": "completed"})
    assert callbacks == [] and ShopSync.objects.get(shop=shop).lines_done == 0

    with django_capture_on_commit_callbacks() as callbacks:   # products': not next to load, still ours
        backfill_on_bulk_finish(shop_domain=shop.domain, payload={
            "admin_graphql_api_id": sync.stages[1]["operation"], "status": "completed"})
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()                                       # the advance task it enqueued
    after = ShopSync.objects.get(shop=shop)
    assert after.bulk_operation_id != sync.bulk_operation_id          # customers and products in, orders next
    assert Customer.objects.filter(shop=shop).count() == 20
    assert [s["status"] for s in after.stages][:2] == ["loaded", "loaded"]


def test_polling_finishes_what_the_webhooks_never_announced(client, devstore, settings,
                                                             django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    for _ in range(4 * len(STAGES)):
        sync = ShopSync.objects.get(shop=shop)
        if sync.backfill_status == BackfillStatus.DONE:
            break
        wait_for_exports(devstore, shop)
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


def test_a_running_export_reports_progress(client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_exports(devstore, shop)
    devstore_operation(devstore, sync.stages[0]["operation"], status="RUNNING", object_count=12)

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.RUNNING

    after = ShopSync.objects.get(shop=shop)
    assert after.stages[0]["objects"] == 12 and after.lines_done == 0
    assert after.objects_total == 12 + after.stages[1]["objects"]     # products' export has finished
    assert not Customer.objects.filter(shop=shop).exists()


def test_a_failed_export_fails_the_backfill_and_a_reinstall_starts_over(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    sync = ShopSync.objects.get(shop=shop)
    wait_for_exports(devstore, shop)
    devstore_operation(devstore, sync.bulk_operation_id, status="FAILED", error_code="INTERNAL_SERVER_ERROR")

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


def test_a_failed_later_export_fails_the_backfill_while_an_earlier_stage_loads(
        client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=20)
    wait_for_exports(devstore, shop)
    sync = ShopSync.objects.get(shop=shop)
    devstore_operation(devstore, sync.stages[1]["operation"], status="FAILED", error_code="ACCESS_DENIED")

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.FAILED

    assert ShopSync.objects.get(shop=shop).backfill_error == \
        "Shopify's export of products ended failed (ACCESS_DENIED)"


def test_an_expired_result_file_exports_the_stage_again(client, devstore, settings,
                                                          django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)
    wait_for_exports(devstore, shop)
    products = ShopSync.objects.get(shop=shop).stages[1]
    devstore_operation(devstore, products["operation"], status="RUNNING")    # held back a moment
    backfill_advance(shop_id=shop.pk)     # customers load; the orders export starts and finishes
    wait_for_exports(devstore, shop)
    orders = ShopSync.objects.get(shop=shop).stages[2]
    assert orders["status"] in ("running", "completed")       # exported (or exporting), not loaded
    devstore_operation(devstore, orders["operation"], result=None)            # its 7-day URL lapses
    devstore_operation(devstore, products["operation"], status="COMPLETED")

    assert backfill_advance(shop_id=shop.pk) == BackfillStatus.RUNNING

    again = ShopSync.objects.get(shop=shop)
    assert again.stages[2]["operation"] not in ("", orders["operation"])
    assert again.stages[2]["status"] == "running" and again.bulk_operation_id == again.stages[2]["operation"]
    assert again.lines_done == again.stages[0]["objects"] + again.stages[1]["objects"]   # customers, products
    assert not Order.objects.filter(shop=shop).exists()
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    assert mirror_counts(shop) == devstore_counts(devstore, shop.domain)
    assert exports_run(devstore, shop) == len(STAGES) + 1


def test_the_backfill_leaves_the_tables_it_filled_analyzed(client, devstore, settings,
                                                           django_capture_on_commit_callbacks):
    # Given a shop whose history is being backfilled
    from django.db import connection

    from segments.mirror.statistics import MIRROR_TABLES

    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=60)
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        started = cursor.fetchone()[0]

    # When it finishes
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE

    # Then every table it filled was analyzed after the load, and the planner knows its rows
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        for table in MIRROR_TABLES:
            cursor.execute("SELECT s.last_analyze, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c "
                           "ON c.oid = s.relid WHERE s.relname = %s", [table])
            last_analyze, reltuples = cursor.fetchone()
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows = cursor.fetchone()[0]
            assert last_analyze is not None and last_analyze >= started, table
            assert reltuples == rows, table
    assert Order.objects.filter(shop=shop).count() > 100


def test_the_tables_are_analyzed_once_after_the_last_stage_loaded(client, devstore, settings,
                                                                  django_capture_on_commit_callbacks, monkeypatch):
    # Given a backfill in several stages (customers, products, order slices, checkouts)
    from segments.mirror.statistics import MIRROR_TABLES

    calls = []

    def analyze(*, tables):
        sync = ShopSync.objects.get(shop__domain=domain)
        calls.append((list(tables), sync.backfill_status, [s["status"] for s in sync.stages]))
        return tables

    monkeypatch.setattr(backfill_service, "tables_analyze", analyze)
    sliced(monkeypatch)
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=200)
    domain = shop.domain

    # When it runs to the end
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE

    # Then the tables were analyzed once, after every stage had loaded
    stages = len(ShopSync.objects.get(shop=shop).stages)
    assert stages > 4
    assert calls == [(list(MIRROR_TABLES), BackfillStatus.DONE, ["loaded"] * stages)]
