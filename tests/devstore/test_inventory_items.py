"""Inventory items in the store: the generated catalog's unit costs (most variants 35-65% of their
price, some none, by seed), items made for variants that lack one, created and deleted with their
product, and live traffic's cost edits. tests/devstore/test_inventory_costs.py reads and edits them
over HTTP."""
from __future__ import annotations

import datetime as dt

import pytest

from devstore import mutations, payloads
from devstore.generator import seed_shop
from devstore.graphql_api import AdminAPI
from devstore.simulator import TrafficSimulator
from devstore.state import DevStore, Event

SHOP = "costs-shop.myshopify.com"
NOW = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


def generated(tmp_path, name: str, seed: int) -> DevStore:
    store = DevStore(tmp_path / name)
    store.shop_create(SHOP)
    seed_shop(store, SHOP, customers=20, seed=seed, now=NOW)
    return store


def costs(store: DevStore) -> list[tuple[int, int | None]]:
    return [tuple(row) for row in store.conn().execute(
        "SELECT v.price_cents, i.cost_cents FROM variants v LEFT JOIN inventory_items i ON i.variant_id = v.id "
        "ORDER BY v.id")]


def test_most_generated_variants_cost_35_to_65_percent_of_their_price_and_some_have_no_cost(tmp_path):
    store = generated(tmp_path, "a.db", seed=7)
    found = costs(store)
    assert len(found) > 300
    assert store.conn().execute("SELECT COUNT(*) FROM inventory_items").fetchone()[0] == len(found)  # one each
    missing = sum(1 for _, cost in found if cost is None) / len(found)
    assert 0.03 < missing < 0.15                                  # ~8%, as real shops leave some blank
    shares = [cost / price for price, cost in found if cost is not None]
    assert all(0.35 <= share <= 0.65 for share in shares)
    assert min(shares) < 0.4 and max(shares) > 0.6                 # spread over the range, not one margin


def test_costs_follow_the_seed_and_leave_the_rest_of_the_seeded_shop_as_it_was(tmp_path):
    first, again, other = generated(tmp_path, "a.db", 7), generated(tmp_path, "b.db", 7), generated(tmp_path, "c.db", 8)
    assert costs(first) == costs(again)
    assert costs(first) != costs(other)
    # the unit costs have a random stream of their own: customers and orders are drawn as without them
    query = "SELECT id, customer_id, total_cents FROM orders ORDER BY id"
    assert [tuple(r) for r in first.conn().execute(query)] == [tuple(r) for r in again.conn().execute(query)]


def test_a_variant_without_an_item_gets_one_when_the_api_starts(store, devstore_config):
    with store.tx() as conn:   # a state file from before devstore kept inventory items
        conn.execute("INSERT INTO products (id, shop, title, handle, product_type, vendor, created_at, updated_at) "
                     "VALUES (8000000001, ?, 'Mug', 'mug', 'Mugs', 'Clay', '2026-01-01T00:00:00Z', "
                     "'2026-01-01T00:00:00Z')", ("test-shop.myshopify.com",))
        conn.execute("INSERT INTO variants (id, product_id, shop, title, sku, price_cents) "
                     "VALUES (44000000001, 8000000001, ?, 'Default Title', 'MUG', 2000)", ("test-shop.myshopify.com",))
    AdminAPI(store, devstore_config)
    [item] = store.conn().execute("SELECT * FROM inventory_items WHERE variant_id = 44000000001").fetchall()
    assert item["created_at"] == "2026-01-01T00:00:00Z" and item["id"] > 46_000_000_000
    AdminAPI(store, devstore_config)   # and only once
    assert store.conn().execute("SELECT COUNT(*) FROM inventory_items").fetchone()[0] == 1


def test_a_new_product_has_items_with_the_costs_given_and_they_go_with_it(store):
    events: list[Event] = []
    store.subscribe(events.append)
    shop = "test-shop.myshopify.com"
    product = mutations.product_create(store, shop, title="Mug", product_type="Mugs", vendor="Clay", variants=[
        {"title": "S", "sku": "MUG-S", "price_cents": 2000, "cost_cents": 800}, {"title": "L", "price_cents": 2600}])
    items = store.conn().execute("SELECT id, cost_cents FROM inventory_items ORDER BY id").fetchall()
    assert [row["cost_cents"] for row in items] == [800, None]
    assert [(e.topic, e.id) for e in events] == [("products/create", product)] + [
        ("inventory_items/create", row["id"]) for row in items]
    body = payloads.build(store, events[0])      # the product's variants name their items, as Shopify's do
    assert [variant["inventory_item_id"] for variant in body["variants"]] == [row["id"] for row in items]
    events.clear()
    mutations.product_delete(store, shop, product)
    assert store.conn().execute("SELECT COUNT(*) FROM inventory_items").fetchone()[0] == 0
    assert [(e.topic, e.id) for e in events] == [("products/delete", product)] + [
        ("inventory_items/delete", row["id"]) for row in items]
    assert events[1].extra["payload"] == {"id": items[0]["id"]}


def test_live_traffic_can_have_the_merchant_edit_costs(tmp_path):
    store = generated(tmp_path, "live.db", seed=3)

    def item_costs() -> dict[int, int | None]:
        return dict(store.conn().execute("SELECT id, cost_cents FROM inventory_items"))

    before = item_costs()
    events: list[Event] = []
    store.subscribe(events.append)
    counts = TrafficSimulator(store, SHOP, seed=1, rate_per_second=100_000, cost_change_rate=1.0).run(count=6)
    assert counts == {"cost_change": 6}
    changed = {item for item, cost in item_costs().items() if cost != before[item]}
    assert changed and {(e.topic, e.id) for e in events} == {("inventory_items/update", item) for item in changed}
    with pytest.raises(ValueError):
        TrafficSimulator(store, SHOP, seed=1, rate_per_second=1, cost_change_rate=2)
