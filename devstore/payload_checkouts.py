"""Checkout and cart webhook payloads: the abandoned checkout of `checkouts/create|update` (without
an `id`, as in Shopify's sample) and of `checkouts/delete`, and the anonymous online-store cart of
`carts/create|update`. Lines are stored as JSON and may lack vendor or SKU; those are read from the
catalog while the variant still exists.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import payload_customers
from .payload_context import Payload, ShopContext, digest, mailing_address, names, utc_millis
from .state import DevStore, money


def _catalog(store: DevStore, lines: list[dict]) -> dict[int, sqlite3.Row]:
    """Variant id -> variant joined with its product, for line items stored without vendor or sku."""
    ids = {int(line["variant_id"]) for line in lines if line.get("variant_id") is not None}
    if not ids:
        return {}
    rows = store.conn().execute(
        "SELECT v.id, v.sku, v.title AS variant_title, p.vendor, p.product_type FROM variants v "
        f"JOIN products p ON p.id = v.product_id WHERE v.id IN ({','.join('?' * len(ids))})", tuple(ids))
    return {row["id"]: row for row in rows}


def _line_extra(line: dict, catalog: dict[int, sqlite3.Row], key: str, column: str) -> Any:
    if line.get(key) is not None:
        return line[key]
    found = catalog.get(line.get("variant_id"))
    return found[column] if found is not None else None


def _checkout_line(ctx: ShopContext, line: dict, catalog: dict[int, sqlite3.Row], token: str,
                   destination: int) -> Payload:
    price = int(line["price_cents"])
    quantity = int(line["quantity"])
    variant_title = _line_extra(line, catalog, "variant_title", "variant_title")
    return {
        "applied_discounts": [],
        "discount_allocations": [],
        "key": digest(token, line.get("variant_id"), line["title"]),
        "destination_location_id": destination,
        "fulfillment_service": "manual",
        "gift_card": False,
        "grams": 0,
        "origin_location_id": ctx.primary_location_id,
        "presentment_title": line["title"],
        "presentment_variant_title": variant_title,
        "product_id": line.get("product_id"),
        "properties": None,
        "quantity": quantity,
        "requires_shipping": True,
        "sku": _line_extra(line, catalog, "sku", "sku"),
        "tax_lines": [],
        "taxable": True,
        "title": line["title"],
        "variant_id": line.get("variant_id"),
        "variant_title": variant_title,
        "variant_price": money(price),
        "vendor": _line_extra(line, catalog, "vendor", "vendor"),
        "user_id": None,
        "unit_price_measurement": {"measured_type": None, "quantity_value": None, "quantity_unit": None,
                                   "reference_value": None, "reference_unit": None},
        "rank": None,
        "compare_at_price": None,
        "line_price": money(price * quantity),
        "price": money(price),
    }


def checkout(store: DevStore, ctx: ShopContext, checkout_id: int) -> Payload | None:
    """`checkouts/create|update`: token, cart_token, recovery URL, line items, customer and email.

    No `id`: Shopify's sample for these topics has none (only `checkouts/delete` names the id, with
    the cart token), so a receiver has to find a deleted checkout by its cart token."""
    row = store.conn().execute("SELECT * FROM checkouts WHERE shop = ? AND id = ?",
                               (ctx.domain, checkout_id)).fetchone()
    if row is None:
        return None
    lines = json.loads(row["line_items"])
    catalog = _catalog(store, lines)
    customer_row = payload_customers.customer_row(store, ctx.domain, row["customer_id"])
    line_cents = sum(int(line["price_cents"]) * int(line["quantity"]) for line in lines)
    currency = row["currency"]
    tax_cents = max(row["total_cents"] - row["subtotal_cents"], 0)
    first_name, last_name = names(customer_row, row["email"])
    phone = customer_row["phone"] if customer_row else None
    return {
        "token": row["token"],
        "cart_token": row["cart_token"],
        "email": row["email"],
        "gateway": None,
        "buyer_accepts_marketing": bool(customer_row and customer_row["email_marketing_state"] == "SUBSCRIBED"),
        "created_at": ctx.time(row["created_at"]),
        "updated_at": ctx.time(row["updated_at"]),
        "landing_site": None,
        "note": None,
        "note_attributes": [],
        "referring_site": None,
        "shipping_lines": [],
        "taxes_included": False,
        "total_weight": 0,
        "currency": currency,
        "completed_at": ctx.time(row["completed_at"]),
        "closed_at": None,
        "user_id": None,
        "location_id": None,
        "source_identifier": None,
        "source_url": None,
        "device_id": None,
        "phone": customer_row["phone"] if customer_row else None,
        "customer_locale": "en",
        "line_items": [_checkout_line(ctx, line, catalog, row["token"], destination=row["id"] * 10 + 3)
                       for line in lines],
        "name": f"#{row['id']}",
        "source": None,
        "abandoned_checkout_url": f"https://{ctx.domain}/{ctx.id}/checkouts/{row['token']}/recover"
                                  f"?key={digest(ctx.domain, 'recover', row['token'])}",
        "discount_codes": [],
        "tax_lines": [],
        "source_name": "web",
        "presentment_currency": currency,
        "buyer_accepts_sms_marketing": bool(customer_row and customer_row["sms_marketing_state"] == "SUBSCRIBED"),
        "sms_marketing_phone": None,
        "total_discounts": money(max(line_cents - row["subtotal_cents"], 0)),
        "total_line_items_price": money(line_cents),
        "total_price": money(row["total_cents"]),
        "total_tax": money(tax_cents),
        "subtotal_price": money(row["subtotal_cents"]),
        "total_duties": None,
        "reservation_token": None,
        "billing_address": mailing_address(row["id"], first_name, last_name, phone),
        "shipping_address": mailing_address(row["id"], first_name, last_name, phone),
        "customer": payload_customers.customer_resource(ctx, customer_row, nested=True) if customer_row else None,
    }


def checkout_deleted(ctx: ShopContext, row: sqlite3.Row) -> Payload:
    """`checkouts/delete`: the id, totals and cart token (built before the row goes)."""
    lines = json.loads(row["line_items"])
    line_cents = sum(int(line["price_cents"]) * int(line["quantity"]) for line in lines)
    return {
        "id": row["id"],
        "presentment_currency": row["currency"],
        "buyer_accepts_sms_marketing": False,
        "sms_marketing_phone": None,
        "total_discounts": money(max(line_cents - row["subtotal_cents"], 0)),
        "total_line_items_price": money(line_cents),
        "total_price": money(row["total_cents"]),
        "total_tax": money(max(row["total_cents"] - row["subtotal_cents"], 0)),
        "subtotal_price": money(row["subtotal_cents"]),
        "cart_token": row["cart_token"],
        "total_duties": None,
        "reservation_token": None,
    }


def cart(store: DevStore, ctx: ShopContext, cart_id: int) -> Payload | None:
    """`carts/create|update`: an anonymous online-store cart (never a customer)."""
    row = store.conn().execute("SELECT * FROM carts WHERE shop = ? AND id = ?", (ctx.domain, cart_id)).fetchone()
    if row is None:
        return None
    lines = json.loads(row["line_items"])
    catalog = _catalog(store, lines)
    items = []
    for line in lines:
        price, quantity = int(line["price_cents"]), int(line["quantity"])
        variant = line.get("variant_id")
        items.append({
            "id": variant,
            "properties": None,
            "quantity": quantity,
            "variant_id": variant,
            "key": f"{variant}:{digest(row['token'], variant)}",
            "discounted_price": money(price),
            "discounts": [],
            "gift_card": False,
            "grams": 0,
            "line_price": money(price * quantity),
            "original_line_price": money(price * quantity),
            "original_price": money(price),
            "price": money(price),
            "product_id": line.get("product_id"),
            "sku": _line_extra(line, catalog, "sku", "sku"),
            "taxable": True,
            "title": line["title"],
            "total_discount": "0.00",
            "vendor": _line_extra(line, catalog, "vendor", "vendor"),
            "discounted_price_set": ctx.money_set(price),
            "line_price_set": ctx.money_set(price * quantity),
            "original_line_price_set": ctx.money_set(price * quantity),
            "price_set": ctx.money_set(price),
            "total_discount_set": ctx.money_set(0),
            "parent_relationship": None,
        })
    return {"id": row["token"], "token": row["token"], "line_items": items, "note": None,
            "updated_at": utc_millis(row["updated_at"]), "created_at": utc_millis(row["created_at"])}
