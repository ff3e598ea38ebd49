"""Store writes that emit webhook events: what a shopper, the merchant or Shopify itself does to a shop.

Each function writes in one `store.tx()` and emits its `Event`s inside it, so they fire after the
commit (the webhook sender then builds the payload from the committed rows). Ids come from
`store.next_ids`, reserved *before* the transaction opens: `next_ids` takes a process lock and the
SQLite write lock in that order, so taking them the other way round could deadlock. Times are
`state.iso(state.utcnow())` unless a `now` is passed.

Events of one action (an order that is created and paid, a cancellation with its refund) share an
`event_id` in `Event.extra`, which the sender sends as `X-Shopify-Event-Id`, as Shopify does.

Money follows the generator's rows: an order's `subtotal_cents` is its line items' total before
discounts, and `total_cents` = subtotal - discount + shipping + tax.

Refunds and cancellations are in refund_mutations.py, compliance requests in
compliance_mutations.py, and what all three share in mutation_base.py.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from . import inventory, mutation_base
from .mutation_base import (
    NotFound, action_id, check_fields, dedupe_tags, emit, lines_total, resolve_lines, stored_lines,
)
from .payload_checkouts import checkout_deleted
from .payload_context import shop_context
from .state import DevStore, iso

# Shipping methods by code: (title, price in cents). Pickup is free; the app reads the code.
SHIPPING_METHODS: dict[str, tuple[str, int]] = {
    "standard": ("Standard Shipping", 599),
    "express": ("Express Shipping", 1499),
    "overnight": ("Overnight Shipping", 2999),
    "pickup": ("Local Pickup", 0),
}

CUSTOMER_FIELDS = frozenset({"first_name", "last_name", "email", "phone", "state", "email_marketing_state",
                             "sms_marketing_state", "note", "verified_email"})
PRODUCT_FIELDS = frozenset({"title", "handle", "product_type", "vendor", "tags", "status"})
ORDER_FIELDS = frozenset({"email", "financial_status", "fulfillment_status", "tags", "closed_at"})
MARKETING_STATES = frozenset({"NOT_SUBSCRIBED", "PENDING", "SUBSCRIBED", "UNSUBSCRIBED", "REDACTED", "INVALID"})


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


# -- customers -----------------------------------------------------------------------------------
def customer_create(store: DevStore, shop: str, *, first_name: str | None = None, last_name: str | None = None,
                    email: str | None = None, phone: str | None = None, state: str = "enabled",
                    email_marketing_state: str = "NOT_SUBSCRIBED", sms_marketing_state: str = "NOT_SUBSCRIBED",
                    tags: Sequence[str] = (), note: str | None = None, persona: str | None = None,
                    now: dt.datetime | None = None) -> int:
    """A customer signs up (or the merchant adds one): customers/create, plus tags and consent topics."""
    for value in (email_marketing_state, sms_marketing_state):
        if value not in MARKETING_STATES:
            raise ValueError(f"unknown marketing state {value!r}")
    customer_id = store.next_id("Customer")
    stamp = mutation_base.stamp(now)
    action = action_id()
    clean_tags = dedupe_tags(tags)
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO customers (id, shop, first_name, last_name, email, phone, state, email_marketing_state, "
            "sms_marketing_state, tags, note, persona, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (customer_id, shop, first_name, last_name, email, phone, state, email_marketing_state,
             sms_marketing_state, json.dumps(clean_tags), note, persona, stamp, stamp))
        emit(store, shop, "customers/create", "Customer", customer_id, action)
        if clean_tags:
            emit(store, shop, "customer.tags_added", "Customer", customer_id, action, tags=clean_tags,
                 occurred_at=stamp)
        if email_marketing_state != "NOT_SUBSCRIBED":
            emit(store, shop, "customers_email_marketing_consent/update", "Customer", customer_id, action)
        if sms_marketing_state != "NOT_SUBSCRIBED":
            emit(store, shop, "customers_marketing_consent/update", "Customer", customer_id, action)
    return customer_id


def customer_update(store: DevStore, shop: str, customer_id: int, *, now: dt.datetime | None = None,
                    **fields: Any) -> None:
    """Edit names, email, phone, state or marketing states: customers/update (+ consent topics on change)."""
    check_fields(fields, CUSTOMER_FIELDS, "customer_update")
    for key in ("email_marketing_state", "sms_marketing_state"):
        if key in fields and fields[key] not in MARKETING_STATES:
            raise ValueError(f"unknown marketing state {fields[key]!r}")
    stamp = mutation_base.stamp(now)
    action = action_id()
    with store.tx() as conn:
        before = mutation_base.row(conn, "customers", shop, customer_id)
        if "verified_email" in fields:
            fields["verified_email"] = int(bool(fields["verified_email"]))
        assignments = "".join(f"{key} = ?, " for key in fields)
        conn.execute(f"UPDATE customers SET {assignments}updated_at = ? WHERE shop = ? AND id = ?",
                     (*fields.values(), stamp, shop, customer_id))
        emit(store, shop, "customers/update", "Customer", customer_id, action)
        if fields.get("email_marketing_state", before["email_marketing_state"]) != before["email_marketing_state"]:
            emit(store, shop, "customers_email_marketing_consent/update", "Customer", customer_id, action)
        if fields.get("sms_marketing_state", before["sms_marketing_state"]) != before["sms_marketing_state"]:
            emit(store, shop, "customers_marketing_consent/update", "Customer", customer_id, action)


def customer_delete(store: DevStore, shop: str, customer_id: int, *, now: dt.datetime | None = None) -> None:
    """Delete a customer: customers/delete. Like Shopify, refuses one who has placed orders."""
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        mutation_base.row(conn, "customers", shop, customer_id)
        if conn.execute("SELECT 1 FROM orders WHERE shop = ? AND customer_id = ? LIMIT 1",
                        (shop, customer_id)).fetchone():
            raise ValueError("a customer who has placed orders cannot be deleted")
        conn.execute("DELETE FROM customers WHERE shop = ? AND id = ?", (shop, customer_id))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "Customer", customer_id, stamp))
        emit(store, shop, "customers/delete", "Customer", customer_id)


# -- products ------------------------------------------------------------------------------------
def product_create(store: DevStore, shop: str, *, title: str, product_type: str, vendor: str,
                   variants: Sequence[dict], tags: Sequence[str] = (), status: str = "active",
                   handle: str | None = None, now: dt.datetime | None = None) -> int:
    """Add a product with variants ({title, sku, price_cents, cost_cents?}): products/create, and
    inventory_items/create for each variant's inventory item. Returns the product id."""
    if not variants:
        raise ValueError("a product needs at least one variant")
    product_id = store.next_id("Product")
    variant_ids = store.next_ids("ProductVariant", len(variants))
    item_ids = store.next_ids("InventoryItem", len(variants))
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO products (id, shop, title, handle, product_type, vendor, tags, status, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (product_id, shop, title, handle or _handle(title), product_type, vendor,
             json.dumps(dedupe_tags(tags)), status, stamp, stamp))
        conn.executemany(
            "INSERT INTO variants (id, product_id, shop, title, sku, price_cents) VALUES (?, ?, ?, ?, ?, ?)",
            [(variant_id, product_id, shop, v.get("title", "Default Title"), v.get("sku", f"SKU-{variant_id}"),
              int(v["price_cents"])) for variant_id, v in zip(variant_ids, variants)])
        inventory.items_insert(conn, shop, [(item_id, variant_id, v.get("cost_cents"), stamp)
                                            for item_id, variant_id, v in zip(item_ids, variant_ids, variants)])
        emit(store, shop, "products/create", "Product", product_id)
        for item_id in item_ids:
            emit(store, shop, "inventory_items/create", "InventoryItem", item_id)
    return product_id


def product_update(store: DevStore, shop: str, product_id: int, *, now: dt.datetime | None = None,
                   **fields: Any) -> None:
    """Edit title, handle, product_type, vendor, tags (a list) or status: products/update."""
    check_fields(fields, PRODUCT_FIELDS, "product_update")
    if "tags" in fields:
        fields["tags"] = json.dumps(dedupe_tags(fields["tags"]))
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        mutation_base.row(conn, "products", shop, product_id)
        assignments = "".join(f"{key} = ?, " for key in fields)
        conn.execute(f"UPDATE products SET {assignments}updated_at = ? WHERE shop = ? AND id = ?",
                     (*fields.values(), stamp, shop, product_id))
        emit(store, shop, "products/update", "Product", product_id)


def product_delete(store: DevStore, shop: str, product_id: int, *, now: dt.datetime | None = None) -> None:
    """Delete a product and its variants: products/delete, and inventory_items/delete for their items.
    Past orders keep their line items."""
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        mutation_base.row(conn, "products", shop, product_id)
        items = inventory.items_of_product_delete(conn, shop, product_id, stamp)
        conn.execute("DELETE FROM variants WHERE product_id = ?", (product_id,))
        conn.execute("DELETE FROM products WHERE shop = ? AND id = ?", (shop, product_id))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "Product", product_id, stamp))
        emit(store, shop, "products/delete", "Product", product_id)
        inventory.items_deleted(store, shop, items)


# -- orders --------------------------------------------------------------------------------------
def _allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` cents over lines in proportion to their value, the remainder on the last line."""
    whole = sum(weights)
    if not whole or not total:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    shares[-1] += total - sum(shares)
    return shares


def order_create(store: DevStore, shop: str, *, line_items: Sequence[dict], customer_id: int | None = None,
                 email: str | None = None, discount_codes: Sequence[dict] = (), shipping: str | None = "standard",
                 shipping_cents: int | None = None, tax_rate: float = 0.0, device: str = "desktop",
                 source_name: str = "web", user_agent: str | None = None, browser_ip: str | None = None,
                 cart_token: str | None = None, checkout_token: str | None = None,
                 financial_status: str = "paid", test: bool = False, tags: Sequence[str] = (),
                 now: dt.datetime | None = None) -> int:
    """A shopper places an order: orders/create, orders/paid when paid; completes the matching checkout.

    `discount_codes`: [{code, amount_cents, type ('fixed_amount' | 'percentage'), value?}], the amount
    being the money it took off. `shipping` is a SHIPPING_METHODS code or None (nothing shipped).
    A guest order has no `customer_id`, just an `email`.
    """
    lines = resolve_lines(store, shop, line_items)
    if shipping is not None and shipping not in SHIPPING_METHODS:
        raise ValueError(f"unknown shipping method {shipping!r}")
    order_id = store.next_id("Order")
    line_ids = store.next_ids("LineItem", len(lines))
    stamp = mutation_base.stamp(now)
    action = action_id()
    line_cents = lines_total(lines)
    codes = [{"code": c["code"], "amount_cents": int(c["amount_cents"]), "type": c.get("type", "fixed_amount"),
              **({"value": c["value"]} if "value" in c else {})} for c in discount_codes]
    discount = min(sum(c["amount_cents"] for c in codes), line_cents)
    line_discounts = _allocate(discount, [line["price_cents"] * line["quantity"] for line in lines])
    title, rate = SHIPPING_METHODS[shipping] if shipping else (None, 0)
    ship = rate if shipping_cents is None else int(shipping_cents)
    tax = round((line_cents - discount) * tax_rate)
    total = line_cents - discount + ship + tax
    with store.tx() as conn:
        shop_row = conn.execute("SELECT currency FROM shops WHERE domain = ?", (shop,)).fetchone()
        if shop_row is None:
            raise NotFound(f"no shop {shop}")
        if customer_id is not None:
            email = email or mutation_base.row(conn, "customers", shop, customer_id)["email"]
        number = conn.execute("SELECT COALESCE(MAX(number), 1000) + 1 FROM orders WHERE shop = ?",
                              (shop,)).fetchone()[0]
        conn.execute(
            "INSERT INTO orders (id, shop, number, name, customer_id, email, created_at, processed_at, updated_at, "
            "financial_status, currency, subtotal_cents, discount_cents, shipping_cents, tax_cents, total_cents, "
            "discount_codes, source_name, device, user_agent, browser_ip, shipping_title, shipping_code, test, "
            "cart_token, checkout_token, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?, ?)",
            (order_id, shop, number, f"#{number}", customer_id, email, stamp, stamp, stamp, financial_status,
             shop_row["currency"], line_cents, discount, ship, tax, total, json.dumps(codes), source_name, device,
             user_agent, browser_ip, title, shipping, int(test), cart_token, checkout_token,
             json.dumps(dedupe_tags(tags))))
        conn.executemany(
            "INSERT INTO line_items (id, order_id, shop, product_id, variant_id, title, vendor, product_type, sku, "
            "quantity, price_cents, discount_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(line_id, order_id, shop, line["product_id"], line["variant_id"], line["title"], line["vendor"],
              line["product_type"], line["sku"], line["quantity"], line["price_cents"], line_discount)
             for line_id, line, line_discount in zip(line_ids, lines, line_discounts)])
        emit(store, shop, "orders/create", "Order", order_id, action)
        if financial_status == "paid":
            emit(store, shop, "orders/paid", "Order", order_id, action)
        if checkout_token:
            completed = conn.execute(
                "SELECT id FROM checkouts WHERE shop = ? AND token = ? AND completed_at IS NULL",
                (shop, checkout_token)).fetchone()
            if completed is not None:
                conn.execute("UPDATE checkouts SET completed_at = ?, updated_at = ? WHERE id = ?",
                             (stamp, stamp, completed["id"]))
                emit(store, shop, "checkouts/update", "Checkout", completed["id"], action)
    return order_id


def order_update(store: DevStore, shop: str, order_id: int, *, now: dt.datetime | None = None,
                 **fields: Any) -> None:
    """Edit email, financial_status, fulfillment_status, tags (a list) or closed_at: orders/updated.

    A pending order that becomes paid also sends orders/paid.
    """
    check_fields(fields, ORDER_FIELDS, "order_update")
    if "tags" in fields:
        fields["tags"] = json.dumps(dedupe_tags(fields["tags"]))
    if isinstance(fields.get("closed_at"), dt.datetime):
        fields["closed_at"] = iso(fields["closed_at"])
    stamp = mutation_base.stamp(now)
    action = action_id()
    with store.tx() as conn:
        before = mutation_base.row(conn, "orders", shop, order_id)
        assignments = "".join(f"{key} = ?, " for key in fields)
        conn.execute(f"UPDATE orders SET {assignments}updated_at = ? WHERE shop = ? AND id = ?",
                     (*fields.values(), stamp, shop, order_id))
        if fields.get("financial_status") == "paid" and before["financial_status"] != "paid":
            emit(store, shop, "orders/paid", "Order", order_id, action)
        emit(store, shop, "orders/updated", "Order", order_id, action)


# -- checkouts and carts -------------------------------------------------------------------------
def checkout_create(store: DevStore, shop: str, *, line_items: Sequence[dict], customer_id: int | None = None,
                    email: str | None = None, cart_token: str | None = None, token: str | None = None,
                    device: str = "desktop", now: dt.datetime | None = None) -> int:
    """A shopper starts checkout: checkouts/create. Returns the checkout id (its `token` is on the row).

    Online checkouts start from a cart, so one always has a cart token (made up when not given): it
    is the one key checkouts/delete shares with the create and update bodies."""
    lines = resolve_lines(store, shop, line_items)
    checkout_id = store.next_id("Checkout")
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        currency = conn.execute("SELECT currency FROM shops WHERE domain = ?", (shop,)).fetchone()
        if currency is None:
            raise NotFound(f"no shop {shop}")
        if customer_id is not None:
            email = email or mutation_base.row(conn, "customers", shop, customer_id)["email"]
        subtotal = lines_total(lines)
        conn.execute(
            "INSERT INTO checkouts (id, shop, token, cart_token, customer_id, email, created_at, updated_at, "
            "currency, subtotal_cents, total_cents, device, line_items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (checkout_id, shop, token or uuid.uuid4().hex, cart_token or uuid.uuid4().hex, customer_id, email, stamp,
             stamp, currency[0], subtotal, subtotal, device, stored_lines(lines)))
        emit(store, shop, "checkouts/create", "Checkout", checkout_id)
    return checkout_id


def checkout_update(store: DevStore, shop: str, checkout_id: int, *, line_items: Sequence[dict] | None = None,
                    email: str | None = None, customer_id: int | None = None,
                    now: dt.datetime | None = None) -> None:
    """The shopper changes lines, email or logs in: checkouts/update."""
    lines = resolve_lines(store, shop, line_items) if line_items is not None else None
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        row = mutation_base.row(conn, "checkouts", shop, checkout_id)
        if customer_id is not None:
            email = email or mutation_base.row(conn, "customers", shop, customer_id)["email"]
        subtotal = lines_total(lines) if lines is not None else row["subtotal_cents"]
        conn.execute(
            "UPDATE checkouts SET line_items = ?, subtotal_cents = ?, total_cents = ?, email = ?, customer_id = ?, "
            "updated_at = ? WHERE id = ?",
            (stored_lines(lines) if lines is not None else row["line_items"], subtotal,
             subtotal + row["total_cents"] - row["subtotal_cents"], email or row["email"],
             customer_id if customer_id is not None else row["customer_id"], stamp, checkout_id))
        emit(store, shop, "checkouts/update", "Checkout", checkout_id)


def checkout_delete(store: DevStore, shop: str, checkout_id: int, *, now: dt.datetime | None = None) -> None:
    """Shopify purges a checkout: checkouts/delete (its payload is taken before the row goes)."""
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        row = mutation_base.row(conn, "checkouts", shop, checkout_id)
        ctx = shop_context(store, shop)
        body = checkout_deleted(ctx, row) if ctx else {"id": checkout_id}
        conn.execute("DELETE FROM checkouts WHERE id = ?", (checkout_id,))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "Checkout", checkout_id, stamp))
        emit(store, shop, "checkouts/delete", "Checkout", checkout_id, payload=body)


def cart_create(store: DevStore, shop: str, *, line_items: Sequence[dict], token: str | None = None,
                now: dt.datetime | None = None) -> int:
    """A storefront visitor adds to an empty cart: carts/create. Returns the cart id."""
    lines = resolve_lines(store, shop, line_items)
    cart_id = store.next_id("Cart")
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        conn.execute("INSERT INTO carts (id, shop, token, created_at, updated_at, total_cents, line_items) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (cart_id, shop, token or uuid.uuid4().hex, stamp, stamp, lines_total(lines),
                      stored_lines(lines)))
        emit(store, shop, "carts/create", "Cart", cart_id)
    return cart_id


def cart_update(store: DevStore, shop: str, cart_id: int, *, line_items: Sequence[dict],
                now: dt.datetime | None = None) -> None:
    """The visitor changes the cart's lines (the full new list): carts/update."""
    lines = resolve_lines(store, shop, line_items)
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        mutation_base.row(conn, "carts", shop, cart_id)
        conn.execute("UPDATE carts SET line_items = ?, total_cents = ?, updated_at = ? WHERE id = ?",
                     (stored_lines(lines), lines_total(lines), stamp, cart_id))
        emit(store, shop, "carts/update", "Cart", cart_id)


SHOP_FIELDS = frozenset({"name", "currency", "iana_timezone", "plan"})


def shop_update(store: DevStore, shop: str, **fields: Any) -> None:
    """The merchant changes the store's settings (name, currency, time zone) or its plan: shop/update."""
    check_fields(fields, SHOP_FIELDS, "shop_update")
    with store.tx() as conn:
        if conn.execute("SELECT 1 FROM shops WHERE domain = ?", (shop,)).fetchone() is None:
            raise NotFound(f"no shop {shop}")
        if fields:
            conn.execute(f"UPDATE shops SET {', '.join(f'{k} = ?' for k in fields)} WHERE domain = ?",
                         (*fields.values(), shop))
        emit(store, shop, "shop/update", "Shop", None)
