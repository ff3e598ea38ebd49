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
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from . import payloads
from .state import DevStore, Event, iso, utcnow

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


class NotFound(LookupError):
    """The resource does not exist in this shop."""


def _stamp(now: dt.datetime | None) -> str:
    return iso(now or utcnow())


def _action_id() -> str:
    return str(uuid.uuid4())


def _emit(store: DevStore, shop: str, topic: str, kind: str, id_: int | None, action: str | None = None,
          **extra: Any) -> None:
    if action is not None:
        extra["event_id"] = action
    store.emit(Event(shop, topic, kind, id_, extra or None))


def _row(conn: sqlite3.Connection, table: str, shop: str, id_: int) -> sqlite3.Row:
    row = conn.execute(f"SELECT * FROM {table} WHERE shop = ? AND id = ?", (shop, id_)).fetchone()
    if row is None:
        raise NotFound(f"{table}: no id {id_} in {shop}")
    return row


def _check_fields(fields: dict, allowed: frozenset[str], what: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}")


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


# -- line items ----------------------------------------------------------------------------------
def resolve_lines(store: DevStore, shop: str, lines: Iterable[dict]) -> list[dict]:
    """Normalise line inputs to {product_id, variant_id, title, vendor, product_type, sku, quantity, price_cents}.

    A line names a `variant_id` (price and titles come from the catalog) and a `quantity`; any key it
    gives itself (`price_cents`, `title`, ...) wins over the catalog.
    """
    conn = store.conn()
    resolved = []
    for line in lines:
        quantity = int(line.get("quantity", 1))
        if quantity < 1:
            raise ValueError("line item quantity must be at least 1")
        found = None
        if line.get("variant_id") is not None:
            found = conn.execute(
                "SELECT v.id AS variant_id, v.product_id, v.sku, v.price_cents, v.title AS variant_title, "
                "p.title, p.vendor, p.product_type FROM variants v JOIN products p ON p.id = v.product_id "
                "WHERE v.id = ? AND v.shop = ?", (int(line["variant_id"]), shop)).fetchone()
            if found is None and "price_cents" not in line:
                raise NotFound(f"variants: no id {line['variant_id']} in {shop}")
        base = dict(found) if found is not None else {}
        merged = {**base, **{k: v for k, v in line.items() if v is not None}}
        if "price_cents" not in merged or "title" not in merged:
            raise ValueError("a line item needs a variant_id from the catalog, or a title and price_cents")
        resolved.append({"product_id": merged.get("product_id"), "variant_id": merged.get("variant_id"),
                         "title": merged["title"], "vendor": merged.get("vendor"),
                         "product_type": merged.get("product_type"), "sku": merged.get("sku"),
                         "variant_title": merged.get("variant_title"), "quantity": quantity,
                         "price_cents": int(merged["price_cents"])})
    if not resolved:
        raise ValueError("at least one line item is required")
    return resolved


def _lines_total(lines: Sequence[dict]) -> int:
    return sum(line["price_cents"] * line["quantity"] for line in lines)


def _stored_lines(lines: Sequence[dict]) -> str:
    """Checkout and cart rows keep their lines as JSON (state.py's documented keys plus catalog facts)."""
    keys = ("product_id", "variant_id", "title", "quantity", "price_cents", "sku", "vendor", "variant_title")
    return json.dumps([{key: line.get(key) for key in keys} for line in lines])


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
    stamp = _stamp(now)
    action = _action_id()
    clean_tags = _dedupe_tags(tags)
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO customers (id, shop, first_name, last_name, email, phone, state, email_marketing_state, "
            "sms_marketing_state, tags, note, persona, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (customer_id, shop, first_name, last_name, email, phone, state, email_marketing_state,
             sms_marketing_state, json.dumps(clean_tags), note, persona, stamp, stamp))
        _emit(store, shop, "customers/create", "Customer", customer_id, action)
        if clean_tags:
            _emit(store, shop, "customer.tags_added", "Customer", customer_id, action, tags=clean_tags,
                  occurred_at=stamp)
        if email_marketing_state != "NOT_SUBSCRIBED":
            _emit(store, shop, "customers_email_marketing_consent/update", "Customer", customer_id, action)
        if sms_marketing_state != "NOT_SUBSCRIBED":
            _emit(store, shop, "customers_marketing_consent/update", "Customer", customer_id, action)
    return customer_id


def _dedupe_tags(tags: Iterable[str]) -> list[str]:
    """Shopify trims tags and compares them case-insensitively."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            kept.append(tag)
    return kept


def customer_update(store: DevStore, shop: str, customer_id: int, *, now: dt.datetime | None = None,
                    **fields: Any) -> None:
    """Edit names, email, phone, state or marketing states: customers/update (+ consent topics on change)."""
    _check_fields(fields, CUSTOMER_FIELDS, "customer_update")
    for key in ("email_marketing_state", "sms_marketing_state"):
        if key in fields and fields[key] not in MARKETING_STATES:
            raise ValueError(f"unknown marketing state {fields[key]!r}")
    stamp = _stamp(now)
    action = _action_id()
    with store.tx() as conn:
        before = _row(conn, "customers", shop, customer_id)
        if "verified_email" in fields:
            fields["verified_email"] = int(bool(fields["verified_email"]))
        assignments = "".join(f"{key} = ?, " for key in fields)
        conn.execute(f"UPDATE customers SET {assignments}updated_at = ? WHERE shop = ? AND id = ?",
                     (*fields.values(), stamp, shop, customer_id))
        _emit(store, shop, "customers/update", "Customer", customer_id, action)
        if fields.get("email_marketing_state", before["email_marketing_state"]) != before["email_marketing_state"]:
            _emit(store, shop, "customers_email_marketing_consent/update", "Customer", customer_id, action)
        if fields.get("sms_marketing_state", before["sms_marketing_state"]) != before["sms_marketing_state"]:
            _emit(store, shop, "customers_marketing_consent/update", "Customer", customer_id, action)


def customer_delete(store: DevStore, shop: str, customer_id: int, *, now: dt.datetime | None = None) -> None:
    """Delete a customer: customers/delete. Like Shopify, refuses one who has placed orders."""
    stamp = _stamp(now)
    with store.tx() as conn:
        _row(conn, "customers", shop, customer_id)
        if conn.execute("SELECT 1 FROM orders WHERE shop = ? AND customer_id = ? LIMIT 1",
                        (shop, customer_id)).fetchone():
            raise ValueError("a customer who has placed orders cannot be deleted")
        conn.execute("DELETE FROM customers WHERE shop = ? AND id = ?", (shop, customer_id))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "Customer", customer_id, stamp))
        _emit(store, shop, "customers/delete", "Customer", customer_id)


# -- products ------------------------------------------------------------------------------------
def product_create(store: DevStore, shop: str, *, title: str, product_type: str, vendor: str,
                   variants: Sequence[dict], tags: Sequence[str] = (), status: str = "active",
                   handle: str | None = None, now: dt.datetime | None = None) -> int:
    """Add a product with variants ({title, sku, price_cents}): products/create. Returns the product id."""
    if not variants:
        raise ValueError("a product needs at least one variant")
    product_id = store.next_id("Product")
    variant_ids = store.next_ids("ProductVariant", len(variants))
    stamp = _stamp(now)
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO products (id, shop, title, handle, product_type, vendor, tags, status, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (product_id, shop, title, handle or _handle(title), product_type, vendor,
             json.dumps(_dedupe_tags(tags)), status, stamp, stamp))
        conn.executemany(
            "INSERT INTO variants (id, product_id, shop, title, sku, price_cents) VALUES (?, ?, ?, ?, ?, ?)",
            [(variant_id, product_id, shop, v.get("title", "Default Title"), v.get("sku", f"SKU-{variant_id}"),
              int(v["price_cents"])) for variant_id, v in zip(variant_ids, variants)])
        _emit(store, shop, "products/create", "Product", product_id)
    return product_id


def product_update(store: DevStore, shop: str, product_id: int, *, now: dt.datetime | None = None,
                   **fields: Any) -> None:
    """Edit title, handle, product_type, vendor, tags (a list) or status: products/update."""
    _check_fields(fields, PRODUCT_FIELDS, "product_update")
    if "tags" in fields:
        fields["tags"] = json.dumps(_dedupe_tags(fields["tags"]))
    stamp = _stamp(now)
    with store.tx() as conn:
        _row(conn, "products", shop, product_id)
        assignments = "".join(f"{key} = ?, " for key in fields)
        conn.execute(f"UPDATE products SET {assignments}updated_at = ? WHERE shop = ? AND id = ?",
                     (*fields.values(), stamp, shop, product_id))
        _emit(store, shop, "products/update", "Product", product_id)


def product_delete(store: DevStore, shop: str, product_id: int, *, now: dt.datetime | None = None) -> None:
    """Delete a product and its variants: products/delete. Past orders keep their line items."""
    stamp = _stamp(now)
    with store.tx() as conn:
        _row(conn, "products", shop, product_id)
        conn.execute("DELETE FROM variants WHERE product_id = ?", (product_id,))
        conn.execute("DELETE FROM products WHERE shop = ? AND id = ?", (shop, product_id))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "Product", product_id, stamp))
        _emit(store, shop, "products/delete", "Product", product_id)


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
    stamp = _stamp(now)
    action = _action_id()
    line_cents = _lines_total(lines)
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
            email = email or _row(conn, "customers", shop, customer_id)["email"]
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
             json.dumps(_dedupe_tags(tags))))
        conn.executemany(
            "INSERT INTO line_items (id, order_id, shop, product_id, variant_id, title, vendor, product_type, sku, "
            "quantity, price_cents, discount_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(line_id, order_id, shop, line["product_id"], line["variant_id"], line["title"], line["vendor"],
              line["product_type"], line["sku"], line["quantity"], line["price_cents"], line_discount)
             for line_id, line, line_discount in zip(line_ids, lines, line_discounts)])
        _emit(store, shop, "orders/create", "Order", order_id, action)
        if financial_status == "paid":
            _emit(store, shop, "orders/paid", "Order", order_id, action)
        if checkout_token:
            completed = conn.execute(
                "SELECT id FROM checkouts WHERE shop = ? AND token = ? AND completed_at IS NULL",
                (shop, checkout_token)).fetchone()
            if completed is not None:
                conn.execute("UPDATE checkouts SET completed_at = ?, updated_at = ? WHERE id = ?",
                             (stamp, stamp, completed["id"]))
                _emit(store, shop, "checkouts/update", "Checkout", completed["id"], action)
    return order_id


def order_update(store: DevStore, shop: str, order_id: int, *, now: dt.datetime | None = None,
                 **fields: Any) -> None:
    """Edit email, financial_status, fulfillment_status, tags (a list) or closed_at: orders/updated.

    A pending order that becomes paid also sends orders/paid.
    """
    _check_fields(fields, ORDER_FIELDS, "order_update")
    if "tags" in fields:
        fields["tags"] = json.dumps(_dedupe_tags(fields["tags"]))
    if isinstance(fields.get("closed_at"), dt.datetime):
        fields["closed_at"] = iso(fields["closed_at"])
    stamp = _stamp(now)
    action = _action_id()
    with store.tx() as conn:
        before = _row(conn, "orders", shop, order_id)
        assignments = "".join(f"{key} = ?, " for key in fields)
        conn.execute(f"UPDATE orders SET {assignments}updated_at = ? WHERE shop = ? AND id = ?",
                     (*fields.values(), stamp, shop, order_id))
        if fields.get("financial_status") == "paid" and before["financial_status"] != "paid":
            _emit(store, shop, "orders/paid", "Order", order_id, action)
        _emit(store, shop, "orders/updated", "Order", order_id, action)


def _refund_lines(conn: sqlite3.Connection, order_id: int,
                  requested: Sequence[dict] | None) -> list[dict]:
    """[{line_item_id, quantity, subtotal_cents}] for a refund, never beyond what is still unrefunded."""
    items = {row["id"]: row for row in conn.execute("SELECT * FROM line_items WHERE order_id = ?", (order_id,))}
    already: dict[int, int] = {}
    for refund_row in conn.execute("SELECT line_items FROM refunds WHERE order_id = ?", (order_id,)):
        for entry in json.loads(refund_row["line_items"]):
            already[entry["line_item_id"]] = already.get(entry["line_item_id"], 0) + int(entry["quantity"])
    wanted = requested if requested is not None else [
        {"line_item_id": item_id, "quantity": row["quantity"]} for item_id, row in items.items()]
    lines = []
    for entry in wanted:
        item = items.get(int(entry["line_item_id"]))
        if item is None:
            raise NotFound(f"line_items: no id {entry['line_item_id']} on order {order_id}")
        quantity = min(int(entry.get("quantity", item["quantity"])), item["quantity"] - already.get(item["id"], 0))
        if quantity <= 0:
            continue
        # What the shopper paid per unit, after this line's share of the discount.
        paid = item["price_cents"] * item["quantity"] - item["discount_cents"]
        lines.append({"line_item_id": item["id"], "quantity": quantity,
                      "subtotal_cents": paid * quantity // item["quantity"]})
    return lines


def _refund(conn: sqlite3.Connection, store: DevStore, shop: str, order: sqlite3.Row, refund_id: int,
            requested: Sequence[dict] | None, include_shipping: bool, note: str | None, stamp: str,
            action: str) -> bool:
    """Write a refund inside the caller's transaction; False if there is nothing left to refund."""
    lines = _refund_lines(conn, order["id"], requested)
    amount = sum(line["subtotal_cents"] for line in lines)
    if include_shipping:
        amount += order["shipping_cents"]
    amount = min(amount, order["total_cents"] - order["refunded_cents"])
    if amount <= 0 and not lines:
        return False
    refunded = order["refunded_cents"] + amount
    status = "refunded" if refunded >= order["total_cents"] else "partially_refunded"
    conn.execute("INSERT INTO refunds (id, order_id, shop, created_at, note, amount_cents, line_items) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (refund_id, order["id"], shop, stamp, note, amount, json.dumps(lines)))
    conn.execute("UPDATE orders SET refunded_cents = ?, financial_status = ?, updated_at = ? WHERE id = ?",
                 (refunded, status, stamp, order["id"]))
    _emit(store, shop, "refunds/create", "Refund", refund_id, action)
    return True


def refund_create(store: DevStore, shop: str, order_id: int, *, line_items: Sequence[dict] | None = None,
                  include_shipping: bool = False, note: str | None = None,
                  now: dt.datetime | None = None) -> int | None:
    """Refund line items ([{line_item_id, quantity}]; None: everything not yet refunded), optionally shipping.

    Sends refunds/create and orders/updated. Returns the refund id, or None if nothing was left to refund.
    """
    refund_id = store.next_id("Refund")
    stamp = _stamp(now)
    action = _action_id()
    with store.tx() as conn:
        order = _row(conn, "orders", shop, order_id)
        if not _refund(conn, store, shop, order, refund_id, line_items, include_shipping, note, stamp, action):
            return None
        _emit(store, shop, "orders/updated", "Order", order_id, action)
    return refund_id


def order_cancel(store: DevStore, shop: str, order_id: int, *, reason: str = "customer", refund: bool = True,
                 now: dt.datetime | None = None) -> None:
    """Cancel an order: orders/cancelled and orders/updated; a paid order is refunded in full (refunds/create)."""
    refund_id = store.next_id("Refund") if refund else None
    stamp = _stamp(now)
    action = _action_id()
    with store.tx() as conn:
        order = _row(conn, "orders", shop, order_id)
        if order["cancelled_at"] is not None:
            raise ValueError(f"order {order_id} is already cancelled")
        if refund_id is not None and order["financial_status"] in ("paid", "partially_refunded"):
            _refund(conn, store, shop, order, refund_id, None, True, "Order cancelled", stamp, action)
        status_update = ", financial_status = 'voided'" if order["financial_status"] in ("pending",
                                                                                          "authorized") else ""
        conn.execute(f"UPDATE orders SET cancelled_at = ?, cancel_reason = ?, closed_at = ?, updated_at = ?"
                     f"{status_update} WHERE id = ?", (stamp, reason, stamp, stamp, order_id))
        _emit(store, shop, "orders/cancelled", "Order", order_id, action)
        _emit(store, shop, "orders/updated", "Order", order_id, action)


# -- checkouts and carts -------------------------------------------------------------------------
def checkout_create(store: DevStore, shop: str, *, line_items: Sequence[dict], customer_id: int | None = None,
                    email: str | None = None, cart_token: str | None = None, token: str | None = None,
                    device: str = "desktop", now: dt.datetime | None = None) -> int:
    """A shopper starts checkout: checkouts/create. Returns the checkout id (its `token` is on the row).

    Online checkouts start from a cart, so one always has a cart token (made up when not given): it
    is the one key checkouts/delete shares with the create and update bodies."""
    lines = resolve_lines(store, shop, line_items)
    checkout_id = store.next_id("Checkout")
    stamp = _stamp(now)
    with store.tx() as conn:
        currency = conn.execute("SELECT currency FROM shops WHERE domain = ?", (shop,)).fetchone()
        if currency is None:
            raise NotFound(f"no shop {shop}")
        if customer_id is not None:
            email = email or _row(conn, "customers", shop, customer_id)["email"]
        subtotal = _lines_total(lines)
        conn.execute(
            "INSERT INTO checkouts (id, shop, token, cart_token, customer_id, email, created_at, updated_at, "
            "currency, subtotal_cents, total_cents, device, line_items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (checkout_id, shop, token or uuid.uuid4().hex, cart_token or uuid.uuid4().hex, customer_id, email, stamp,
             stamp, currency[0], subtotal, subtotal, device, _stored_lines(lines)))
        _emit(store, shop, "checkouts/create", "Checkout", checkout_id)
    return checkout_id


def checkout_update(store: DevStore, shop: str, checkout_id: int, *, line_items: Sequence[dict] | None = None,
                    email: str | None = None, customer_id: int | None = None,
                    now: dt.datetime | None = None) -> None:
    """The shopper changes lines, email or logs in: checkouts/update."""
    lines = resolve_lines(store, shop, line_items) if line_items is not None else None
    stamp = _stamp(now)
    with store.tx() as conn:
        row = _row(conn, "checkouts", shop, checkout_id)
        if customer_id is not None:
            email = email or _row(conn, "customers", shop, customer_id)["email"]
        subtotal = _lines_total(lines) if lines is not None else row["subtotal_cents"]
        conn.execute(
            "UPDATE checkouts SET line_items = ?, subtotal_cents = ?, total_cents = ?, email = ?, customer_id = ?, "
            "updated_at = ? WHERE id = ?",
            (_stored_lines(lines) if lines is not None else row["line_items"], subtotal,
             subtotal + row["total_cents"] - row["subtotal_cents"], email or row["email"],
             customer_id if customer_id is not None else row["customer_id"], stamp, checkout_id))
        _emit(store, shop, "checkouts/update", "Checkout", checkout_id)


def checkout_delete(store: DevStore, shop: str, checkout_id: int, *, now: dt.datetime | None = None) -> None:
    """Shopify purges a checkout: checkouts/delete (its payload is taken before the row goes)."""
    stamp = _stamp(now)
    with store.tx() as conn:
        row = _row(conn, "checkouts", shop, checkout_id)
        ctx = payloads.shop_context(store, shop)
        body = payloads.checkout_deleted(ctx, row) if ctx else {"id": checkout_id}
        conn.execute("DELETE FROM checkouts WHERE id = ?", (checkout_id,))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "Checkout", checkout_id, stamp))
        _emit(store, shop, "checkouts/delete", "Checkout", checkout_id, payload=body)


def cart_create(store: DevStore, shop: str, *, line_items: Sequence[dict], token: str | None = None,
                now: dt.datetime | None = None) -> int:
    """A storefront visitor adds to an empty cart: carts/create. Returns the cart id."""
    lines = resolve_lines(store, shop, line_items)
    cart_id = store.next_id("Cart")
    stamp = _stamp(now)
    with store.tx() as conn:
        conn.execute("INSERT INTO carts (id, shop, token, created_at, updated_at, total_cents, line_items) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (cart_id, shop, token or uuid.uuid4().hex, stamp, stamp, _lines_total(lines),
                      _stored_lines(lines)))
        _emit(store, shop, "carts/create", "Cart", cart_id)
    return cart_id


def cart_update(store: DevStore, shop: str, cart_id: int, *, line_items: Sequence[dict],
                now: dt.datetime | None = None) -> None:
    """The visitor changes the cart's lines (the full new list): carts/update."""
    lines = resolve_lines(store, shop, line_items)
    stamp = _stamp(now)
    with store.tx() as conn:
        _row(conn, "carts", shop, cart_id)
        conn.execute("UPDATE carts SET line_items = ?, total_cents = ?, updated_at = ? WHERE id = ?",
                     (_stored_lines(lines), _lines_total(lines), stamp, cart_id))
        _emit(store, shop, "carts/update", "Cart", cart_id)


# -- compliance ----------------------------------------------------------------------------------
def _customer_snapshot(conn: sqlite3.Connection, shop: str, customer_id: int) -> dict:
    row = conn.execute("SELECT id, email, phone FROM customers WHERE shop = ? AND id = ?",
                       (shop, customer_id)).fetchone()
    return dict(row) if row else {"id": customer_id, "email": None, "phone": None}


def _customer_orders(conn: sqlite3.Connection, shop: str, customer_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM orders WHERE shop = ? AND customer_id = ? ORDER BY id",
                                       (shop, customer_id))]


def _next_data_request_id(conn: sqlite3.Connection) -> int:
    """Data-request ids are not a state.ID_BASE kind; they get their own counter row."""
    row = conn.execute("SELECT value FROM counters WHERE name = 'DataRequest'").fetchone()
    value = row[0] if row else 9_000
    conn.execute("INSERT INTO counters (name, value) VALUES ('DataRequest', ?) "
                 "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (value + 1,))
    return value


def customers_data_request(store: DevStore, shop: str, customer_id: int,
                           orders_requested: Sequence[int] | None = None) -> int:
    """A customer asks the merchant for their data: customers/data_request to every app. Returns its id.

    No (or an empty) `orders_requested` means all of the customer's orders, as Shopify lists them.
    """
    with store.tx() as conn:
        snapshot = _customer_snapshot(conn, shop, customer_id)
        orders = list(orders_requested) if orders_requested else _customer_orders(conn, shop, customer_id)
        request_id = _next_data_request_id(conn)
        _emit(store, shop, "customers/data_request", "Customer", customer_id, customer=snapshot,
              orders_requested=orders, data_request_id=request_id)
    return request_id


def customers_redact(store: DevStore, shop: str, customer_id: int,
                     orders_to_redact: Sequence[int] | None = None) -> None:
    """Shopify asks apps to erase a customer: customers/redact (no or empty list: all their orders)."""
    with store.tx() as conn:
        snapshot = _customer_snapshot(conn, shop, customer_id)
        orders = list(orders_to_redact) if orders_to_redact else _customer_orders(conn, shop, customer_id)
        _emit(store, shop, "customers/redact", "Customer", customer_id, customer=snapshot, orders_to_redact=orders)


def shop_redact(store: DevStore, shop: str) -> None:
    """Shopify asks apps to erase a shop's data (48 h after uninstall on Shopify): shop/redact."""
    row = store.shop(shop)
    if row is None:
        raise NotFound(f"no shop {shop}")
    store.emit(Event(shop, "shop/redact", "Shop", row["id"]))


SHOP_FIELDS = frozenset({"name", "currency", "iana_timezone", "plan"})


def shop_update(store: DevStore, shop: str, **fields: Any) -> None:
    """The merchant changes the store's settings (name, currency, time zone) or its plan: shop/update."""
    _check_fields(fields, SHOP_FIELDS, "shop_update")
    with store.tx() as conn:
        if conn.execute("SELECT 1 FROM shops WHERE domain = ?", (shop,)).fetchone() is None:
            raise NotFound(f"no shop {shop}")
        if fields:
            conn.execute(f"UPDATE shops SET {', '.join(f'{k} = ?' for k in fields)} WHERE domain = ?",
                         (*fields.values(), shop))
        _emit(store, shop, "shop/update", "Shop", None)
