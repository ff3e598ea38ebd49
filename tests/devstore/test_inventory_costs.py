"""Variants' unit costs as Shopify holds them, over real HTTP: each variant's InventoryItem with its
unitCost (most generated variants have one, some none), read through productVariants, inventoryItem(s)
and a bulk export, only with read_inventory or read_products; edited with inventoryItemUpdate
(write_inventory) or by the merchant (the control API), either of which sends inventory_items/update.
How the store makes and keeps the items is in tests/devstore/test_inventory_items.py."""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstore import inventory, oauth
from devstore.config import DevstoreConfig
from devstore.generator import seed_shop
from devstore.server import DevstoreServer
from devstore.state import DevStore, gid, money, parse_gid
from devstore.webhook_sender import verify

from .test_payload_samples import mismatches, sample
from .test_webhooks import Receiver

SHOP = "costs-shop.myshopify.com"
NOW = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
# app -> (its secret, the scopes its merchant granted)
APPS = {
    "costs-app": ("secret-costs", "read_products,write_inventory"),
    "inventory-app": ("secret-inventory", "read_inventory"),
    "orders-app": ("secret-orders", "read_orders"),
}
VARIANTS_WITH_ITEMS = """query($after: String) { productVariants(first: 50, after: $after) {
  nodes { id sku price product { id } inventoryItem { id sku tracked requiresShipping legacyResourceId
    unitCost { amount currencyCode } createdAt updatedAt variant { id } variants(first: 5) { nodes { id } } } }
  pageInfo { hasNextPage endCursor } } }"""
ITEM = "query($id: ID!) { inventoryItem(id: $id) { id sku unitCost { amount currencyCode } updatedAt } }"
ITEMS = """query($q: String, $after: String) { inventoryItems(first: 100, query: $q, after: $after) {
  nodes { id unitCost { amount } updatedAt } pageInfo { hasNextPage endCursor } } }"""
UPDATE = """mutation($id: ID!, $input: InventoryItemInput!) { inventoryItemUpdate(id: $id, input: $input) {
  inventoryItem { id unitCost { amount currencyCode } } userErrors { field message } } }"""
SUBSCRIBE = """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic } userErrors { field message } } }"""
BULK_VARIANTS = ("{ productVariants { edges { node { id sku price product { id } "
                 "inventoryItem { id unitCost { amount currencyCode } updatedAt } } } } }")


class Shop:
    """The devstore server, its seeded shop and an access token per app."""

    def __init__(self, server: DevstoreServer, tokens: dict[str, str]) -> None:
        self.server, self.tokens = server, tokens
        self.store: DevStore = server.app.store

    def graphql(self, app: str, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.server.url}/shops/{SHOP}/admin/api/2026-10/graphql.json",
                              json={"query": query, "variables": variables or {}},
                              headers={"X-Shopify-Access-Token": self.tokens[app]}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, app: str, query: str, variables: dict | None = None) -> dict:
        body = self.graphql(app, query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.server.url}/_control/shops/{SHOP}{path}", timeout=30, **kwargs)

    def flush(self) -> None:
        assert httpx.post(f"{self.server.url}/_control/webhooks/flush", timeout=60).json()["idle"]

    def rows(self) -> list[Any]:
        """Every variant with its item, by variant id."""
        return self.store.conn().execute(
            "SELECT v.id AS variant_id, v.sku, v.price_cents, i.id AS item_id, i.cost_cents, i.updated_at "
            "FROM variants v JOIN inventory_items i ON i.variant_id = v.id WHERE v.shop = ? ORDER BY v.id",
            (SHOP,)).fetchall()

    def variant_with_cost(self, index: int) -> Any:
        return [row for row in self.rows() if row["cost_cents"] is not None][index]

    def deliveries(self, topic: str = "inventory_items/update") -> list[Any]:
        return self.store.conn().execute("SELECT * FROM webhook_deliveries WHERE shop = ? AND topic = ? "
                                         "ORDER BY id", (SHOP, topic)).fetchall()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory, receiver) -> Iterator[Shop]:
    """A generated shop on devstore over HTTP, the three apps installed through OAuth."""
    store = DevStore(tmp_path_factory.mktemp("costs") / "devstore.db")
    server = DevstoreServer(store, DevstoreConfig(time_scale=0.001), port=0).start()
    try:
        httpx.post(f"{server.url}/_control/shops", json={"domain": SHOP}).raise_for_status()
        seed_shop(store, SHOP, customers=30, seed=7, now=NOW)
        # a bucket large enough to page the whole catalog at once (pacing is tested elsewhere)
        httpx.post(f"{server.url}/_control/shops/{SHOP}/throttle",
                   json={"maximum_available": 100_000, "restore_rate": 100_000}).raise_for_status()
        tokens = {}
        for api_key, (secret, scopes) in APPS.items():
            httpx.post(f"{server.url}/_control/apps", json={"api_key": api_key, "api_secret": secret,
                                                            "app_url": receiver.url}).raise_for_status()
            redirect = oauth.authorize(store, SHOP, {"client_id": api_key, "scope": scopes, "state": "s",
                                                     "redirect_uri": f"{receiver.url}/auth/callback"}).redirect_to
            code = dict(p.split("=", 1) for p in redirect.split("?", 1)[1].split("&"))["code"]
            granted = httpx.post(f"{server.url}/shops/{SHOP}/admin/oauth/access_token",
                                 json={"client_id": api_key, "client_secret": secret, "code": code})
            tokens[api_key] = granted.json()["access_token"]
        yield Shop(server, tokens)
    finally:
        server.stop()


def subscribe(shop: Shop, app: str, uri: str, topic: str = "INVENTORY_ITEMS_UPDATE") -> dict:
    return shop.data(app, SUBSCRIBE, {"topic": topic, "uri": uri})["webhookSubscriptionCreate"]


# -- reading ---------------------------------------------------------------------------------------

def all_variants(shop: Shop, app: str = "costs-app") -> list[dict]:
    found, after = [], None
    while True:
        page = shop.data(app, VARIANTS_WITH_ITEMS, {"after": after})["productVariants"]
        found += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def test_every_variant_reads_with_its_inventory_item_and_unit_cost(shop):
    variants = all_variants(shop)
    rows = shop.rows()
    assert [v["id"] for v in variants] == [gid("ProductVariant", row["variant_id"]) for row in rows]
    for variant, row in zip(variants, rows):
        item = variant["inventoryItem"]
        assert item["id"] == gid("InventoryItem", row["item_id"]) and item["legacyResourceId"] == str(row["item_id"])
        assert item["sku"] == variant["sku"] == row["sku"]
        assert item["unitCost"] == ({"amount": money(row["cost_cents"]), "currencyCode": "USD"}
                                    if row["cost_cents"] is not None else None)
        assert item["tracked"] is True and item["requiresShipping"] is True
        assert item["variant"] == {"id": variant["id"]} and item["variants"] == {"nodes": [{"id": variant["id"]}]}
        assert item["updatedAt"] >= item["createdAt"]
    assert any(v["inventoryItem"]["unitCost"] is None for v in variants)


def test_an_item_reads_by_id_and_as_a_node(shop):
    row = shop.variant_with_cost(0)
    item_gid = gid("InventoryItem", row["item_id"])
    item = shop.data("inventory-app", ITEM, {"id": item_gid})["inventoryItem"]
    assert item["id"] == item_gid and item["sku"] == row["sku"]
    assert item["unitCost"] == {"amount": money(row["cost_cents"]), "currencyCode": "USD"}
    node = shop.data("costs-app", "query($id: ID!) { node(id: $id) { __typename id } }", {"id": item_gid})["node"]
    assert node == {"__typename": "InventoryItem", "id": item_gid}
    assert shop.data("costs-app", ITEM, {"id": gid("InventoryItem", 1)})["inventoryItem"] is None


def test_inventory_items_list_by_id_and_filter_on_updated_at(shop):
    everything, after = [], None
    while True:
        page = shop.data("inventory-app", ITEMS, {"after": after})["inventoryItems"]
        everything += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert everything == sorted((gid("InventoryItem", row["item_id"]) for row in shop.rows()),
                                key=lambda value: parse_gid(value))
    edited = shop.variant_with_cost(1)
    since = max(row["updated_at"] for row in shop.rows())
    inventory.variant_cost_set(shop.store, SHOP, edited["variant_id"], edited["cost_cents"] + 1,
                               now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1))
    changed = shop.data("inventory-app", ITEMS, {"q": f"updated_at:>'{since}'"})["inventoryItems"]["nodes"]
    assert [node["id"] for node in changed] == [gid("InventoryItem", edited["item_id"])]
    assert changed[0]["unitCost"] == {"amount": money(edited["cost_cents"] + 1)}
    by_sku = shop.data("inventory-app", ITEMS, {"q": f"sku:{edited['sku']}"})["inventoryItems"]["nodes"]
    assert [node["id"] for node in by_sku] == [gid("InventoryItem", edited["item_id"])]


@pytest.mark.parametrize(("app", "query", "variables", "field", "required"), [
    ("orders-app", ITEMS, {}, "inventoryItems", "`read_inventory` access scope or `read_products` access scope."),
    ("orders-app", ITEM, {"id": "gid://shopify/InventoryItem/1"}, "inventoryItem",
     "`read_inventory` access scope or `read_products` access scope."),
    ("inventory-app", VARIANTS_WITH_ITEMS, {}, "productVariants", "`read_products` access scope."),
    ("inventory-app", "{ inventoryItems(first: 1) { nodes { id variant { id } } } }", {}, "variant",
     "`read_products` access scope."),
])
def test_reading_items_takes_read_inventory_or_read_products(shop, app, query, variables, field, required):
    body = shop.graphql(app, query, variables)
    [error] = body["errors"]
    assert (error["message"], error["extensions"]["code"]) == (
        f"Access denied for {field} field. Required access: {required}", "ACCESS_DENIED")
    assert body["data"] in (None, {field: None})      # null bubbles up from a non-null connection


# -- the bulk export ---------------------------------------------------------------------------------

def test_a_bulk_export_of_variants_carries_each_items_cost_inline(shop):
    started = shop.data("costs-app", """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
        bulkOperation { id } userErrors { field message } } }""", {"q": BULK_VARIANTS})["bulkOperationRunQuery"]
    assert started["userErrors"] == []
    operation_id = started["bulkOperation"]["id"]
    deadline = time.monotonic() + 60
    while True:
        operation = shop.data("costs-app", "query($id: ID!) { bulkOperation(id: $id) { status url objectCount "
                                           "rootObjectCount } }", {"id": operation_id})["bulkOperation"]
        if operation["status"] not in ("CREATED", "RUNNING") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert operation["status"] == "COMPLETED"
    lines = [json.loads(line) for line in httpx.get(operation["url"], timeout=30).text.splitlines()]
    rows = shop.rows()
    assert operation["objectCount"] == operation["rootObjectCount"] == str(len(rows)) == str(len(lines))
    products = dict(shop.store.conn().execute("SELECT id, product_id FROM variants WHERE shop = ?", (SHOP,)))
    for line, row in zip(lines, rows):   # one line per variant, the item and product inline, no __parentId
        assert line == {
            "id": gid("ProductVariant", row["variant_id"]), "sku": row["sku"], "price": money(row["price_cents"]),
            "product": {"id": gid("Product", products[row["variant_id"]])},
            "inventoryItem": {"id": gid("InventoryItem", row["item_id"]), "updatedAt": row["updated_at"],
                              "unitCost": {"amount": money(row["cost_cents"]), "currencyCode": "USD"}
                              if row["cost_cents"] is not None else None},
        }
    assert any(line["inventoryItem"]["unitCost"] is None for line in lines)


# -- editing, and what the apps hear of it ---------------------------------------------------------

def received(receiver: Receiver, path: str) -> list[dict]:
    return [{**r, "raw": r["body"], "body": json.loads(r["body"])} for r in receiver.on(path)]


def test_inventory_item_update_sets_and_clears_the_cost_and_sends_inventory_items_update(shop, receiver):
    assert subscribe(shop, "costs-app", f"{receiver.url}/mutation-hooks")["userErrors"] == []
    row = shop.variant_with_cost(2)
    item_gid = gid("InventoryItem", row["item_id"])

    result = shop.data("costs-app", UPDATE, {"id": item_gid, "input": {"cost": "12.345"}})["inventoryItemUpdate"]

    assert result == {"inventoryItem": {"id": item_gid, "unitCost": {"amount": "12.35", "currencyCode": "USD"}},
                      "userErrors": []}
    assert shop.store.conn().execute("SELECT cost_cents FROM inventory_items WHERE id = ?",
                                     (row["item_id"],)).fetchone()[0] == 1235
    shop.flush()
    [hook] = received(receiver, "/mutation-hooks")
    assert hook["headers"]["X-Shopify-Topic"] == "inventory_items/update"
    assert verify(hook["raw"], hook["headers"]["X-Shopify-Hmac-Sha256"], ["secret-costs"])
    body = hook["body"]
    assert mismatches(sample("inventory_items/update"), body, resource="inventory_items") == []
    assert body["id"] == row["item_id"] and body["admin_graphql_api_id"] == item_gid
    assert body["cost"] == "12.35" and body["sku"] == row["sku"]

    same = shop.data("costs-app", UPDATE, {"id": item_gid, "input": {"cost": 12.35}})["inventoryItemUpdate"]
    assert same["userErrors"] == []
    cleared = shop.data("costs-app", UPDATE, {"id": item_gid, "input": {"cost": None}})["inventoryItemUpdate"]
    assert cleared["inventoryItem"]["unitCost"] is None
    shop.flush()
    bodies = [hook["body"] for hook in received(receiver, "/mutation-hooks")]
    assert [b["cost"] for b in bodies] == ["12.35", None]      # the edit that changed nothing sent nothing


BAD_COST = {"field": ["input", "cost"], "message": "Cost must be a decimal amount of at least 0"}


@pytest.mark.parametrize(("variables", "error"), [
    ({"input": {"cost": "-1"}}, BAD_COST), ({"input": {"cost": "twelve"}}, BAD_COST),
    ({"id": "gid://shopify/InventoryItem/1", "input": {"cost": "5"}},
     {"field": ["id"], "message": "Inventory item does not exist"}),
], ids=["negative", "not-a-number", "unknown-item"])
def test_a_refused_update_changes_nothing_and_sends_nothing(shop, variables, error):
    row = shop.variant_with_cost(3)
    sent = len(shop.deliveries())
    result = shop.data("costs-app", UPDATE, {"id": gid("InventoryItem", row["item_id"]), **variables})
    assert result["inventoryItemUpdate"] == {"inventoryItem": None, "userErrors": [error]}
    assert tuple(shop.store.conn().execute("SELECT cost_cents, updated_at FROM inventory_items WHERE id = ?",
                                           (row["item_id"],)).fetchone()) == (row["cost_cents"], row["updated_at"])
    assert len(shop.deliveries()) == sent


def test_editing_a_cost_takes_write_inventory(shop):
    row = shop.variant_with_cost(4)
    body = shop.graphql("inventory-app", UPDATE, {"id": gid("InventoryItem", row["item_id"]), "input": {"cost": "1"}})
    [error] = body["errors"]
    assert error["message"] == ("Access denied for inventoryItemUpdate field. Required access: `write_inventory` "
                                "access scope. Also: The user must have a permission to update an inventory item.")
    assert body["data"] == {"inventoryItemUpdate": None}
    assert shop.store.conn().execute("SELECT cost_cents FROM inventory_items WHERE id = ?",
                                     (row["item_id"],)).fetchone()[0] == row["cost_cents"]


def test_the_item_topics_take_read_inventory_or_read_products(shop, receiver):
    assert subscribe(shop, "inventory-app", f"{receiver.url}/inventory-app")["userErrors"] == []
    assert subscribe(shop, "costs-app", f"{receiver.url}/created", "INVENTORY_ITEMS_CREATE")["userErrors"] == []
    refused = subscribe(shop, "orders-app", f"{receiver.url}/orders-app")
    assert refused == {"webhookSubscription": None, "userErrors": [{"field": ["topic"], "message": (
        "Invalid topic specified: inventory_items/update. Your app requires the `read_inventory` access scope or "
        "`read_products` access scope to subscribe to this topic.")}]}


def test_the_merchant_edits_a_cost_in_the_admin(shop, receiver):
    assert subscribe(shop, "costs-app", f"{receiver.url}/admin-edits")["userErrors"] == []
    row = shop.variant_with_cost(5)
    path = f"/variants/{row['variant_id']}/cost"

    answer = shop.control("POST", path, json={"cost": "7.5"})

    assert answer.status_code == 200
    assert answer.json() | {"updated_at": None} == {
        "variant_id": row["variant_id"], "inventory_item_id": gid("InventoryItem", row["item_id"]), "cost": "7.50",
        "changed": True, "updated_at": None}
    assert shop.control("GET", path).json()["cost"] == "7.50"
    assert shop.control("POST", path, json={"cost": None}).json()["cost"] is None
    shop.flush()
    assert [(h["body"]["id"], h["body"]["cost"]) for h in received(receiver, "/admin-edits")] == [
        (row["item_id"], "7.50"), (row["item_id"], None)]
    assert shop.control("POST", path, json={"price": "1"}).status_code == 400
    assert shop.control("POST", path, json={"cost": "-2"}).status_code == 400
    assert shop.control("POST", "/variants/1/cost", json={"cost": "1"}).status_code == 404
