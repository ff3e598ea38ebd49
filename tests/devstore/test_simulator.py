"""The traffic simulator: weighted realistic actions, deterministic by seed, that flow out as webhooks."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from devstore import mutations, topics
from devstore.config import DevstoreConfig
from devstore.simulator import ACTION_WEIGHTS, TrafficSimulator
from devstore.state import DevStore, iso, utcnow
from devstore.webhook_sender import WebhookSender

SHOP = "test-shop.myshopify.com"
FAST = 100_000.0  # actions per second: no pauses worth the name in tests


def seed_shop(store: DevStore, shop: str = SHOP) -> None:
    """A few products and customers, as the generator would leave them."""
    for n, (kind, vendor, price) in enumerate((("Shoes", "Acme", 8999), ("Socks", "Knit Co", 1250),
                                               ("Jackets", "Northwind", 15900), ("Hats", "Acme", 2400))):
        mutations.product_create(store, shop, title=f"{kind} {n}", product_type=kind, vendor=vendor, variants=[
            {"title": "S", "sku": f"{kind[:2].upper()}-{n}-S", "price_cents": price},
            {"title": "L", "sku": f"{kind[:2].upper()}-{n}-L", "price_cents": price + 500}])
    for n in range(8):
        mutations.customer_create(store, shop, first_name=f"Customer{n}", last_name="Test",
                                  email=f"customer{n}@example.com")


def subscribe_everything(store: DevStore, shop: str = SHOP) -> None:
    """An app installed with every scope and subscribed to every topic, so all traffic becomes deliveries."""
    store.app_register(api_key="app", api_secret="secret", app_url="http://127.0.0.1:9")
    stamp = iso(utcnow())
    with store.tx() as conn:
        conn.execute("INSERT INTO installations (shop, api_key, scopes, installed_at) VALUES (?, 'app', ?, ?)",
                     (shop, "read_customers,read_orders,read_products", stamp))
        conn.executemany("INSERT INTO webhook_subscriptions (shop, api_key, topic, uri, api_version, created_at, "
                         "updated_at) VALUES (?, 'app', ?, 'http://127.0.0.1:9/webhooks', '2026-10', ?, ?)",
                         [(shop, enum, stamp, stamp) for enum in topics.TOPICS.values()])


def traffic(path, seed: int, count: int) -> tuple[dict[str, int], list[tuple]]:
    """Run the simulator on a fresh store; (action counts, what the app would receive, in order)."""
    store = DevStore(path)
    try:
        store.shop_create(SHOP)
        seed_shop(store)
        subscribe_everything(store)
        sender = WebhookSender(store, DevstoreConfig(time_scale=0.001))
        sender.listen()
        counts = TrafficSimulator(store, SHOP, seed=seed, rate_per_second=FAST).run(count=count)
        received = []
        for row in store.conn().execute("SELECT topic, body FROM webhook_deliveries ORDER BY id"):
            body = json.loads(row["body"])
            received.append((row["topic"], body.get("id"), body.get("total_price"), body.get("financial_status")))
        return counts, received
    finally:
        store.close()


def test_the_same_seed_replays_the_same_traffic(tmp_path):
    first = traffic(tmp_path / "a.db", seed=42, count=80)
    second = traffic(tmp_path / "b.db", seed=42, count=80)
    other = traffic(tmp_path / "c.db", seed=43, count=80)
    assert first == second
    assert first[1] != other[1]
    assert sum(first[0].values()) == 80


def test_traffic_covers_every_action_and_flows_out_as_webhooks(tmp_path):
    counts, received = traffic(tmp_path / "s.db", seed=5, count=400)
    assert set(counts) == {name for name, _ in ACTION_WEIGHTS}
    assert counts["order_customer"] > counts["refund"]  # weighted, not uniform
    sent = {topic for topic, *_ in received}
    assert {"carts/create", "carts/update", "checkouts/create", "checkouts/update", "orders/create", "orders/paid",
            "orders/updated", "orders/cancelled", "refunds/create", "customers/update"} <= sent


def test_web_orders_follow_cart_checkout_order(store):
    seed_shop(store)
    sim = TrafficSimulator(store, SHOP, seed=1, rate_per_second=FAST)
    for _ in range(200):
        if sim.step() == "order_customer":
            order = store.conn().execute("SELECT * FROM orders ORDER BY id DESC LIMIT 1").fetchone()
            if order["source_name"] == "web":
                break
    else:
        raise AssertionError("no web order in 200 actions")
    checkout = store.conn().execute("SELECT * FROM checkouts WHERE token = ?", (order["checkout_token"],)).fetchone()
    assert checkout["completed_at"] is not None and checkout["cart_token"] == order["cart_token"]
    assert checkout["customer_id"] == order["customer_id"] is not None
    assert store.conn().execute("SELECT 1 FROM carts WHERE token = ?", (order["cart_token"],)).fetchone()
    assert order["browser_ip"] and order["shipping_code"]


def test_abandoned_checkouts_stay_incomplete(store):
    seed_shop(store)
    sim = TrafficSimulator(store, SHOP, seed=3, rate_per_second=FAST)
    assert "checkout_abandon" in (sim.step() for _ in range(200))  # stops at the first one
    latest = store.conn().execute("SELECT * FROM checkouts ORDER BY id DESC LIMIT 1").fetchone()
    assert latest["completed_at"] is None and latest["email"]


def test_a_datetime_starts_a_simulated_clock(store):
    seed_shop(store)
    start = dt.datetime(2025, 12, 24, 9, 0, tzinfo=dt.timezone.utc)
    sim = TrafficSimulator(store, SHOP, seed=9, rate_per_second=1.0, now=start)
    for _ in range(30):  # step() does not pace; each action moves the simulated clock on by 1/rate
        sim.step()
    stamps = sorted(r[0] for r in store.conn().execute(  # rows only the simulator writes
        "SELECT created_at FROM carts UNION ALL SELECT created_at FROM checkouts "
        "UNION ALL SELECT created_at FROM orders UNION ALL SELECT created_at FROM refunds"))
    assert stamps[0] == "2025-12-24T09:00:00Z"
    assert "2025-12-24T09:00:01Z" <= stamps[-1] <= "2025-12-24T09:00:29Z"


def test_without_customers_everything_is_a_guest(store):
    mutations.product_create(store, SHOP, title="Mug", product_type="Kitchen", vendor="Clay",
                             variants=[{"price_cents": 1800}])
    counts = TrafficSimulator(store, SHOP, seed=2, rate_per_second=FAST).run(count=40)
    assert "order_customer" not in counts and "customer_edit" not in counts
    assert sum(counts.values()) == 40


def test_it_needs_products_and_a_bound(store):
    with pytest.raises(RuntimeError):
        TrafficSimulator(store, SHOP, seed=1, rate_per_second=FAST).step()
    with pytest.raises(ValueError):
        TrafficSimulator(store, SHOP, seed=1, rate_per_second=FAST).run()
    with pytest.raises(ValueError):
        TrafficSimulator(store, "missing.myshopify.com", seed=1, rate_per_second=FAST)


def test_duration_and_stop_end_a_run(store):
    seed_shop(store)
    counts = TrafficSimulator(store, SHOP, seed=4, rate_per_second=200).run(duration=0.1)
    assert sum(counts.values()) >= 1

    sim = TrafficSimulator(store, SHOP, seed=4, rate_per_second=5)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(sim.run(duration=60)))
    runner.start()
    sim.stop()  # before or during the run: either way it ends after at most one action
    runner.join(15)
    assert not runner.is_alive() and sum(result.values()) <= 1
    assert sum(sim.run(count=2).values()) == 2  # the stop ended one run only
