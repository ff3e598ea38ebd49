"""The metrics table stays current by itself: rebuilt when a backfill ends and nightly, refreshed
for the customers whose behaviour changed."""
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from segments.metrics.models import CustomerMetrics
from segments.metrics.tasks import metrics_dirty_refresh_task, shops_metrics_rebuild_task
from segments.mirror.models import Customer
from segments.mirror.records import LineItemRecord, OrderRecord
from segments.mirror.orders import orders_upsert
from segments.shops.models import Shop
from tests.segments.mirror.test_backfill import run_backfill, seeded_install

pytestmark = pytest.mark.django_db


@pytest.fixture
def backfilled(client, devstore, settings, django_capture_on_commit_callbacks) -> Shop:
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)
    with django_capture_on_commit_callbacks(execute=True):
        run_backfill(devstore, shop)
    return shop


def test_the_end_of_a_backfill_builds_the_table_and_dirty_customers_are_refreshed(backfilled):
    shop = backfilled
    customers = Customer.objects.filter(shop=shop, deleted_at__isnull=True)
    assert CustomerMetrics.objects.filter(shop=shop).count() == customers.count() > 0
    Customer.objects.filter(shop=shop).update(dirty_at=None)

    buyer = customers.order_by("shopify_id").first()
    before = CustomerMetrics.objects.get(customer=buyer).orders_count
    orders_upsert(shop=shop, records=[OrderRecord(
        shopify_id=9_999_000_001, created_at=timezone.now() - dt.timedelta(minutes=1), updated_at=timezone.now(),
        customer_shopify_id=buyer.shopify_id, total=Decimal("42.00"), financial_status="paid",
        line_items=[LineItemRecord(shopify_id=9_999_000_011, quantity=1, price=Decimal("42.00"))])])
    assert Customer.objects.get(pk=buyer.pk).dirty_at is not None

    assert metrics_dirty_refresh_task() == 1
    assert CustomerMetrics.objects.get(customer=buyer).orders_count == before + 1
    assert Customer.objects.get(pk=buyer.pk).dirty_at is None
    assert metrics_dirty_refresh_task() == 0          # nothing dirty: nothing recomputed


def test_nightly_rebuild_covers_shops_whose_history_is_in(backfilled, client, devstore, settings,
                                                          django_capture_on_commit_callbacks):
    seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=5)  # still running
    CustomerMetrics.objects.filter(shop=backfilled).delete()
    local_hour = timezone.now().astimezone(ZoneInfo(backfilled.iana_timezone)).hour
    Shop.objects.filter(pk=backfilled.pk).update(recompute_hour=(local_hour + 1) % 24)
    assert shops_metrics_rebuild_task() == 0          # not its hour yet
    assert not CustomerMetrics.objects.filter(shop=backfilled).exists()
    Shop.objects.filter(pk=backfilled.pk).update(recompute_hour=local_hour)
    assert shops_metrics_rebuild_task() == 1
    assert CustomerMetrics.objects.filter(shop=backfilled).exists()


def test_each_shop_is_due_at_its_own_local_hour(backfilled):
    from segments.metrics.schedule import shops_due_for_nightly

    Shop.objects.filter(pk=backfilled.pk).update(iana_timezone="Asia/Tokyo", recompute_hour=3)
    at_3_in_tokyo = dt.datetime(2026, 11, 21, 18, 30, tzinfo=dt.timezone.utc)     # 03:30 JST
    assert shops_due_for_nightly(now=at_3_in_tokyo) == [backfilled.pk]
    assert shops_due_for_nightly(now=at_3_in_tokyo + dt.timedelta(hours=1)) == []
    Shop.objects.filter(pk=backfilled.pk).update(iana_timezone="America/New_York")
    assert shops_due_for_nightly(now=at_3_in_tokyo) == []                            # 13:30 in New York
    assert shops_due_for_nightly(now=dt.datetime(2026, 11, 22, 8, 5, tzinfo=dt.timezone.utc)) == [backfilled.pk]


# Transactional: the rebuild the backfill ended with holds the shop's metrics lock until its
# transaction ends, which in a test wrapped in one transaction would be the test's end.
@pytest.mark.django_db(transaction=True)
def test_a_refresh_running_for_the_shop_makes_an_overlapping_one_return_untouched(backfilled):
    """Two refreshes of one shop would upsert the same metrics rows in different orders and
    deadlock; the second returns at once and leaves its marks for the next beat."""
    import psycopg
    from django.db import connection

    from segments.metrics.refresh import _REFRESH_LOCK_NAMESPACE, dirty_customers_refresh

    buyer = Customer.objects.filter(shop=backfilled).order_by("pk").first()
    Customer.objects.filter(shop=backfilled).update(dirty_at=None, dirty_cause="")
    Customer.objects.filter(pk=buyer.pk).update(dirty_at=timezone.now(), dirty_cause="orders/create")
    db = connection.settings_dict
    with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"]) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_REFRESH_LOCK_NAMESPACE, backfilled.pk])
        assert dirty_customers_refresh(shop=backfilled) == []
        assert Customer.objects.get(pk=buyer.pk).dirty_at is not None        # nothing cleared
    assert dirty_customers_refresh(shop=backfilled) == [buyer.pk]            # the lock went with that run
    assert Customer.objects.get(pk=buyer.pk).dirty_at is None


@pytest.mark.django_db(transaction=True)
def test_a_refresh_neither_waits_for_nor_deadlocks_with_a_writer(client, devstore, settings,
                                                                 django_capture_on_commit_callbacks):
    """A webhook's writer holds a dirty customer's row (its drain batch is one transaction) while
    the refresh runs. The refresh used to wait for that row to clear its mark, and deadlocked when
    the writer then asked for a row the refresh held. Now it clears only the marks of rows nobody
    holds (SKIP LOCKED): it finishes at once, and the held customer keeps its mark for the next run
    (the writer is changing that customer anyway)."""
    import threading

    import psycopg
    from django.db import connection, connections

    from segments.metrics.refresh import dirty_customers_refresh

    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=5)
    with django_capture_on_commit_callbacks(execute=True):
        run_backfill(devstore, shop)
    held, free = Customer.objects.filter(shop=shop).order_by("pk").values_list("pk", flat=True)[:2]
    Customer.objects.filter(shop=shop).update(dirty_at=None, dirty_cause="")
    Customer.objects.filter(pk__in=[held, free]).update(dirty_at=timezone.now(), dirty_cause="orders/create")
    db = connection.settings_dict
    result = {}
    with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"]) as writer:
        writer.execute("UPDATE segments_customer SET state = state WHERE id = %s", [held])

        def refresh():
            try:
                result["ids"] = dirty_customers_refresh(shop=shop)
            finally:
                connections.close_all()
        thread = threading.Thread(target=refresh)
        thread.start()
        thread.join(30)
        finished_while_held = not thread.is_alive()
        writer.commit()
        thread.join(30)

    assert finished_while_held
    assert result["ids"] == sorted([held, free])
    marks = dict(Customer.objects.filter(pk__in=[held, free]).values_list("pk", "dirty_at"))
    assert marks[free] is None and marks[held] is not None
    assert dirty_customers_refresh(shop=shop) == [held]
    assert not Customer.objects.filter(shop=shop, dirty_at__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_waits_for_a_refresh_under_way_and_refreshes_meanwhile_keep_their_marks(backfilled):
    """Interleaved, a rebuild and a refresh upserted the same rows in different orders and deadlocked;
    the lost rebuild left the shop ranked against the breakpoints of an empty shop. Now they take
    turns: the rebuild waits for the refresh's lock, and a refresh tried meanwhile returns untouched."""
    import threading

    import psycopg
    from django.db import connection, connections

    from segments.metrics.models import ShopMetricsBreakpoints
    from segments.metrics.refresh import _REFRESH_LOCK_NAMESPACE, customer_metrics_rebuild, dirty_customers_refresh

    db = connection.settings_dict
    before = ShopMetricsBreakpoints.objects.filter(shop=backfilled).values_list("computed_at", flat=True).first()
    rebuilt_at = timezone.now()
    done = threading.Event()

    def rebuild() -> None:
        try:
            customer_metrics_rebuild(shop=Shop.objects.get(pk=backfilled.pk), now=rebuilt_at)
        finally:
            connections.close_all()
            done.set()

    with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"]) as refresh:
        refresh.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_REFRESH_LOCK_NAMESPACE, backfilled.pk])
        worker = threading.Thread(target=rebuild)
        worker.start()
        # Given a refresh holding the shop's lock, the rebuild waits for it ...
        assert not done.wait(2)
        assert ShopMetricsBreakpoints.objects.filter(shop=backfilled, computed_at=rebuilt_at).count() == 0
    # ... and runs once it is released
    assert done.wait(60)
    worker.join()
    assert before is not None
    assert ShopMetricsBreakpoints.objects.filter(shop=backfilled, computed_at=rebuilt_at).count() == 100

    # While a rebuild holds the lock, a refresh returns with its marks kept
    buyer = Customer.objects.filter(shop=backfilled).order_by("pk").first()
    Customer.objects.filter(pk=buyer.pk).update(dirty_at=timezone.now(), dirty_cause="orders/create")
    with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"]) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_REFRESH_LOCK_NAMESPACE, backfilled.pk])
        assert dirty_customers_refresh(shop=backfilled) == []
        assert Customer.objects.get(pk=buyer.pk).dirty_at is not None


def test_a_failed_rebuild_raises_its_own_error_not_one_from_its_cleanup(backfilled):
    """A statement that fails inside the rebuild used to be hidden: restoring the planner settings
    in the aborted transaction raised 'current transaction is aborted' instead."""
    from django.db import OperationalError, connection, transaction

    from segments.metrics.refresh import customer_metrics_rebuild

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1")   # every statement is cancelled
        with pytest.raises(OperationalError, match="statement timeout"):
            customer_metrics_rebuild(shop=backfilled)
        transaction.set_rollback(True)


def test_a_rebuild_lost_to_a_transient_database_error_is_retried():
    from django.db import OperationalError

    from segments.metrics.tasks import customer_metrics_rebuild_task

    assert OperationalError in customer_metrics_rebuild_task.autoretry_for
    assert customer_metrics_rebuild_task.max_retries >= 3 and customer_metrics_rebuild_task.retry_jitter
