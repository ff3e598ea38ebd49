"""The generator's order-volume knob: more orders per customer without changing what the personas mean."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from devstore.generator import seed_shop
from devstore.personas import PERSONA_BY_NAME
from devstore.state import DevStore

SHOP = "test-shop.myshopify.com"
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
CUSTOMERS = 2000


def seeded(tmp_path, name: str, **options) -> tuple[DevStore, object]:
    store = DevStore(tmp_path / name)
    store.shop_create(SHOP)
    return store, seed_shop(store, SHOP, customers=CUSTOMERS, seed=7, now=NOW, **options)


def orders_per_customer(store: DevStore) -> dict[int, tuple[str, int]]:
    """customer id -> (persona, orders placed with the account)."""
    counts = Counter(row[0] for row in store.conn().execute(
        "SELECT customer_id FROM orders WHERE customer_id IS NOT NULL"))
    return {row[0]: (row[1], counts.get(row[0], 0))
            for row in store.conn().execute("SELECT id, persona FROM customers")}


def test_the_default_scale_changes_nothing(tmp_path):
    plain, plain_report = seeded(tmp_path, "plain.db")
    scaled, scaled_report = seeded(tmp_path, "one.db", orders_scale=1.0)
    for table in ("customers", "orders", "line_items", "checkouts"):
        query = f"SELECT * FROM {table} ORDER BY id"    # noqa: S608 - fixed names
        assert [tuple(r) for r in plain.conn().execute(query)] == [tuple(r) for r in scaled.conn().execute(query)]
    assert plain_report.orders == scaled_report.orders


def test_a_larger_scale_gives_repeat_buyers_more_orders_and_leaves_the_rest(tmp_path):
    base, base_report = seeded(tmp_path, "base.db")
    more, more_report = seeded(tmp_path, "more.db", orders_scale=1.32)

    assert 3.6 < base_report.orders / CUSTOMERS < 4.2
    assert 4.7 < more_report.orders / CUSTOMERS < 5.4            # ~5 orders per customer
    assert more_report.customers == CUSTOMERS
    # guests keep their share of all orders
    assert abs(more_report.guest_orders / more_report.orders - base_report.guest_orders / base_report.orders) < 0.02
    placed = orders_per_customer(more)
    by_persona: dict[str, list[int]] = {}
    for persona, count in placed.values():
        by_persona.setdefault(persona, []).append(count)
    # one-time buyers still buy once; who never bought still never buys; a draw of two becomes two or three
    assert set(by_persona["one_time_buyer"]) == {1}
    for persona in ("cart_abandoner", "casual"):
        never = sum(1 for c in by_persona[persona] if c == 0) / len(by_persona[persona])
        share = PERSONA_BY_NAME[persona].orders.count(0) / len(PERSONA_BY_NAME[persona].orders)
        assert abs(never - share) < 0.1, persona
    assert max(by_persona["cart_abandoner"]) <= 3
    # repeat buyers buy more, and never fewer than twice
    for persona in ("vip", "high_value_repeat", "bargain_hunter", "mobile_first"):
        base_mean = sum(c for p, c in orders_per_customer(base).values() if p == persona) / \
            max(1, sum(1 for p, _ in orders_per_customer(base).values() if p == persona))
        mean = sum(by_persona[persona]) / len(by_persona[persona])
        assert mean > base_mean * 1.15, persona
        assert min(by_persona[persona]) >= 2


def test_the_scale_must_be_positive(tmp_path):
    store = DevStore(tmp_path / "bad.db")
    store.shop_create(SHOP)
    with pytest.raises(ValueError):
        seed_shop(store, SHOP, customers=10, seed=1, now=NOW, orders_scale=0)
