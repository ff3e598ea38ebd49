"""Order and refund webhook payloads: the REST Order with its line items, discounts, shipping and
tax lines, client details and refunds, as the `orders/*` topics deliver it, and the Refund of
`refunds/create`, taken from its order's payload so both show the same values. Refund line items,
adjustments and transactions have no rows of their own: their ids derive from the refund's id, so
every delivery of a refund repeats them.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from . import payload_customers
from .payload_context import Payload, ShopContext, digest, mailing_address, names, tags_text
from .state import DevStore, gid, money

# User agents per device, for orders whose row has none (Shopify reports the browser's own).
DEFAULT_USER_AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/131.0.0.0 Safari/537.36",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.1 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.1 Mobile/15E148 Safari/604.1",
}


def _refunded_quantities(refunds: Iterable[sqlite3.Row]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for refund in refunds:
        for item in json.loads(refund["line_items"]):
            counts[item["line_item_id"]] = counts.get(item["line_item_id"], 0) + int(item["quantity"])
    return counts


def _line_item(ctx: ShopContext, item: sqlite3.Row, currency: str, *, refunded: int, open_: bool,
               product_exists: bool) -> Payload:
    allocations = []
    if item["discount_cents"]:
        allocations.append({"amount": money(item["discount_cents"]), "discount_application_index": 0,
                            "amount_set": ctx.money_set(item["discount_cents"], currency)})
    current = max(item["quantity"] - refunded, 0)
    return {
        "id": item["id"],
        "admin_graphql_api_id": gid("LineItem", item["id"]),
        "attributed_staffs": [],
        "current_quantity": current,
        "fulfillable_quantity": current if open_ else 0,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 0,
        "name": item["title"],
        "price": money(item["price_cents"]),
        "price_set": ctx.money_set(item["price_cents"], currency),
        "product_exists": product_exists,
        "product_id": item["product_id"],
        "properties": [],
        "quantity": item["quantity"],
        "requires_shipping": True,
        "sales_line_item_group_id": None,
        "sku": item["sku"],
        "taxable": True,
        "title": item["title"],
        "total_discount": money(item["discount_cents"]),
        "total_discount_set": ctx.money_set(item["discount_cents"], currency),
        "variant_id": item["variant_id"],
        "variant_inventory_management": None,
        "variant_title": None,
        "vendor": item["vendor"],
        "tax_lines": [],
        "duties": [],
        "discount_allocations": allocations,
    }


def _refund_line_item_for(line: Payload) -> Payload:
    """A refund's nested `line_item`: the order's line item without the per-order bookkeeping keys."""
    keys = ("id", "variant_id", "title", "quantity", "sku", "variant_title", "vendor", "fulfillment_service",
            "product_id", "requires_shipping", "taxable", "gift_card", "name", "variant_inventory_management",
            "properties", "product_exists", "fulfillable_quantity", "grams", "price", "total_discount",
            "fulfillment_status", "price_set", "total_discount_set", "discount_allocations", "duties",
            "admin_graphql_api_id", "tax_lines")
    return {key: line[key] for key in keys}


def _refund_resource(ctx: ShopContext, refund: sqlite3.Row, order: sqlite3.Row,
                     lines_by_id: dict[int, Payload]) -> Payload:
    currency = order["currency"]
    # Refund line items and transactions have no table of their own; their ids derive from the
    # refund's id so every delivery of the same refund shows the same ids.
    refund_items = []
    items_cents = 0
    for index, item in enumerate(json.loads(refund["line_items"]), start=1):
        cents = int(item["subtotal_cents"])
        items_cents += cents
        line = lines_by_id.get(item["line_item_id"])
        refund_items.append({
            "id": refund["id"] * 1000 + index,
            "quantity": int(item["quantity"]),
            "line_item_id": item["line_item_id"],
            "location_id": None,
            "restock_type": "no_restock",
            "subtotal": round(cents / 100, 2),  # Shopify sends this one as a JSON number
            "total_tax": 0.0,
            "subtotal_set": ctx.money_set(cents, currency),
            "total_tax_set": ctx.money_set(0, currency),
            "line_item": _refund_line_item_for(line) if line else None,
        })
    adjustments = []
    shipping_cents = refund["amount_cents"] - items_cents
    if shipping_cents > 0:  # what the refund returns beyond its line items is shipping
        adjustments.append({"id": refund["id"] * 1000 + 999, "order_id": order["id"], "refund_id": refund["id"],
                            "amount": money(-shipping_cents), "tax_amount": "0.00", "kind": "shipping_refund",
                            "reason": "Shipping refund", "amount_set": ctx.money_set(-shipping_cents, currency),
                            "tax_amount_set": ctx.money_set(0, currency)})
    created = ctx.time(refund["created_at"])
    transaction_id = refund["id"] * 1000
    return {
        "id": refund["id"],
        "order_id": order["id"],
        "created_at": created,
        "note": refund["note"],
        "user_id": None,
        "processed_at": created,
        "duties": [],
        "total_duties_set": ctx.money_set(0, currency),
        "return": None,
        "refund_shipping_lines": [],
        "restock": False,
        "admin_graphql_api_id": gid("Refund", refund["id"]),
        "order_adjustments": adjustments,
        "refund_line_items": refund_items,
        "transactions": [{
            "id": transaction_id, "order_id": order["id"], "kind": "refund", "gateway": "shopify_payments",
            "status": "success", "message": None, "created_at": created, "test": bool(order["test"]),
            "authorization": None, "location_id": None, "user_id": None, "parent_id": None,
            "processed_at": created, "device_id": None, "error_code": None, "source_name": order["source_name"],
            "receipt": {}, "amount": money(refund["amount_cents"]), "currency": currency,
            "payment_id": f"{order['name']}.{refund['id']}", "total_unsettled_set": {
                "presentment_money": {"amount": "0.0", "currency": currency},
                "shop_money": {"amount": "0.0", "currency": ctx.currency}},
            "manual_payment_gateway": False, "amount_rounding": None,
            "admin_graphql_api_id": gid("OrderTransaction", transaction_id),
        }],
    }


def _client_details(order: sqlite3.Row) -> Payload | None:
    if order["device"] == "pos":
        return None  # point-of-sale orders have no browser
    return {"accept_language": "en-US", "browser_height": None, "browser_ip": order["browser_ip"],
            "browser_width": None, "session_hash": None,
            "user_agent": order["user_agent"] or DEFAULT_USER_AGENTS.get(order["device"])}


def _discounts(ctx: ShopContext, order: sqlite3.Row) -> tuple[list[Payload], list[Payload]]:
    """(discount_codes, discount_applications) from the order's stored codes."""
    codes, applications = [], []
    for entry in json.loads(order["discount_codes"]):
        kind = entry.get("type", "fixed_amount")
        amount = money(int(entry.get("amount_cents", 0)))
        codes.append({"code": entry["code"], "amount": amount, "type": kind})
        applications.append({"target_type": "line_item", "type": "discount_code",
                             "value": entry.get("value", amount), "value_type": kind,
                             "allocation_method": "across", "target_selection": "all", "code": entry["code"]})
    return codes, applications


def _shipping_lines(ctx: ShopContext, order: sqlite3.Row) -> list[Payload]:
    if not order["shipping_title"]:
        return []
    currency, cents = order["currency"], order["shipping_cents"]
    return [{
        "id": order["id"],  # one shipping line per order in devstore, so the order's id is unique among them
        "carrier_identifier": None,
        "code": order["shipping_code"],
        "current_discounted_price_set": ctx.money_set(cents, currency),
        "discounted_price": money(cents),
        "discounted_price_set": ctx.money_set(cents, currency),
        "is_removed": False,
        "phone": None,
        "price": money(cents),
        "price_set": ctx.money_set(cents, currency),
        "requested_fulfillment_service_id": None,
        "source": "shopify",
        "title": order["shipping_title"],
        "tax_lines": [],
        "discount_allocations": [],
    }]


def _tax_lines(ctx: ShopContext, order: sqlite3.Row) -> list[Payload]:
    if not order["tax_cents"]:
        return []
    taxed = order["subtotal_cents"] - order["discount_cents"]
    rate = round(order["tax_cents"] / taxed, 4) if taxed > 0 else 0.0
    return [{"price": money(order["tax_cents"]), "rate": rate, "title": "Tax",
             "price_set": ctx.money_set(order["tax_cents"], order["currency"]), "channel_liable": False}]


def order(store: DevStore, ctx: ShopContext, order_id: int) -> Payload | None:
    """The REST Order, as `orders/create|updated|paid|cancelled` deliver it."""
    conn = store.conn()
    row = conn.execute("SELECT * FROM orders WHERE shop = ? AND id = ?", (ctx.domain, order_id)).fetchone()
    if row is None:
        return None
    items = conn.execute("SELECT * FROM line_items WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()
    refunds = conn.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()
    product_ids = {item["product_id"] for item in items if item["product_id"] is not None}
    existing = {r["id"] for r in conn.execute(
        f"SELECT id FROM products WHERE id IN ({','.join('?' * len(product_ids))})", tuple(product_ids))} \
        if product_ids else set()
    customer_row = payload_customers.customer_row(store, ctx.domain, row["customer_id"])

    currency = row["currency"]
    refunded_qty = _refunded_quantities(refunds)
    open_ = row["cancelled_at"] is None and row["fulfillment_status"] != "fulfilled"
    lines = [_line_item(ctx, item, currency, refunded=refunded_qty.get(item["id"], 0), open_=open_,
                        product_exists=item["product_id"] in existing) for item in items]
    lines_by_id = {line["id"]: line for line in lines}
    line_items_cents = sum(item["price_cents"] * item["quantity"] for item in items)
    # The row's subtotal is before discounts; Shopify's subtotal_price is after them.
    subtotal = row["subtotal_cents"] - row["discount_cents"]
    refunded = row["refunded_cents"]
    current_total = max(row["total_cents"] - refunded, 0)
    current_subtotal = max(subtotal - refunded, 0)
    outstanding = row["total_cents"] if row["financial_status"] in ("pending", "authorized") else 0
    codes, applications = _discounts(ctx, row)
    token = digest(ctx.domain, "order", row["id"])
    order_number = row["number"]
    first_name, last_name = names(customer_row, row["email"])
    phone = customer_row["phone"] if customer_row else None
    money_set = ctx.money_set
    return {
        "id": row["id"],
        "admin_graphql_api_id": gid("Order", row["id"]),
        "app_id": None,
        "browser_ip": row["browser_ip"],
        "buyer_accepts_marketing": bool(customer_row and customer_row["email_marketing_state"] == "SUBSCRIBED"),
        "cancel_reason": row["cancel_reason"],
        "cancelled_at": ctx.time(row["cancelled_at"]),
        "cart_token": row["cart_token"],
        "checkout_token": row["checkout_token"],
        "client_details": _client_details(row),
        "closed_at": ctx.time(row["closed_at"]),
        "confirmation_number": token[:9].upper(),
        "confirmed": True,
        "contact_email": row["email"],
        "created_at": ctx.time(row["created_at"]),
        "currency": currency,
        "current_shipping_price_set": money_set(row["shipping_cents"], currency),
        "current_subtotal_price": money(current_subtotal),
        "current_subtotal_price_set": money_set(current_subtotal, currency),
        "current_total_additional_fees_set": None,
        "current_total_discounts": money(row["discount_cents"]),
        "current_total_discounts_set": money_set(row["discount_cents"], currency),
        "current_total_duties_set": None,
        "current_total_price": money(current_total),
        "current_total_price_set": money_set(current_total, currency),
        "current_total_tax": money(row["tax_cents"]),
        "current_total_tax_set": money_set(row["tax_cents"], currency),
        "customer_locale": "en",
        "device_id": None,
        "discount_codes": codes,
        "duties_included": False,
        "email": row["email"],
        "estimated_taxes": False,
        "financial_status": row["financial_status"],
        "fulfillment_status": row["fulfillment_status"],
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "merchant_business_entity_id": ctx.business_entity_id,
        "merchant_of_record_app_id": None,
        "name": row["name"],
        "note": None,
        "note_attributes": [],
        "number": order_number - 1000 if order_number > 1000 else order_number,  # Shopify: order_number - 1000
        "order_number": order_number,
        "order_status_url": f"https://{ctx.domain}/{ctx.id}/orders/{token}/authenticate?key={digest(token)}",
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": ["cash"] if row["device"] == "pos" else ["shopify_payments"],
        "phone": None,
        "po_number": None,
        "presentment_currency": currency,
        "processed_at": ctx.time(row["processed_at"]),
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": row["source_name"],
        "source_url": None,
        "subtotal_price": money(subtotal),
        "subtotal_price_set": money_set(subtotal, currency),
        "tags": tags_text(row["tags"]),
        "tax_exempt": False,
        "tax_lines": _tax_lines(ctx, row),
        "taxes_included": False,
        "test": bool(row["test"]),
        "token": token,
        "total_cash_rounding_payment_adjustment_set": money_set(0, currency),
        "total_cash_rounding_refund_adjustment_set": money_set(0, currency),
        "total_discounts": money(row["discount_cents"]),
        "total_discounts_set": money_set(row["discount_cents"], currency),
        "total_line_items_price": money(line_items_cents),
        "total_line_items_price_set": money_set(line_items_cents, currency),
        "total_outstanding": money(outstanding),
        "total_price": money(row["total_cents"]),
        "total_price_set": money_set(row["total_cents"], currency),
        "total_shipping_price_set": money_set(row["shipping_cents"], currency),
        "total_tax": money(row["tax_cents"]),
        "total_tax_set": money_set(row["tax_cents"], currency),
        "total_tip_received": "0.00",
        "total_weight": 0,
        "updated_at": ctx.time(row["updated_at"]),
        "user_id": None,
        "billing_address": mailing_address(row["id"], first_name, last_name, phone),
        "customer": payload_customers.customer_resource(ctx, customer_row, nested=True) if customer_row else None,
        "discount_applications": applications,
        "fulfillments": [],
        "line_items": lines,
        "payment_terms": None,
        "refunds": [_refund_resource(ctx, refund, row, lines_by_id) for refund in refunds],
        "shipping_address": mailing_address(row["id"], first_name, last_name, phone),
        "shipping_lines": _shipping_lines(ctx, row),
        "returns": [],
        "line_item_groups": [],
    }


def refund(store: DevStore, ctx: ShopContext, refund_id: int) -> Payload | None:
    """`refunds/create`: the Refund with its line items (each nesting the order's line item)."""
    full = store.conn().execute(
        "SELECT r.order_id FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = ? AND o.shop = ?",
        (refund_id, ctx.domain)).fetchone()
    if full is None:
        return None
    order_payload = order(store, ctx, full["order_id"])
    if order_payload is None:
        return None
    return next((r for r in order_payload["refunds"] if r["id"] == refund_id), None)
