"""The SQL compiler on hand-built mirrors: every metric compiles and runs with and without a window,
NULL semantics, day boundaries in the shop's timezone, shared features, and shop scoping."""
from __future__ import annotations

import datetime as dt

import pytest

from segments.engine import compiler

from segments.engine import context
from segments.engine.registry import METRICS, TYPE_BOUNDS
from segments.engine.rules import parse
from segments.metrics.refresh import customer_metrics_rebuild
from segments.mirror.models import Customer
from segments.shops.models import Shop
from tests.segments.engine.test_metrics_table import NOW, Mirror, varied_mirror

pytestmark = pytest.mark.django_db


def members(shop: Shop, include: dict, exclude: dict | None = None, now: dt.datetime = NOW, ids=None) -> set[int]:
    document = {"version": 1, "include": include}
    if exclude is not None:
        document["exclude"] = exclude
    pks = compiler.evaluate(parse(document), shop=shop, now=now, customer_ids=ids)
    return set(Customer.objects.filter(pk__in=pks).values_list("shopify_id", flat=True))


@pytest.fixture
def shop():
    return Shop.objects.create(domain="compiler.myshopify.com", iana_timezone="America/New_York")


@pytest.fixture
def varied(shop):
    varied_mirror(shop)
    customer_metrics_rebuild(shop=shop, now=NOW)
    return shop


def _sample_condition(key: str) -> dict:
    metric = METRICS[key]
    value: object = {"count": 1, "days": 30, "score": 3, "money": "50.00", "ratio": "0.5", "number": "1.0",
                     "date": "2026-01-01", "state": metric.choices[0] if metric.choices else None,
                     "text": "web", "bool": True}[metric.value_type]
    op = metric.operators[0]
    if op == "between":
        value = [value, value]
    if op in ("in", "not_in"):
        value = [value]
    if op == "within_last_days":
        value = 30
    condition = {"metric": key, "op": op, "value": value}
    params = {"product_type": "Tea", "vendor": "Acme", "product_id": 7, "months": [12, 1, 2],
              "holiday": "christmas", "tag": "wholesale", "event": "app:size_finder"}
    if metric.params:
        condition["params"] = {p.name: params[p.name] for p in metric.params}
    return condition


@pytest.mark.parametrize("key", sorted(METRICS))
def test_every_metric_compiles_and_runs_with_and_without_each_window(varied, key):
    metric = METRICS[key]
    windows = [None]
    if metric.windowed:
        windows += [{"last_days": 90}, {"between": ["2025-01-01", "2026-05-31"]}, {"months": [11, 12], "years": 2},
                    {"holiday": "black_friday_cyber_monday", "years": 3}]
    for window in windows:
        condition = _sample_condition(key)
        if window:
            condition["window"] = window
        hit = members(varied, condition)
        miss = members(varied, {"not": condition})
        assert hit.isdisjoint(miss)
        assert hit | miss == set(range(1, 13)), (key, window)   # every live customer decided, 13 deleted


def test_a_missing_value_is_false_for_every_operator_and_not_turns_it_true(varied):
    # Customer 5 never ordered: days since last order has no value.
    for op, value in (("gt", 1), ("lt", 36500), ("neq", 3), ("eq", 0)):
        condition = {"metric": "days_since_last_order", "op": op, "value": value}
        assert 5 not in members(varied, condition)
        assert 5 in members(varied, {"not": condition})
    assert 5 not in members(varied, {"metric": "source_channel", "op": "not_in", "value": ["web"]})
    assert 5 not in members(varied, {"metric": "aov", "op": "lt", "value": 1000})


def test_counts_over_a_window_are_zero_not_missing(varied):
    assert 5 in members(varied, {"metric": "orders_count", "op": "eq", "value": 0, "window": {"last_days": 30}})
    assert 5 in members(varied, {"metric": "total_spent", "op": "lte", "value": 0, "window": {"last_days": 30}})


def test_exclude_removes_matching_customers(varied):
    everyone = members(varied, {"metric": "orders_count", "op": "gte", "value": 0})
    assert everyone == set(range(1, 13))
    assert members(varied, {"metric": "orders_count", "op": "gte", "value": 0},
                   exclude={"metric": "orders_count", "op": "gte", "value": 1}) == {4, 5, 6}


def test_days_since_counts_calendar_days_in_the_shop_timezone():
    shop = Shop.objects.create(domain="tz.myshopify.com", iana_timezone="America/New_York")
    m = Mirror(shop)
    m.customer(1)
    m.customer(2)
    now = dt.datetime(2026, 6, 2, 4, 30, tzinfo=dt.UTC)        # 00:30 on June 2 in New York
    # 23:50 on June 1 in New York (03:50 UTC June 2): yesterday, 40 minutes ago.
    m.order(1, (NOW - dt.datetime(2026, 6, 2, 3, 50, tzinfo=dt.UTC)).total_seconds() / 86400)
    # 00:10 on June 2 in New York: today.
    m.order(2, (NOW - dt.datetime(2026, 6, 2, 4, 10, tzinfo=dt.UTC)).total_seconds() / 86400)
    customer_metrics_rebuild(shop=shop, now=now)
    assert members(shop, {"metric": "days_since_last_order", "op": "eq", "value": 1}, now=now) == {1}
    assert members(shop, {"metric": "days_since_last_order", "op": "eq", "value": 0}, now=now) == {2}
    assert members(shop, {"metric": "last_order_date", "op": "before", "value": "2026-06-02"}, now=now) == {1}
    assert members(shop, {"metric": "last_order_date", "op": "after", "value": "2026-06-01"}, now=now) == {2}
    assert members(shop, {"metric": "orders_count", "op": "gte", "value": 1, "window": {"last_days": 0 + 1}},
                   now=now) == {1, 2}


def test_a_last_days_window_drops_an_order_at_the_local_midnight():
    shop = Shop.objects.create(domain="window.myshopify.com", iana_timezone="America/New_York")
    m = Mirror(shop)
    m.customer(1)
    placed = dt.datetime(2026, 5, 1, 16, 0, tzinfo=dt.UTC)     # noon, May 1, New York
    m.order(1, (NOW - placed).total_seconds() / 86400)
    condition = {"metric": "orders_count", "op": "gte", "value": 1, "window": {"last_days": 30}}
    # The window starts at midnight 30 days before today: May 1 is inside through May 31 (local).
    last_minute = dt.datetime(2026, 6, 1, 3, 59, tzinfo=dt.UTC)   # 23:59 May 31 in New York
    first_minute = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)   # 00:00 June 1 in New York
    customer_metrics_rebuild(shop=shop, now=last_minute)
    assert members(shop, condition, now=last_minute) == {1}
    assert members(shop, condition, now=first_minute) == set()


def test_customer_ids_narrow_the_evaluation_and_other_shops_never_leak(varied):
    other = Shop.objects.create(domain="compiler-other.myshopify.com")
    varied_mirror(other)
    customer_metrics_rebuild(shop=other, now=NOW)
    condition = {"metric": "orders_count", "op": "gte", "value": 1}
    everyone = members(varied, condition)
    some = list(Customer.objects.filter(shop=varied, shopify_id__in=[1, 2, 5]).values_list("pk", flat=True))
    foreign = list(Customer.objects.filter(shop=other).values_list("pk", flat=True))
    assert members(varied, condition, ids=some) == {1, 2}
    assert members(varied, condition, ids=foreign) == set()
    assert everyone == {1, 2, 3, 7, 8, 9, 10, 11, 12}


def test_has_tag_ignores_case_and_never_matches_the_apps_own_tags(shop):
    from segments.mirror.records import CustomerRecord
    from segments.mirror.writer import customers_upsert

    customers_upsert(shop=shop, records=[
        CustomerRecord(1, updated_at=NOW, created_at=NOW, tags=["Wholesale ", "seg:vip"]),
        CustomerRecord(2, updated_at=NOW, created_at=NOW, tags=["retail"])])
    customer_metrics_rebuild(shop=shop, now=NOW)
    tag = {"metric": "has_tag", "op": "is", "value": True, "params": {"tag": "wholesale"}}
    assert members(shop, tag) == {1}
    assert members(shop, {**tag, "params": {"tag": "seg:vip"}}) == set()
    assert members(shop, {**tag, "value": False}) == {2}


def test_has_tag_follows_the_shops_own_prefix(shop):
    """With prefix `aud_` the app's tags are `aud_*` (`_` is literal, not a LIKE wildcard), and a
    `seg:` tag is the merchant's like any other."""
    from segments.mirror.records import CustomerRecord
    from segments.mirror.writer import customers_upsert

    Shop.objects.filter(pk=shop.pk).update(tag_prefix="aud_")
    shop.refresh_from_db()
    customers_upsert(shop=shop, records=[
        CustomerRecord(1, updated_at=NOW, created_at=NOW, tags=["seg:vip", "aud_vip"]),
        CustomerRecord(2, updated_at=NOW, created_at=NOW, tags=["audXvip"])])
    customer_metrics_rebuild(shop=shop, now=NOW)
    tag = {"metric": "has_tag", "op": "is", "value": True, "params": {"tag": "seg:vip"}}
    assert members(shop, tag) == {1}
    assert members(shop, {**tag, "params": {"tag": "aud_vip"}}) == set()
    assert members(shop, {**tag, "params": {"tag": "audXvip"}}) == {2}
    from tests.segments.engine.reference import reference_members  # the plain-Python semantics agree
    for param, expected in (("seg:vip", {1}), ("aud_vip", set()), ("audXvip", {2})):
        pks = reference_members(parse({"version": 1, "include": {**tag, "params": {"tag": param}}}), shop=shop,
                                now=NOW)
        assert set(Customer.objects.filter(pk__in=pks).values_list("shopify_id", flat=True)) == expected


def test_equal_features_are_computed_once():
    shop = Shop(pk=1, iana_timezone="UTC", checkout_abandon_minutes=60)
    ctx = context.Context(shop_id=1, now=NOW, tz="UTC", abandoned_before=NOW, premium_price=None, history=None)
    c = compiler.Compiler(ctx)
    for _ in range(3):
        c.ruleset(parse({"version": 1, "include": {"all": [
            {"metric": "orders_count", "op": "gte", "value": 3, "window": {"last_days": 90}},
            {"metric": "aov", "op": "gte", "value": 50, "window": {"last_days": 90}}]}}))
    assert len(c.order_features) == 2          # the 90-day count and the 90-day spend


def test_bounds_cover_the_sample_values():
    assert TYPE_BOUNDS["ratio"].maximum == 1


def test_the_whole_shop_statement_never_joins_by_nested_loop_whatever_the_planner_prefers(varied):
    # Given a rule that needs every feature pass (orders, line items, checkouts, carts, top source),
    # and a planner pushed towards nested loops as hard as settings can (as estimates of one row on
    # tables a bulk load left unanalyzed push it: it then re-ran a pass once per customer)
    from django.db import connection, transaction

    window = {"last_days": 365}
    document = parse({"version": 1, "include": {"any": [
        {"metric": "orders_count", "op": "gte", "value": 1, "window": window},
        {"metric": "product_type_orders", "op": "gte", "value": 1, "window": window, "params": {"product_type": "Tea"}},
        {"metric": "abandoned_checkouts", "op": "gte", "value": 1, "window": window},
        {"metric": "cart_activity", "op": "gte", "value": 1, "window": window},
        {"metric": "source_channel", "op": "eq", "value": "web", "window": window},
    ]}})
    c = compiler.Compiler(context.context_for(varied, NOW))
    sql, params = c.statement({"hit": c.ruleset(document)})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
        # When PostgreSQL plans the whole-shop statement
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(sql, params)
        hits = {pk for pk, hit in cursor.fetchall() if hit}

    # Then every join is a hash or merge join (full joins have no nested-loop form), and the answer
    # is the evaluation's
    assert "Nested Loop" not in plan, plan
    assert "Full Join" in plan
    assert hits == compiler.evaluate(document, shop=varied, now=NOW)
