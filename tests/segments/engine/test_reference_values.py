"""The reference evaluator's purchase values (ratios, averages, gaps, shop-relative values, the top
source) and its table metrics, which must equal the metrics table's."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.engine.registry import METRICS
from segments.engine.rules import parse
from segments.metrics.models import CustomerMetrics
from segments.metrics.refresh import customer_metrics_rebuild
from tests.segments.engine.reference import Reference, reference_members, reference_values
from tests.segments.engine.stores import Line, Store, build, stores, utc
from tests.segments.engine.test_reference import NOW, c, days, members

pytestmark = pytest.mark.django_db


# -- purchase values --------------------------------------------------------------------------------
def test_ratios_are_floats_compared_with_the_rules_value_read_as_a_float():
    s = Store()
    buyer = s.customer(created_at=days(300))
    for i in range(10):
        s.order(buyer, days(100 - i), "10.00", codes=["X"] if i < 3 else [], refunded="3.00" if i == 0 else "0")
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    def m(include):
        return members(s, include, rebuild=False)

    assert m(c("discounted_order_share", "gte", 0.3)) == {buyer.pk}           # 3/10 >= 0.3
    assert m(c("discounted_order_share", "eq", "0.3")) == {buyer.pk}
    assert m(c("discounted_order_share", "gt", 0.3)) == set()
    assert m(c("refund_rate", "eq", "0.03")) == {buyer.pk}                    # 3.00 / 100.00
    assert m(c("discount_dependence", "eq", "0.2784")) == set()               # 27 / 97 = 0.27835...
    assert m(c("discount_dependence", "between", ["0.2783", "0.2784"])) == {buyer.pk}
    assert m(c("total_spent", "eq", "97.00")) == {buyer.pk}
    assert m(c("aov", "eq", "9.70")) == {buyer.pk}
    assert m(c("full_price_orders", "eq", 7)) == {buyer.pk}


def test_average_order_value_rounds_half_up_to_cents():
    s = Store()
    buyer = s.customer(created_at=days(300))
    for ago, total in ((30, "0.01"), (20, "0.01"), (10, "0.00"), (5, "0.00"), (3, "0.00"), (2, "0.01")):
        s.order(buyer, days(ago), total)
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    assert members(s, c("aov", "eq", "0.01"), rebuild=False) == {buyer.pk}      # 0.03 / 6 = 0.005
    assert CustomerMetrics.objects.get(customer=buyer).aov == Decimal("0.01")


def test_replenishment_ratio_is_elapsed_days_over_the_median_gap():
    s = Store()
    due = s.customer(created_at=days(300))
    for ago in (60, 50, 30):          # gaps 10 and 20: median 15; 30 days since the last
        s.order(due, days(ago))
    same_second = s.customer(created_at=days(300))
    s.order(same_second, days(7))
    s.order(same_second, days(7))     # a gap of 0: no ratio
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    assert members(s, c("replenishment_ratio", "eq", 2), rebuild=False) == {due.pk}
    assert members(s, {"not": c("replenishment_ratio", "gte", 0)}, rebuild=False) == {same_second.pk}


def test_the_median_gap_is_interpolated_as_the_metrics_table_does():
    s = Store()
    buyer = s.customer(created_at=days(300))
    first = days(100)
    for seconds in (0, 93_626, 93_626 + 307_081):       # gaps of 93,626 s and 307,081 s
        s.order(buyer, first + dt.timedelta(seconds=seconds))
    now = first + dt.timedelta(seconds=93_626 + 307_081 + 400_707)
    customer_metrics_rebuild(shop=s.shop, now=now)

    stored = CustomerMetrics.objects.get(customer=buyer).median_order_gap_days
    assert stored == 2.3189062500000004 != (93_626 / 86_400 + 307_081 / 86_400) / 2 == 2.31890625
    # 400,707 s is exactly twice the mean gap, but not twice the stored median.
    assert members(s, c("replenishment_ratio", "lt", 2), now=now, rebuild=False) == {buyer.pk}
    assert Reference(shop=s.shop, now=now).metric_value(METRICS["replenishment_ratio"], buyer.pk) == (
        400_707 / 86_400 / stored)


def test_shop_relative_values_follow_the_definitions():
    s = Store()
    # Spends 10, 20, 20, 40, 90; orders 1, 1, 2, 2, 3; the last orders 50, 40, 30, 20, 10 days ago.
    buyers = []
    for spent, count, last in ((10, 1, 50), (20, 1, 40), (20, 2, 30), (40, 2, 20), (90, 3, 10)):
        customer = s.customer(created_at=days(300))
        for i in range(count):
            s.order(customer, days(last + 60 * i), f"{spent / count:.2f}",
                    lines=(Line(f"{10 * (len(buyers) + 1)}.00"),))
        buyers.append(customer)
    s.customer(created_at=days(300))     # no orders: outside every ranking
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    ref = Reference(shop=s.shop, now=NOW)

    def values(metric):
        return [ref.metric_value(METRICS[metric], b.pk) for b in buyers]

    assert values("spend_percentile") == [0.2, 0.6, 0.6, 0.8, 1.0]
    assert values("rfm_monetary") == [1, 2, 2, 4, 5]
    assert values("rfm_frequency") == [1, 1, 3, 3, 5]
    assert values("rfm_recency") == [1, 2, 3, 4, 5]
    assert values("rfm_group") == ["lost", "hibernating", "needs_attention", "potential_loyalist", "champions"]
    # Line prices 10, 20, 30, 30, 40, 40, 50, 50, 50: the 75th percentile (rank 7) is 50.00.
    assert ref.premium_price == Decimal("50.00")
    assert values("premium_share") == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_the_top_source_is_the_most_frequent_and_ties_go_alphabetically():
    s = Store()
    tied = s.customer(created_at=days(300))
    for ago, source in ((10, "pos"), (9, "web"), (8, "pos"), (7, "web"), (6, "")):
        s.order(tied, days(ago), source=source)
    blank = s.customer(created_at=days(300))
    s.order(blank, days(3), source="")
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    assert members(s, c("source_channel", "eq", "pos"), rebuild=False) == {tied.pk}
    assert members(s, c("source_channel", "eq", "web", window={"last_days": 7}), rebuild=False) == {tied.pk}
    assert members(s, c("source_channel", "eq", "pos", window={"last_days": 8}), rebuild=False) == {tied.pk}
    assert members(s, {"not": c("source_channel", "in", ["web", "pos"])}, rebuild=False) == {blank.pk}


def test_reference_values_lists_each_conditions_value_in_document_order():
    s = Store()
    buyer = s.customer(created_at=days(30), tags=["vip"])
    s.order(buyer, days(3), "12.00")
    never = s.customer(created_at=days(30))
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    ruleset = parse({"version": 1, "include": {"any": [c("total_spent", "gt", 10), c("aov", "gt", 1)]},
                     "exclude": c("has_tag", "is", True, params={"tag": "VIP"})})

    assert reference_values(ruleset, shop=s.shop, now=NOW) == {
        buyer.pk: [Decimal("12.00"), Decimal("12.00"), True], never.pk: [Decimal(0), None, False]}
    assert reference_members(ruleset, shop=s.shop, now=NOW) == set()


# -- the reference's table metrics are the metrics table's ------------------------------------------
TABLE_METRICS = [m for m in METRICS.values() if m.source == "table"]


def stored_value(metric, row: CustomerMetrics, ref: Reference):
    """A table metric's value as the metrics table holds it, derived per registry.DERIVATIONS."""
    column = getattr(row, metric.column)
    if column is None:
        return None
    match metric.derive:
        case "days_since":
            return (ref.today - column.astimezone(ZoneInfo(ref.tz)).date()).days
        case "per_order":
            return column / row.orders_count if row.orders_count else None
        case "replenishment":
            if row.last_order_at is None or column == 0:
                return None
            return (ref.now - row.last_order_at).total_seconds() / 86400 / column
    if metric.value_type == "date":
        return column.astimezone(ZoneInfo(ref.tz)).date()
    return column


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(store=stores(), now=st.sampled_from((NOW, utc(2025, 12, 24, 4, 30), utc(2026, 11, 30, 23, 0))))
def test_the_references_table_metrics_equal_the_metrics_tables(store, now):
    with transaction.atomic():
        shop = build(store, now)
        customer_metrics_rebuild(shop=shop, now=now)
        ref = Reference(shop=shop, now=now)
        rows = {row.customer_id: row for row in CustomerMetrics.objects.filter(shop=shop)}
        assert set(rows) == set(ref.customer_ids)
        for pk, row in rows.items():
            for metric in TABLE_METRICS:
                # Exactly, floats included: a rule compares them exactly.
                want, got = stored_value(metric, row, ref), ref.metric_value(metric, pk)
                assert got == want and type(got) is type(want), (metric.key, pk, got, want)
        transaction.set_rollback(True)
