"""The metrics table's incremental refresh: the rebuild's values for changed customers, ranked against the
last rebuild; dirty marks; a generated shop's personas; shops taking turns."""
from __future__ import annotations

import datetime as dt
import statistics

import pytest

from segments.metrics import refresh as metrics_service
from segments.metrics.models import CustomerMetrics, ShopMetricsBreakpoints
from segments.metrics.refresh import customer_metrics_rebuild, customer_metrics_refresh, dirty_customers_refresh
from segments.mirror.models import Customer
from segments.mirror.writer import customer_delete
from tests.segments.engine.test_metrics_table import (  # noqa: F401 - fixtures
    COLUMNS, NOW, SHOP_RELATIVE, Mirror, assert_rows_equal, other_shop, reference, shop, stored, varied_mirror,
)

pytestmark = pytest.mark.django_db


# -- incremental refresh --------------------------------------------------------------------------
def test_a_refresh_writes_what_the_rebuild_wrote_while_the_shop_is_unchanged(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    full = stored(shop)
    touched = list(Customer.objects.filter(shop=shop, shopify_id__in=(1, 3, 4, 5, 9, 12)).values_list("pk", flat=True))
    CustomerMetrics.objects.filter(customer_id__in=touched).delete()

    written = customer_metrics_refresh(shop=shop, customer_ids=touched, now=NOW)

    assert written == len(touched)
    assert_rows_equal(stored(shop), full)


def test_a_refresh_ranks_changed_customers_against_the_last_rebuilds_distribution(shop):
    m = varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    at_rebuild = reference(shop)
    old_threshold = ShopMetricsBreakpoints.objects.get(shop=shop, position=75).line_item_price
    untouched = stored(shop)
    nine, five = (Customer.objects.get(shop=shop, shopify_id=sid).pk for sid in (9, 5))
    # 9 becomes the top spender with a premium item; 5 buys for the first time and abandons a checkout.
    m.order(9, 2, "900.00", lines=(("900.00", "Jewelry"), ("900.00", "Jewelry")), codes=["VIP15"])
    m.checkout(5, 6, "33.00")
    m.order(5, 4, "20.00", lines=(("20.00", "Tea"),), device="mobile")
    later = NOW + dt.timedelta(hours=1)

    assert customer_metrics_refresh(shop=shop, customer_ids=[nine, five], now=later) == 2

    after = stored(shop)
    stale = reference(shop, now=later, ranked_among=at_rebuild, premium_price=old_threshold)
    assert_rows_equal({pk: after[pk] for pk in (nine, five)}, {pk: stale[pk] for pk in (nine, five)})
    assert after[nine]["spend_percentile"] == 1.0 and after[nine]["rfm_monetary"] == 5
    assert {pk: row for pk, row in after.items() if pk not in (nine, five)} == {
        pk: row for pk, row in untouched.items() if pk not in (nine, five)}
    # The nightly rebuild re-ranks everyone against the new distribution.
    customer_metrics_rebuild(shop=shop, now=later)
    fresh = reference(shop, now=later)
    assert_rows_equal(stored(shop), fresh)
    own_columns = [c for c in COLUMNS if c not in SHOP_RELATIVE]
    assert_rows_equal({pk: after[pk] for pk in (nine, five)}, {pk: fresh[pk] for pk in (nine, five)}, own_columns)


def test_deleted_customers_lose_their_rows(shop):
    varied_mirror(shop)
    assert not Customer.objects.filter(shop=shop, shopify_id=13, metrics__isnull=False).exists()
    customer_metrics_rebuild(shop=shop, now=NOW)
    regular, bargain = (Customer.objects.get(shop=shop, shopify_id=sid).pk for sid in (1, 2))

    customer_delete(shop=shop, shopify_id=1)
    customer_metrics_refresh(shop=shop, customer_ids=[regular], now=NOW)
    assert not CustomerMetrics.objects.filter(customer_id=regular).exists()

    customer_delete(shop=shop, shopify_id=2)
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert not CustomerMetrics.objects.filter(customer_id=bargain).exists()
    assert_rows_equal(stored(shop), reference(shop))


def test_a_refresh_of_nobody_or_of_another_shops_customers_writes_nothing(shop, other_shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    other = Mirror(other_shop).customer(1)
    before = stored(shop)

    assert customer_metrics_refresh(shop=shop, customer_ids=[], now=NOW + dt.timedelta(hours=1)) == 0
    assert customer_metrics_refresh(shop=shop, customer_ids=[other], now=NOW + dt.timedelta(hours=1)) == 0

    assert stored(shop) == before and not CustomerMetrics.objects.filter(customer_id=other).exists()


def test_a_shop_never_rebuilt_is_rebuilt_whole_by_its_first_refresh(shop):
    varied_mirror(shop)
    first = Customer.objects.get(shop=shop, shopify_id=1).pk

    written = customer_metrics_refresh(shop=shop, customer_ids=[first], now=NOW)

    assert written == 12
    assert_rows_equal(stored(shop), reference(shop))
    assert ShopMetricsBreakpoints.objects.filter(shop=shop).count() == 100


def test_the_first_buyer_of_a_shop_without_buyers_ranks_as_the_only_one(shop):
    m = Mirror(shop)
    buyer = m.customer(1)
    m.customer(2)
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert ShopMetricsBreakpoints.objects.filter(shop=shop, total_spent__isnull=False).count() == 0
    m.order(1, 1, "10.00")

    customer_metrics_refresh(shop=shop, customer_ids=[buyer], now=NOW)

    row = CustomerMetrics.objects.get(customer_id=buyer)
    assert (row.spend_percentile, row.rfm_recency, row.rfm_frequency, row.rfm_monetary, row.rfm_group) == (
        1.0, 1, 1, 1, "lost")
    customer_metrics_rebuild(shop=shop, now=NOW)
    assert_rows_equal(stored(shop), reference(shop))


def test_a_rebuild_leaves_rows_that_a_later_refresh_computed(shop):
    m = varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    nine = Customer.objects.get(shop=shop, shopify_id=9).pk
    m.order(9, 0.5, "70.00")
    customer_metrics_refresh(shop=shop, customer_ids=[nine], now=NOW + dt.timedelta(hours=1))
    refreshed = stored(shop)[nine]

    customer_metrics_rebuild(shop=shop, now=NOW)   # a rebuild that started before the refresh finishes after it

    assert stored(shop)[nine] == refreshed and refreshed["orders_count"] == 2
    assert CustomerMetrics.objects.get(customer_id=nine).computed_at == NOW + dt.timedelta(hours=1)


# -- dirty marks ----------------------------------------------------------------------------------
def test_dirty_customers_are_refreshed_and_their_marks_cleared(shop):
    varied_mirror(shop)                      # the writer marked every customer it touched
    customer_metrics_rebuild(shop=shop, now=NOW)
    dirty = set(Customer.objects.filter(shop=shop, dirty_at__isnull=False).values_list("pk", flat=True))
    assert len(dirty) == 13

    oldest = dirty_customers_refresh(shop=shop, limit=2, now=NOW)
    assert len(oldest) == 2 and Customer.objects.filter(shop=shop, dirty_at__isnull=False).count() == 11
    rest = dirty_customers_refresh(shop=shop, limit=100, now=NOW)

    assert set(oldest) | set(rest) == dirty and not set(oldest) & set(rest)
    assert not Customer.objects.filter(shop=shop, dirty_at__isnull=False).exists()
    assert dirty_customers_refresh(shop=shop, now=NOW) == []
    assert_rows_equal(stored(shop), reference(shop))


def test_a_customer_dirtied_while_the_refresh_runs_stays_dirty(shop, monkeypatch):
    m = varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    Customer.objects.filter(shop=shop).update(dirty_at=None)
    m.order(9, 1, "10.00")
    m.order(10, 1, "10.00")
    nine, ten = (Customer.objects.get(shop=shop, shopify_id=sid).pk for sid in (9, 10))
    refresh = metrics_service.customer_metrics_refresh

    def refresh_while_an_order_lands(**kwargs):
        written = refresh(**kwargs)
        m.order(10, 0.5, "99.00")   # a delivery applied after the refresh read customer 10's orders
        return written

    monkeypatch.setattr(metrics_service, "customer_metrics_refresh", refresh_while_an_order_lands)
    assert sorted(dirty_customers_refresh(shop=shop, now=NOW)) == sorted([nine, ten])

    assert list(Customer.objects.filter(shop=shop, dirty_at__isnull=False).values_list("pk", flat=True)) == [ten]
    assert CustomerMetrics.objects.get(customer_id=ten).orders_count == 2     # the 99.00 order is not in yet
    monkeypatch.undo()
    assert dirty_customers_refresh(shop=shop, now=NOW) == [ten]
    assert CustomerMetrics.objects.get(customer_id=ten).orders_count == 3
    assert not Customer.objects.filter(shop=shop, dirty_at__isnull=False).exists()


# -- a generated shop -----------------------------------------------------------------------------
def test_devstore_personas_show_through_the_metrics(client, devstore, settings, django_capture_on_commit_callbacks):
    from tests.segments.mirror.test_backfill import run_backfill, seeded_install

    # A fixed day: the personas' figures are then the same whatever day the test runs (with today's,
    # the shares of a 400-customer shop wander around the thresholds from one day to the next).
    now = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc)
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=400, now=now)
    assert run_backfill(devstore, shop).backfill_status == "done"

    customer_metrics_rebuild(shop=shop, now=now)

    persona_of = dict(devstore.store.conn().execute("SELECT id, persona FROM customers WHERE shop = ?",
                                                    (shop.domain,)).fetchall())
    by_persona: dict[str, list[CustomerMetrics]] = {}
    for row in CustomerMetrics.objects.filter(shop=shop).select_related("customer"):
        by_persona.setdefault(persona_of[row.customer.shopify_id], []).append(row)

    def mean(persona: str, column: str) -> float:
        values = [getattr(r, column) for r in by_persona[persona] if getattr(r, column) is not None]
        assert len(values) >= 5, (persona, column)
        return statistics.fmean(float(v) for v in values)

    def others_mean(persona: str, column: str) -> float:
        return statistics.fmean(float(getattr(r, column)) for p, rows in by_persona.items() if p != persona
                                for r in rows if getattr(r, column) is not None)

    assert mean("mobile_first", "mobile_share") > 0.5 > others_mean("mobile_first", "mobile_share")
    assert mean("bargain_hunter", "discount_dependence") > 0.6
    assert mean("full_price_loyalist", "discount_dependence") < 0.1
    assert mean("fastest_shipping", "expedited_share") > 0.6 > others_mean("fastest_shipping", "expedited_share")
    assert mean("vip", "spend_percentile") > 0.85 and mean("vip", "rfm_monetary") > 4.5
    assert mean("cart_abandoner", "abandoned_checkouts") >= 3
    assert 20 < statistics.median(r.median_order_gap_days for r in by_persona["replenisher"]) < 40
    assert all(r.orders_count <= 1 for r in by_persona["one_time_buyer"])
    lapsing_days = [(now - r.last_order_at).days for r in by_persona["lapsing"] if r.last_order_at]
    assert min(lapsing_days) >= 180 and statistics.median(lapsing_days) > 180
    assert statistics.fmean(lapsing_days) > 2 * statistics.fmean(
        (now - r.last_order_at).days for r in by_persona["high_value_repeat"])
    assert max(r.rfm_recency for r in by_persona["lapsing"]) <= 3
    assert mean("lapsing", "rfm_recency") + 1 < mean("high_value_repeat", "rfm_recency")
    assert mean("new_customer", "rfm_recency") > 4.5 and mean("vip", "rfm_recency") > 4


def test_shops_take_turns_so_a_shops_backlog_holds_another_back_by_one_batch(shop, other_shop, monkeypatch):
    busy, quiet = Mirror(shop), Mirror(other_shop)
    for sid in range(1, 251):
        busy.customer(sid)
    for sid in (1, 2):
        quiet.customer(sid)                  # marked after the whole backlog
    turns = []
    refresh = metrics_service.dirty_customers_refresh

    def recorded(*, shop, limit):
        ids = refresh(shop=shop, limit=limit, now=NOW)
        turns.append((shop.domain, len(ids)))
        return ids

    monkeypatch.setattr(metrics_service, "dirty_customers_refresh", recorded)
    assert metrics_service.dirty_shops_refresh(batch=100, budget=dt.timedelta(minutes=5)) == 252

    assert turns[:2] == [(shop.domain, 100), (other_shop.domain, 2)]
    assert turns[2:] == [(shop.domain, 100), (shop.domain, 50)]
    assert not Customer.objects.filter(dirty_at__isnull=False).exists()
