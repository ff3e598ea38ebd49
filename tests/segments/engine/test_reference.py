"""The reference evaluator (tests.segments.engine.reference) pinned on small hand-built stores, and its
table metrics held to the metrics table on random stores."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from segments.engine.registry import METRICS
from segments.engine.rules import parse
from segments.metrics.models import CustomerMetrics
from segments.metrics.refresh import customer_metrics_rebuild
from tests.segments.engine.reference import Reference, reference_members, reference_values
from tests.segments.engine.stores import Line, Store, local, utc

pytestmark = pytest.mark.django_db

NOW = utc(2026, 6, 1, 16, 0)          # noon in New York (EDT), 21:30 in Kolkata, 04:00 next day in Auckland
NY = "America/New_York"


def days(n: float, now: dt.datetime = NOW) -> dt.datetime:
    return now - dt.timedelta(days=n)


def c(metric: str, op: str, value, **extra) -> dict:
    return {"metric": metric, "op": op, "value": value, **extra}


def members(store: Store, include: dict, *, exclude: dict | None = None, now: dt.datetime = NOW,
            rebuild: bool = True) -> set:
    if rebuild:
        customer_metrics_rebuild(shop=store.shop, now=now)
    document = {"version": 1, "include": include}
    if exclude is not None:
        document["exclude"] = exclude
    return reference_members(parse(document), shop=store.shop, now=now)


# -- unknown values -------------------------------------------------------------------------------
def test_no_value_matches_no_comparison_and_not_turns_that_around():
    s = Store()
    never = s.customer(created_at=days(400))
    buyer = s.customer(created_at=days(400))
    s.order(buyer, days(10), "40.00", source="web")
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    every = {never.pk, buyer.pk}

    def m(include, **kw):
        return members(s, include, rebuild=False, **kw)

    assert m(c("days_since_last_order", "lt", 30)) == {buyer.pk}
    assert m({"not": c("days_since_last_order", "lt", 30)}) == {never.pk}
    assert m(c("days_since_last_order", "neq", 5)) == {buyer.pk}
    assert m(c("days_since_last_order", "gte", 0)) == {buyer.pk}
    assert m(c("source_channel", "not_in", ["pos"])) == {buyer.pk}
    assert m(c("source_channel", "neq", "pos")) == {buyer.pk}
    assert m(c("aov", "lt", "1000")) == {buyer.pk}
    assert m(c("last_order_date", "before", "2099-01-01")) == {buyer.pk}
    assert m(c("discounted_order_share", "lte", 1)) == {buyer.pk}
    assert m(c("replenishment_ratio", "gte", 0)) == set()            # one order: no median gap
    assert m({"not": c("replenishment_ratio", "gte", 0)}) == every
    # Counts and sums are 0, not unknown, without orders.
    assert m(c("orders_count", "eq", 0)) == {never.pk}
    assert m(c("total_spent", "eq", 0)) == {never.pk}
    assert m(c("full_price_orders", "lt", 1)) == {never.pk}
    # Windowed: no orders in the window is 0 for counts and no value for ratios and maxima.
    assert m(c("orders_count", "eq", 0, window={"last_days": 5})) == every
    assert m(c("largest_order", "gte", 0, window={"last_days": 5})) == set()
    assert m(c("mobile_share", "lte", 1, window={"last_days": 5})) == set()
    # Exclude leaves out whoever matches it; an unknown value does not match it.
    assert m(c("orders_count", "gte", 0), exclude=c("days_since_last_order", "lt", 30)) == {never.pk}
    assert m(c("orders_count", "gte", 0), exclude=c("days_since_last_order", "gte", 0)) == {never.pk}
    assert m(c("orders_count", "gte", 0), exclude={"not": c("days_since_last_order", "gte", 0)}) == {buyer.pk}
    # Consent and tags always have a value; abandoned_not_purchased_since is false without checkouts.
    assert m(c("email_marketing", "eq", "unknown")) == every
    assert m(c("abandoned_not_purchased_since", "is", False)) == every
    assert m(c("last_abandoned_value", "gte", 0)) == set()


def test_only_live_customers_with_a_metrics_row_are_evaluated():
    s = Store()
    kept = s.customer(created_at=days(10))
    gone = s.customer(created_at=days(10), deleted_at=days(1))
    s.order(gone, days(3))
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    late = s.customer(created_at=days(0.5))          # arrived after the rebuild: no metrics row yet
    other = Store()
    other.customer(created_at=days(10))
    customer_metrics_rebuild(shop=other.shop, now=NOW)

    assert members(s, c("orders_count", "gte", 0), rebuild=False) == {kept.pk}
    assert not CustomerMetrics.objects.filter(customer=late).exists()
    assert set(reference_values(parse({"version": 1, "include": c("orders_count", "gte", 0)}),
                                shop=s.shop, now=NOW)) == {kept.pk}


# -- the shop's calendar --------------------------------------------------------------------------
def test_dates_and_days_are_the_shops_calendar_days():
    ny = Store(tz=NY)
    late_evening = local(NY, 2026, 5, 30, 23, 30)          # 03:30 UTC on May 31
    buyer = ny.customer(created_at=late_evening)
    ny.order(buyer, late_evening)
    customer_metrics_rebuild(shop=ny.shop, now=NOW)

    def m(include):
        return members(ny, include, rebuild=False)

    assert m(c("last_order_date", "between", ["2026-05-30", "2026-05-30"])) == {buyer.pk}
    assert m(c("first_order_date", "after", "2026-05-30")) == set()
    assert m(c("first_order_date", "before", "2026-05-31")) == {buyer.pk}
    assert m(c("days_since_last_order", "eq", 2)) == {buyer.pk}
    assert m(c("customer_age_days", "eq", 2)) == {buyer.pk}
    assert m(c("last_order_date", "within_last_days", 2)) == {buyer.pk}     # on or after May 30
    assert m(c("last_order_date", "within_last_days", 1)) == set()

    # The same moment in a UTC shop is May 31.
    u = Store()
    same = u.customer(created_at=late_evening)
    u.order(same, late_evening)
    customer_metrics_rebuild(shop=u.shop, now=NOW)
    assert members(u, c("last_order_date", "between", ["2026-05-31", "2026-05-31"]), rebuild=False) == {same.pk}
    assert members(u, c("days_since_last_order", "eq", 1), rebuild=False) == {same.pk}


def test_an_order_yesterday_at_2359_is_one_day_ago_at_0001():
    s = Store(tz=NY)
    buyer = s.customer(created_at=local(NY, 2026, 5, 31, 23, 59))
    s.order(buyer, local(NY, 2026, 5, 31, 23, 59))
    now = local(NY, 2026, 6, 1, 0, 1)

    assert members(s, c("days_since_last_order", "eq", 1), now=now) == {buyer.pk}
    assert members(s, c("customer_age_days", "eq", 1), now=now) == {buyer.pk}
    assert members(s, c("days_since_first_order", "eq", 0), now=local(NY, 2026, 5, 31, 23, 59, 30)) == {buyer.pk}


def test_a_last_days_window_lets_an_order_go_at_the_shops_midnight():
    s = Store(tz=NY)
    buyer = s.customer(created_at=days(100))
    s.order(buyer, local(NY, 2026, 5, 25, 10, 0))
    in_window = c("orders_count", "gte", 1, window={"last_days": 7})
    recent = c("first_order_date", "within_last_days", 7)

    before_midnight = local(NY, 2026, 6, 1, 23, 59, 59)
    at_midnight = local(NY, 2026, 6, 2, 0, 0, 0)
    assert members(s, in_window, now=before_midnight) == {buyer.pk}
    assert members(s, recent, now=before_midnight) == {buyer.pk}
    assert members(s, in_window, now=at_midnight) == set()
    assert members(s, recent, now=at_midnight) == set()
    # A UTC shop's day ended four hours earlier.
    u = Store()
    other = u.customer(created_at=days(100))
    u.order(other, local(NY, 2026, 5, 25, 10, 0))
    assert members(u, in_window, now=utc(2026, 6, 1, 23, 59, 59)) == {other.pk}
    assert members(u, in_window, now=utc(2026, 6, 2, 0, 0, 0)) == set()


def test_a_window_counts_only_what_lies_inside_it():
    s = Store(tz=NY)
    buyer = s.customer(created_at=days(900))
    s.order(buyer, local(NY, 2026, 1, 15, 12), "100.00", lines=(Line("90.00", "Coffee"),), device="mobile")
    s.order(buyer, local(NY, 2025, 12, 31, 23, 59), "30.00", lines=(Line("10.00", "Tea"),), device="desktop")
    s.order(buyer, local(NY, 2025, 6, 1, 0, 0), "20.00", lines=(Line("10.00", "Tea"),), device="desktop")
    s.order(buyer, local(NY, 2026, 5, 1, 0, 0), "40.00", lines=(Line("10.00", "Mugs"),), device="mobile",
            cancelled=True)
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    def value(metric, window=None, **params):
        return Reference(shop=s.shop, now=NOW).metric_value(METRICS[metric], buyer.pk,
                                                            window=parse_window(window), params=params)

    assert value("orders_count") == 3
    assert value("orders_count", {"between": ["2025-12-31", "2026-01-15"]}) == 2
    assert value("orders_count", {"between": ["2026-01-01", "2026-01-15"]}) == 1
    assert value("total_spent", {"months": [12, 1, 2], "years": 1}) == Decimal("130.00")
    assert value("total_spent", {"months": [6], "years": 1}) == 0      # July 2025 to June 2026
    assert value("total_spent", {"months": [6], "years": 2}) == Decimal("20.00")
    assert value("aov", {"months": [12, 1], "years": 1}) == Decimal("65.00")
    assert value("largest_order", {"last_days": 200}) == Decimal("100.00")
    assert value("mobile_share", {"last_days": 200}) == 0.5
    assert value("distinct_product_types", {"last_days": 200}) == 2
    assert value("distinct_product_types", {"last_days": 100}) == 0          # the cancelled order's Mugs count not
    assert value("product_type_share", {"last_days": 200}, product_type="Coffee") == 0.5
    assert value("product_type_share", {"last_days": 100}, product_type="Coffee") is None
    assert value("product_type_orders", {"last_days": 100}, product_type="Coffee") == 0


def parse_window(window):
    if window is None:
        return None
    return parse({"version": 1, "include": c("orders_count", "gte", 0, window=window)}).include.window


def test_holidays_and_seasons_are_the_shops_dates():
    ny = Store(tz=NY)
    buyer = ny.customer(created_at=days(900))
    for when in (local(NY, 2025, 12, 24, 23, 30),     # Christmas Eve in New York, Dec 25 in UTC
                 local(NY, 2025, 12, 25, 0, 30),      # the day after
                 local(NY, 2025, 12, 1, 12, 0),       # Cyber Monday 2025 (Thanksgiving Nov 27) and Christmas
                 local(NY, 2025, 7, 4, 12, 0)):
        ny.order(buyer, when)
    customer_metrics_rebuild(shop=ny.shop, now=NOW)

    def m(include):
        return members(ny, include, rebuild=False)

    christmas = {"params": {"holiday": "christmas"}}
    bfcm = {"params": {"holiday": "black_friday_cyber_monday"}}
    assert m(c("holiday_order_share", "eq", 0.5, **christmas)) == {buyer.pk}
    assert m(c("holiday_order_share", "eq", 0.25, **bfcm)) == {buyer.pk}
    assert m(c("holiday_order_share", "eq", 0, params={"holiday": "valentines"})) == {buyer.pk}
    assert m(c("orders_count", "eq", 2, window={"holiday": "christmas", "years": 1})) == {buyer.pk}
    assert m(c("orders_count", "eq", 1, window={"holiday": "black_friday_cyber_monday", "years": 2})) == {buyer.pk}
    assert m(c("season_order_share", "eq", 0.75, params={"months": [12]})) == {buyer.pk}
    # Windows and parameters together: the Christmas share of the last 200 days' orders.
    assert m(c("holiday_order_share", "eq", "0.6667", window={"last_days": 200}, **christmas)) == set()
    assert m(c("holiday_order_share", "between", ["0.6666", "0.6667"], window={"last_days": 200},
               **christmas)) == {buyer.pk}

    u = Store()
    same = u.customer(created_at=days(900))
    for when in (local(NY, 2025, 12, 24, 23, 30), local(NY, 2025, 7, 4, 12, 0)):
        u.order(same, when)
    customer_metrics_rebuild(shop=u.shop, now=NOW)
    assert members(u, c("holiday_order_share", "eq", 0, **christmas), rebuild=False) == {same.pk}


# -- query metrics ----------------------------------------------------------------------------------
def test_has_tag_ignores_case_and_spaces_and_never_matches_the_apps_own_tags():
    s = Store()
    tagged = s.customer(created_at=days(10), tags=["VIP ", "seg:vip", "SEG:Winter", " Seg:Spring"])
    owned_only = s.customer(created_at=days(10), tags=["seg:wholesale"])
    bare = s.customer(created_at=days(10))
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    every = {tagged.pk, owned_only.pk, bare.pk}

    def has(tag, value=True):
        return members(s, c("has_tag", "is", value, params={"tag": tag}), rebuild=False)

    assert has("vip") == has(" Vip ") == {tagged.pk}
    assert has("winter") == has("spring") == has("wholesale") == set()
    assert has("seg:vip") == has("SEG:winter") == has("seg:wholesale") == set()
    assert has("seg:vip", False) == every
    assert has("vip", False) == {owned_only.pk, bare.pk}


def test_cart_activity_counts_the_carts_of_the_customers_checkouts():
    s = Store()
    a = s.customer(created_at=days(200))
    b = s.customer(created_at=days(200))
    loner = s.customer(created_at=days(200))
    s.checkout(a, days(100), completed=True, cart_token="t1")
    s.checkout(a, days(40), deleted=True, cart_token="t2")
    s.checkout(a, days(20), cart_token="t3")            # no such cart
    s.checkout(a, days(5), cart_token="t1")             # the same cart again: counted once
    s.checkout(a, days(2))                              # no cart token
    s.checkout(b, days(50), cart_token="t1")
    s.checkout(loner, days(2))
    s.cart("t1", days(100), updated_at=days(3))
    s.cart("t2", days(40))
    s.cart("", days(1))                                 # a blank token links to nobody
    s.cart("t4", days(1))                               # no checkout names it
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    def m(include):
        return members(s, include, rebuild=False)

    assert m(c("cart_activity", "eq", 2)) == {a.pk}
    assert m(c("cart_activity", "eq", 1)) == {b.pk}
    assert m(c("cart_activity", "eq", 0)) == {loner.pk}
    assert m(c("cart_activity", "eq", 1, window={"last_days": 30})) == {a.pk, b.pk}   # t1 by its update
    assert m(c("cart_activity", "eq", 1, window={"between": ["2026-04-01", "2026-04-30"]})) == {a.pk}   # t2
    assert m(c("cart_activity", "eq", 0, window={"between": ["2026-02-20", "2026-02-22"]})) == {a.pk, b.pk, loner.pk}


def test_product_type_vendor_and_product_are_exact_and_per_order():
    s = Store()
    buyer = s.customer(created_at=days(300))
    s.order(buyer, days(50), lines=(Line("10.00", "Coffee", "Acme", 7), Line("12.00", "Coffee", "Acme", 7)))
    s.order(buyer, days(40), lines=(Line("10.00", "coffee", "acme", 8),))
    s.order(buyer, days(30), lines=(Line("10.00", "Tea", "Bean Co", None),))
    s.order(buyer, days(20), lines=(Line("10.00", "Coffee", "Bean Co", 7),), cancelled=True)
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    def m(include):
        return members(s, include, rebuild=False)

    assert m(c("product_type_orders", "eq", 1, params={"product_type": "Coffee"})) == {buyer.pk}
    assert m(c("product_type_share", "between", ["0.3333", "0.3334"], params={"product_type": "coffee"})) == {buyer.pk}
    assert m(c("vendor_orders", "eq", 1, params={"vendor": "Bean Co"})) == {buyer.pk}
    assert m(c("vendor_share", "eq", 0, params={"vendor": "Nobody"})) == {buyer.pk}
    assert m(c("product_orders", "eq", 1, params={"product_id": 7})) == {buyer.pk}
    assert m(c("product_orders", "eq", 0, params={"product_id": 9})) == {buyer.pk}
    assert m(c("distinct_product_types", "eq", 3)) == {buyer.pk}      # Coffee, coffee, Tea


# -- engagement -----------------------------------------------------------------------------------
def test_abandoned_checkouts_wait_for_the_shops_delay_and_purchases_since_are_any_time():
    s = Store(abandon_minutes=60)
    a = s.customer(created_at=days(300))
    b = s.customer(created_at=days(300))
    idle = s.customer(created_at=days(300))
    s.checkout(a, days(10), "45.00")
    s.order(a, days(5))
    s.checkout(a, days(3), "70.00")
    s.checkout(a, NOW - dt.timedelta(minutes=30), "15.00")     # not abandoned yet
    s.checkout(a, days(1), "999.00", deleted=True)
    s.checkout(a, days(2), "60.00", completed=True)
    s.checkout(b, days(20), "30.00")
    s.order(b, days(15))
    customer_metrics_rebuild(shop=s.shop, now=NOW)

    def m(include, now=NOW):
        return members(s, include, rebuild=False, now=now)

    assert m(c("abandoned_checkouts", "eq", 2)) == {a.pk}
    assert m(c("last_abandoned_value", "eq", "70.00")) == {a.pk}
    assert m(c("days_since_last_abandoned", "eq", 3)) == {a.pk}
    assert m(c("abandoned_not_purchased_since", "is", True)) == {a.pk}
    assert m(c("abandoned_not_purchased_since", "is", False)) == {b.pk, idle.pk}
    assert m(c("abandoned_checkouts", "eq", 1, window={"last_days": 7})) == {a.pk}
    # The newest abandoned checkout inside the window is ten days old, and a purchase followed it.
    ten_days = {"between": [(NOW - dt.timedelta(days=11)).date().isoformat(),
                            (NOW - dt.timedelta(days=9)).date().isoformat()]}
    assert m(c("abandoned_not_purchased_since", "is", True, window=ten_days)) == set()
    assert m(c("abandoned_checkouts", "eq", 1, window=ten_days)) == {a.pk}
    # Half an hour later the 30-minute-old checkout is abandoned too.
    later = NOW + dt.timedelta(minutes=31)
    customer_metrics_rebuild(shop=s.shop, now=later)
    assert m(c("abandoned_checkouts", "eq", 3), now=later) == {a.pk}
    assert m(c("last_abandoned_value", "eq", "15.00"), now=later) == {a.pk}


def test_consent_states_compare_exactly():
    s = Store()
    yes = s.customer(created_at=days(10), email_marketing="subscribed", sms_marketing="pending")
    no = s.customer(created_at=days(10), email_marketing="unsubscribed")
    customer_metrics_rebuild(shop=s.shop, now=NOW)
    assert members(s, c("email_marketing", "eq", "subscribed"), rebuild=False) == {yes.pk}
    assert members(s, c("email_marketing", "not_in", ["subscribed", "pending"]), rebuild=False) == {no.pk}
    assert members(s, c("sms_marketing", "in", ["pending", "invalid"]), rebuild=False) == {yes.pk}
    assert members(s, c("sms_marketing", "neq", "unknown"), rebuild=False) == {yes.pk}
