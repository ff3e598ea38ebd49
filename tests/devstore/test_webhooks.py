"""Webhook deliveries end to end: real HTTP to a local receiver, signed, retried, filtered and faulted."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devstore import mutations
from devstore.state import iso, utcnow
from devstore.webhook_sender import WebhookSender, sign, verify

SHOP = "test-shop.myshopify.com"
ALL_SCOPES = "read_customers,write_customers,read_orders,read_products"


class Receiver:
    """A real HTTP endpoint that records every request and answers from a per-path script."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.scripts: dict[str, list] = {}   # path -> answers, consumed in order; the last one repeats
        self.gates: dict[str, threading.Event] = {}  # path -> requests block until the event is set
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @Request.application
    def _app(self, request: Request) -> Response:
        with self._lock:
            self.requests.append({"path": request.path, "headers": dict(request.headers),
                                  "body": request.get_data()})
            script = self.scripts.get(request.path, [200])
            answer = script.pop(0) if len(script) > 1 else script[0]
        gate = self.gates.get(request.path)
        if gate is not None:
            gate.wait(30)
        if isinstance(answer, tuple):  # (seconds to stall, status)
            time.sleep(answer[0])
            answer = answer[1]
        headers = {"Location": f"{self.url}/elsewhere"} if 300 <= answer < 400 else {}
        return Response("ok", status=answer, headers=headers)

    def on(self, path: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def wait_for(self, path: str, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(path)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"{path}: expected {count} requests, got {len(self.on(path))}")

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def make_sender(store, config, seed: int = 7) -> WebhookSender:
    sender = WebhookSender(store, config, rng=random.Random(seed))
    sender.listen()
    return sender


@pytest.fixture
def sender(store, devstore_config):
    s = make_sender(store, devstore_config)
    yield s
    s.close()


def install(store, app_url: str, *, api_key: str = "app-1", secret: str = "secret-1", scopes: str = ALL_SCOPES,
            subscribe: tuple[str, ...] = ("CUSTOMERS_CREATE",), path: str = "/webhooks", shop: str = SHOP,
            api_version: str = "2026-10", uninstalled_at: str | None = None) -> None:
    """Register the app, install it on the shop and subscribe (what OAuth and GraphQL do in production)."""
    store.app_register(api_key=api_key, api_secret=secret, app_url=app_url)
    stamp = iso(utcnow())
    with store.tx() as conn:
        conn.execute("INSERT OR REPLACE INTO installations (shop, api_key, scopes, installed_at, uninstalled_at) "
                     "VALUES (?, ?, ?, ?, ?)", (shop, api_key, scopes, stamp, uninstalled_at))
        for topic in subscribe:
            conn.execute("INSERT INTO webhook_subscriptions (shop, api_key, topic, uri, api_version, created_at, "
                         "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (shop, api_key, topic, f"{app_url}{path}", api_version, stamp, stamp))


def rows(store, **where) -> list[dict]:
    query = "SELECT * FROM webhook_deliveries"
    if where:
        query += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
    return [dict(r) for r in store.conn().execute(query + " ORDER BY id", tuple(where.values()))]


def subscriptions(store, api_key: str = "app-1") -> list[dict]:
    return [dict(r) for r in store.conn().execute(
        "SELECT * FROM webhook_subscriptions WHERE api_key = ? ORDER BY id", (api_key,))]


def product(store, shop: str = SHOP) -> int:
    pid = mutations.product_create(store, shop, title="Trail Shoe", product_type="Shoes", vendor="Acme",
                                   variants=[{"title": "42", "sku": "TS-42", "price_cents": 8999}])
    return store.conn().execute("SELECT id FROM variants WHERE product_id = ?", (pid,)).fetchone()[0]


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# -- signing and headers -------------------------------------------------------------------------
def test_signature_matches_shopifys_documented_vector():
    assert sign(b'{"id":1}', "hush") == "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
    assert verify(b'{"id":1}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=", ["old", "hush"])
    assert not verify(b'{"id": 1}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=", ["hush"])


def test_delivery_is_signed_over_the_raw_body_and_carries_every_header(store, sender, receiver):
    install(store, receiver.url, secret="s3cret")
    customer_id = mutations.customer_create(store, SHOP, first_name="Ada", email="ada@example.com")

    assert sender.deliver_due() == 1
    [request] = receiver.on("/webhooks")
    headers, body = request["headers"], request["body"]
    expected = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(headers["X-Shopify-Hmac-Sha256"], expected)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Shopify-Captain-Hook"
    assert headers["X-Shopify-Topic"] == "customers/create"
    assert headers["X-Shopify-Shop-Domain"] == SHOP
    assert headers["X-Shopify-Api-Version"] == "2026-10"
    uuid.UUID(headers["X-Shopify-Webhook-Id"])
    uuid.UUID(headers["X-Shopify-Event-Id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", headers["X-Shopify-Triggered-At"])
    assert json.loads(body)["id"] == customer_id
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["last_status"]) == ("delivered", 1, 200)


def test_one_action_shares_an_event_id_and_every_delivery_has_its_own_webhook_id(store, sender, receiver):
    for key in ("app-1", "app-2"):
        install(store, receiver.url, api_key=key, subscribe=("ORDERS_CREATE", "ORDERS_PAID"), path=f"/{key}")
    variant = product(store)
    mutations.order_create(store, SHOP, line_items=[{"variant_id": variant, "quantity": 1}], email="g@example.com")

    sender.deliver_due()
    requests = receiver.on("/app-1") + receiver.on("/app-2")
    assert sorted(r["headers"]["X-Shopify-Topic"] for r in requests) == ["orders/create", "orders/create",
                                                                       "orders/paid", "orders/paid"]
    assert len({r["headers"]["X-Shopify-Event-Id"] for r in requests}) == 1
    assert len({r["headers"]["X-Shopify-Webhook-Id"] for r in requests}) == 4


# -- retries and failures ------------------------------------------------------------------------
def test_a_500_is_retried_with_the_same_webhook_and_then_delivered(store, sender, receiver):
    install(store, receiver.url)
    receiver.scripts["/webhooks"] = [500, 503, 200]
    mutations.customer_create(store, SHOP, email="retry@example.com")

    sender.start()
    attempts = receiver.wait_for("/webhooks", 3)
    assert sender.wait_idle(15)
    assert len({a["headers"]["X-Shopify-Webhook-Id"] for a in attempts}) == 1
    assert len({a["body"] for a in attempts}) == 1
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["last_status"]) == ("delivered", 3, 200)
    assert subscriptions(store)[0]["consecutive_failures"] == 0


def test_retry_delays_grow_exponentially_and_scale_with_time_scale(store, devstore_config, receiver):
    install(store, receiver.url)
    receiver.scripts["/webhooks"] = [500]
    clock = [1_000_000.0]
    sender = WebhookSender(store, devstore_config, clock=lambda: clock[0])
    sender.listen()
    try:
        mutations.customer_create(store, SHOP, email="backoff@example.com")
        delays = []
        for _ in range(4):
            assert sender.deliver_due(now=clock[0]) == 1
            [row] = rows(store)
            delays.append(row["next_attempt_at"] - clock[0])
            assert sender.deliver_due(now=clock[0]) == 0  # not due again before its delay
            clock[0] = row["next_attempt_at"]
    finally:
        sender.close()
    assert delays == pytest.approx([60 * 2 ** n * devstore_config.time_scale for n in range(4)])


def test_a_slow_receiver_times_out_and_the_retry_succeeds(store, devstore_config, receiver):
    config = dataclasses.replace(devstore_config, webhook_timeout=0.3)
    sender = make_sender(store, config)
    install(store, receiver.url)
    receiver.scripts["/webhooks"] = [(1.5, 200), 200]
    try:
        mutations.customer_create(store, SHOP, email="slow@example.com")
        sender.start()
        receiver.wait_for("/webhooks", 2)
        assert sender.wait_idle(15)
    finally:
        sender.close()
    [row] = rows(store)
    assert (row["status"], row["attempts"]) == ("delivered", 2)


def test_a_redirect_counts_as_a_failure_and_is_not_followed(store, sender, receiver):
    install(store, receiver.url)
    receiver.scripts["/webhooks"] = [302]
    mutations.customer_create(store, SHOP, email="moved@example.com")

    assert sender.deliver_due() == 1
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["last_status"]) == ("pending", 1, 302)
    assert receiver.on("/elsewhere") == []
    assert subscriptions(store)[0]["consecutive_failures"] == 1


def test_consecutive_failures_remove_the_subscription(store, devstore_config, receiver):
    config = dataclasses.replace(devstore_config, webhook_failures_before_removal=3)
    sender = make_sender(store, config)
    install(store, receiver.url)
    receiver.scripts["/webhooks"] = [500]
    try:
        mutations.customer_create(store, SHOP, email="a@example.com")
        moment = time.time()
        for _ in range(10):
            moment += 10_000  # far past any scaled backoff
            sender.deliver_due(now=moment)
        assert len(receiver.on("/webhooks")) == 3
        assert subscriptions(store) == []
        [row] = rows(store)
        assert row["status"] == "failed" and "removed" in row["last_error"]

        mutations.customer_create(store, SHOP, email="b@example.com")
        assert len(rows(store)) == 1  # nothing is subscribed any more
    finally:
        sender.close()


def test_a_delivery_gives_up_after_the_last_retry(store, devstore_config, receiver):
    config = dataclasses.replace(devstore_config, webhook_max_attempts=3, webhook_failures_before_removal=100)
    sender = make_sender(store, config)
    install(store, receiver.url)
    receiver.scripts["/webhooks"] = [500]
    try:
        mutations.customer_create(store, SHOP, email="a@example.com")
        moment = time.time()
        for _ in range(6):
            moment += 10_000
            sender.deliver_due(now=moment)
    finally:
        sender.close()
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["last_status"]) == ("failed", 3, 500)
    assert subscriptions(store)[0]["consecutive_failures"] == 3


def test_one_slow_shop_does_not_hold_back_another(store, devstore_config, receiver):
    other = "other-shop.myshopify.com"
    store.shop_create(other)
    config = dataclasses.replace(devstore_config, webhook_timeout=20)
    sender = make_sender(store, config)
    install(store, receiver.url, path="/stuck")
    install(store, receiver.url, api_key="app-2", path="/fine", shop=other)
    receiver.gates["/stuck"] = threading.Event()
    try:
        mutations.customer_create(store, SHOP, email="a@example.com")
        sender.start()
        receiver.wait_for("/stuck", 1)
        mutations.customer_create(store, other, email="b@example.com")
        receiver.wait_for("/fine", 1)  # arrives while the first shop's endpoint is still hanging
        assert len(receiver.on("/stuck")) == 1
        receiver.gates["/stuck"].set()
        assert sender.wait_idle(15)
    finally:
        sender.close()
    assert {r["status"] for r in rows(store)} == {"delivered"}
