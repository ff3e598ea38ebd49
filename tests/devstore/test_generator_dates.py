"""The generator's persona guarantees hold whatever day it runs on.

History is laid out backwards from "today", so a guarantee that holds on one day can break on
another (a month end, 29 February, a DST change, Black Friday week, 31 December). These tests seed
shops ending on such days and check the ground truth the way the app will read it: a guest order
carrying a customer's email counts as that customer's (the mirror attaches it by email).
"""
from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstore.generator import holiday_windows, seed_shop
from devstore.personas import LAPSED_QUIET_DAYS, NEW_CUSTOMER_DAYS
from devstore.state import DevStore, parse_iso

SHOP = "dates.myshopify.com"
CUSTOMERS = 1500

# Days whose calendar arithmetic has bitten date code before.
HARD_DAYS = (
    dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 4, 30), dt.date(2027, 6, 30),   # month ends
    dt.date(2024, 2, 29), dt.date(2028, 2, 29), dt.date(2028, 3, 1), dt.date(2030, 2, 28),   # leap days
    dt.date(2026, 3, 8), dt.date(2026, 11, 1), dt.date(2026, 3, 29), dt.date(2026, 10, 25),  # DST, US and EU
    dt.date(2026, 11, 26), dt.date(2026, 11, 27), dt.date(2026, 11, 30), dt.date(2026, 12, 1),  # BFCM week
    dt.date(2027, 11, 29), dt.date(2026, 12, 31), dt.date(2027, 1, 1),
)


def _attached_orders(store: DevStore) -> dict[int, list[tuple[str, int]]]:
    """(created_at, total_cents) of each customer's orders that stand (not cancelled), guest orders matched
    by email included."""
    conn = store.conn()
    by_email = {email.lower(): c for c, email in conn.execute(
        "SELECT id, email FROM customers WHERE shop = ? AND email IS NOT NULL", (SHOP,))}
    by_customer: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for customer_id, email, created_at, total in conn.execute(
            "SELECT customer_id, email, created_at, total_cents FROM orders WHERE shop = ? AND cancelled_at IS NULL",
            (SHOP,)):
        owner = customer_id if customer_id is not None else by_email.get((email or "").lower())
        if owner is not None:
            by_customer[owner].append((created_at, total))
    return by_customer


def persona_violations(store: DevStore, today: dt.date) -> list[str]:
    """Every persona promise the seeded shop breaks, as readable lines (empty: all kept)."""
    conn = store.conn()
    now = dt.datetime.combine(today, dt.time(), dt.timezone.utc)
    iso = lambda days: (now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    persona = dict(conn.execute("SELECT id, persona FROM customers WHERE shop = ?", (SHOP,)).fetchall())
    created = dict(conn.execute("SELECT id, created_at FROM customers WHERE shop = ?", (SHOP,)).fetchall())
    orders = _attached_orders(store)
    checkouts: dict[int, list[str]] = defaultdict(list)
    for customer_id, created_at in conn.execute(
            "SELECT customer_id, created_at FROM checkouts WHERE shop = ? AND customer_id IS NOT NULL", (SHOP,)):
        checkouts[customer_id].append(created_at)
    of = lambda name: [c for c, p in persona.items() if p == name]  # noqa: E731
    bad: list[str] = []

    latest = max(t for times in orders.values() for t, _ in times)
    if latest >= iso(0):
        bad.append(f"an order at {latest}, after the history's end")
    for c in of("one_time_buyer"):
        if len(orders[c]) > 1:   # one order, unless it was cancelled
            bad.append(f"one_time_buyer {c} has {len(orders[c])} orders")
    for c in of("lapsing"):
        activity = [t for t, _ in orders[c]] + checkouts[c]
        if not orders[c] or max(activity) >= iso(180):
            bad.append(f"lapsing {c} active at {max(activity, default=None)}")
    placed = dict(conn.execute("SELECT customer_id, MIN(created_at) FROM orders WHERE shop = ? GROUP BY 1", (SHOP,)))
    for c in of("new_customer"):
        first = placed.get(c)   # cancelled or not: the customer did order
        if first is None or first < iso(NEW_CUSTOMER_DAYS) or created[c] < iso(NEW_CUSTOMER_DAYS):
            bad.append(f"new_customer {c} created {created[c]}, first order {first}")
    for c in persona:
        first = min((t for t, _ in orders[c]), default=None)
        if first is not None and created[c] > first:
            bad.append(f"customer {c} created {created[c]} after its first order {first}")
    for c in of("cart_abandoner"):
        if len(checkouts[c]) < 3:
            bad.append(f"cart_abandoner {c} has {len(checkouts[c])} abandoned checkouts")
    for c in of("replenisher"):
        own = sorted(parse_iso(t) for (t,) in conn.execute(
            "SELECT created_at FROM orders WHERE customer_id = ?", (c,)))   # placed, cancelled or not
        gaps = [(b - a).days for a, b in zip(own, own[1:])]
        if not gaps or not 20 <= statistics.median(gaps) <= 40:
            bad.append(f"replenisher {c} has gaps {gaps}")

    seasonal = [t for c in of("seasonal_holiday") for t, _ in orders[c]]
    in_window = sum(any(a <= parse_iso(t).date() <= b for a, b in holiday_windows(parse_iso(t).date().year).values())
                    for t in seasonal)
    if in_window < 0.85 * len(seasonal):
        bad.append(f"seasonal_holiday: {in_window} of {len(seasonal)} orders in holiday windows")
    spend = lambda name: statistics.fmean(sum(v for _, v in orders[c]) for c in of(name))  # noqa: E731
    if not spend("vip") > 5 * spend("casual"):
        bad.append(f"vip spend {spend('vip'):.0f} is not 5x casual {spend('casual'):.0f}")
    lapsed_days = [(now - parse_iso(max(t for t, _ in orders[c]))).days for c in of("lapsing")]
    if min(lapsed_days) < LAPSED_QUIET_DAYS - 1:
        bad.append(f"a lapsing customer last ordered {min(lapsed_days)} days ago")
    return bad


def _check(tmp_path_factory, today: dt.date, seed: int) -> None:
    store = _seeded(tmp_path_factory, today, seed)
    try:
        assert persona_violations(store, today) == []
    finally:
        store.close()


def _seeded(tmp_path_factory, today: dt.date, seed: int) -> DevStore:
    store = DevStore(tmp_path_factory.mktemp("dates") / "devstore.db")
    store.shop_create(SHOP)
    seed_shop(store, SHOP, customers=CUSTOMERS, seed=seed, now=dt.datetime.combine(today, dt.time(15, 30),
                                                                                  dt.timezone.utc))
    return store


@pytest.mark.parametrize("today", HARD_DAYS + (dt.datetime.now(dt.timezone.utc).date(),), ids=str)
@pytest.mark.parametrize("seed", (7, 11))
def test_persona_guarantees_hold_on_hard_days(tmp_path_factory, today, seed):
    _check(tmp_path_factory, today, seed)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(today=st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2045, 12, 31)),
       seed=st.integers(min_value=0, max_value=2 ** 16))
def test_persona_guarantees_hold_on_any_day(tmp_path_factory, today, seed):
    _check(tmp_path_factory, today, seed)


def test_the_check_finds_a_broken_promise(tmp_path_factory):
    """The check can fail: a one-time buyer given a second order, as the old generator did."""
    today = dt.date(2026, 12, 6)
    store = _seeded(tmp_path_factory, today, 7)
    try:
        conn = store.conn()
        customer_id, email = conn.execute("SELECT id, email FROM customers WHERE persona = 'one_time_buyer' "
                                          "ORDER BY id LIMIT 1").fetchone()
        with store.tx() as tx:
            tx.execute("UPDATE orders SET customer_id = NULL, email = ? WHERE id = (SELECT MIN(id) FROM orders "
                       "WHERE customer_id IS NULL)", (email.upper(),))
        assert f"one_time_buyer {customer_id} has 2 orders" in persona_violations(store, today)
    finally:
        store.close()
