"""REST-shaped webhook payloads built from devstore rows, in the shapes Shopify publishes per topic.

Field names and nesting follow the sample payloads of Shopify's webhooks reference (API 2026-07):
money is a decimal string with two places plus a `*_set` {shop_money, presentment_money} twin,
timestamps carry the shop's UTC offset (`2026-11-20T10:15:00-05:00`), and resources carry
`admin_graphql_api_id`. Since 2025-01 customer payloads carry neither `tags` nor the marketing
consents: tag changes travel as `customer.tags_added` / `customer.tags_removed` and consent changes
as their own consent topics. Fields devstore has no data for (taxes by jurisdiction, fulfillments)
are present with the empty value Shopify uses, so receivers see the full key set. Addresses are
objects, as in Shopify's samples: devstore keeps none, so each customer, order, checkout and the
shop shows a deterministic one made from its id (tests/devstore/test_payload_samples.py compares
every topic's body with Shopify's sample, key for key and type for type).

The builders for customers, orders and refunds, and checkouts and carts are in the payload_*.py
modules beside this one; this module holds the product, inventory-item, bulk-operation and compliance
bodies, and `build`, which picks the builder for an event's topic.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from .payload_checkouts import cart, checkout
from .payload_context import Payload, ShopContext, shop_context, shop_resource, tags_text, utc_millis
from .payload_customers import customer, customer_deleted, customer_tags_changed, email_consent, sms_consent
from .payload_orders import order, refund
from .state import DevStore, Event, gid, money


# -- products ------------------------------------------------------------------------------------
def product(store: DevStore, ctx: ShopContext, product_id: int) -> Payload | None:
    """`products/create|update`: product_type, vendor, comma-joined tags and the variants."""
    conn = store.conn()
    row = conn.execute("SELECT * FROM products WHERE shop = ? AND id = ?", (ctx.domain, product_id)).fetchone()
    if row is None:
        return None
    variants = conn.execute("SELECT v.*, i.id AS inventory_item_id FROM variants v LEFT JOIN inventory_items i "
                            "ON i.variant_id = v.id WHERE v.product_id = ? ORDER BY v.id", (product_id,)).fetchall()
    created, updated = ctx.time(row["created_at"]), ctx.time(row["updated_at"])
    return {
        "admin_graphql_api_id": gid("Product", row["id"]),
        "body_html": "",  # devstore keeps no descriptions
        "created_at": created,
        "handle": row["handle"],
        "id": row["id"],
        "product_type": row["product_type"],
        "published_at": created if row["status"] == "active" else None,
        "template_suffix": None,
        "title": row["title"],
        "updated_at": updated,
        "vendor": row["vendor"],
        "status": row["status"],
        "published_scope": "web",
        "tags": tags_text(row["tags"]),
        "variants": [{
            "admin_graphql_api_id": gid("ProductVariant", v["id"]),
            "barcode": None,
            "compare_at_price": None,
            "created_at": created,
            "id": v["id"],
            "inventory_policy": "deny",
            "position": position,
            "price": money(v["price_cents"]),
            "product_id": row["id"],
            "sku": v["sku"],
            "taxable": True,
            "title": v["title"],
            "updated_at": updated,
            "option1": v["title"],
            "option2": None,
            "option3": None,
            "image_id": None,
            "inventory_item_id": v["inventory_item_id"],
            "inventory_quantity": 0,
            "old_inventory_quantity": 0,
        } for position, v in enumerate(variants, start=1)],
        "options": [],
        "images": [],
        "image": None,
        "media": [],
        "variant_gids": [{"admin_graphql_api_id": gid("ProductVariant", v["id"]),
                          "updated_at": utc_millis(row["updated_at"])} for v in variants],
        "has_variants_that_requires_components": False,
        "category": None,
    }


def inventory_item(store: DevStore, ctx: ShopContext, item_id: int) -> Payload | None:
    """`inventory_items/create|update`: the REST InventoryItem, its cost a decimal string or null.
    devstore keeps no customs data or weights, so those carry the sample's empty values."""
    row = store.conn().execute(
        "SELECT i.*, v.sku FROM inventory_items i LEFT JOIN variants v ON v.id = i.variant_id "
        "WHERE i.shop = ? AND i.id = ?", (ctx.domain, item_id)).fetchone()
    if row is None:
        return None
    return {
        "id": row["id"],
        "sku": row["sku"],
        "created_at": ctx.time(row["created_at"]),
        "updated_at": ctx.time(row["updated_at"]),
        "requires_shipping": bool(row["requires_shipping"]),
        "cost": money(row["cost_cents"]) if row["cost_cents"] is not None else None,
        "country_code_of_origin": None,
        "province_code_of_origin": None,
        "harmonized_system_code": None,
        "tracked": bool(row["tracked"]),
        "country_harmonized_system_codes": [],
        "weight_value": 0.0,
        "weight_unit": "kg",
        "admin_graphql_api_id": gid("InventoryItem", row["id"]),
    }


# -- bulk operations, compliance -----------------------------------------------------------------
def bulk_operation_finished(store: DevStore, ctx: ShopContext, operation_id: int) -> Payload | None:
    """`bulk_operations/finish`: the six fields Shopify sends, enums in lower case as in its sample."""
    row = store.conn().execute("SELECT * FROM bulk_operations WHERE shop = ? AND id = ?",
                               (ctx.domain, operation_id)).fetchone()
    if row is None:
        return None
    return {"admin_graphql_api_id": gid("BulkOperation", row["id"]), "completed_at": ctx.time(row["completed_at"]),
            "created_at": ctx.time(row["created_at"]),
            "error_code": row["error_code"].lower() if row["error_code"] else None,
            "status": row["status"].lower(), "type": row["type"].lower()}


def _compliance_customer(extra: dict) -> Payload:
    found = extra.get("customer") or {}
    return {"id": found.get("id"), "email": found.get("email"), "phone": found.get("phone")}


def data_request(ctx: ShopContext, extra: dict) -> Payload:
    return {"shop_id": ctx.id, "shop_domain": ctx.domain, "customer": _compliance_customer(extra),
            "orders_requested": list(extra.get("orders_requested", [])),
            "data_request": {"id": extra.get("data_request_id")}}


def customer_redact(ctx: ShopContext, extra: dict) -> Payload:
    return {"shop_id": ctx.id, "shop_domain": ctx.domain, "customer": _compliance_customer(extra),
            "orders_to_redact": list(extra.get("orders_to_redact", []))}


def shop_redact(ctx: ShopContext) -> Payload:
    return {"shop_id": ctx.id, "shop_domain": ctx.domain}


# -- dispatch ------------------------------------------------------------------------------------
def _occurred_at(extra: dict) -> str:
    return extra.get("occurred_at") or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags_list(extra: dict) -> list[str]:
    tags = extra.get("tags", [])
    return [t.strip() for t in tags.split(",") if t.strip()] if isinstance(tags, str) else list(tags)


Builder = Callable[[DevStore, ShopContext, Event, dict], "Payload | None"]

BUILDERS: dict[str, Builder] = {
    **{topic: (lambda s, c, e, x: order(s, c, e.id)) for topic in
       ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")},
    "orders/delete": lambda s, c, e, x: {"id": e.id},
    "refunds/create": lambda s, c, e, x: refund(s, c, e.id),
    "checkouts/create": lambda s, c, e, x: checkout(s, c, e.id),
    "checkouts/update": lambda s, c, e, x: checkout(s, c, e.id),
    "checkouts/delete": lambda s, c, e, x: {"id": e.id},
    "carts/create": lambda s, c, e, x: cart(s, c, e.id),
    "carts/update": lambda s, c, e, x: cart(s, c, e.id),
    "customers/create": lambda s, c, e, x: customer(s, c, e.id),
    "customers/update": lambda s, c, e, x: customer(s, c, e.id),
    "customers/delete": lambda s, c, e, x: customer_deleted(e.id),
    "customers_email_marketing_consent/update": lambda s, c, e, x: email_consent(s, c, e.id),
    "customers_marketing_consent/update": lambda s, c, e, x: sms_consent(s, c, e.id),
    "customer.tags_added": lambda s, c, e, x: customer_tags_changed(e.id, _tags_list(x), _occurred_at(x)),
    "customer.tags_removed": lambda s, c, e, x: customer_tags_changed(e.id, _tags_list(x), _occurred_at(x)),
    "products/create": lambda s, c, e, x: product(s, c, e.id),
    "products/update": lambda s, c, e, x: product(s, c, e.id),
    "products/delete": lambda s, c, e, x: {"id": e.id},
    "inventory_items/create": lambda s, c, e, x: inventory_item(s, c, e.id),
    "inventory_items/update": lambda s, c, e, x: inventory_item(s, c, e.id),
    "inventory_items/delete": lambda s, c, e, x: {"id": e.id},
    "app/uninstalled": lambda s, c, e, x: shop_resource(c),
    "shop/update": lambda s, c, e, x: shop_resource(c),
    "app/scopes_update": lambda s, c, e, x: {"id": e.id, "shop_id": gid("Shop", c.id),
                                             "previous": list(x.get("previous", [])),
                                             "current": list(x.get("current", [])),
                                             "updated_at": utc_millis(_occurred_at(x))},
    "bulk_operations/finish": lambda s, c, e, x: bulk_operation_finished(s, c, e.id),
    "customers/data_request": lambda s, c, e, x: data_request(c, x),
    "customers/redact": lambda s, c, e, x: customer_redact(c, x),
    "shop/redact": lambda s, c, e, x: shop_redact(c),
}


def build(store: DevStore, event: Event) -> Payload | None:
    """The payload for an event, read from the store now; None if the topic or resource is unknown.

    An emitter that already holds the payload (a delete, whose row is gone by now) passes it as
    `extra["payload"]`.
    """
    extra = event.extra or {}
    if isinstance(extra.get("payload"), dict):
        return extra["payload"]
    builder = BUILDERS.get(event.topic)
    ctx = shop_context(store, event.shop)
    if builder is None or ctx is None:
        return None
    return builder(store, ctx, event, extra)


def encode(payload: Payload) -> bytes:
    """The raw body sent (and signed): compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
