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
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from .state import DevStore, Event, gid, money, parse_iso

Payload = dict[str, Any]

# Shopify's plan handles and the names its Shop resource shows for them.
PLAN_DISPLAY_NAMES = {"basic": "Basic", "shopify": "Shopify", "advanced": "Advanced",
                      "shopify_plus": "Shopify Plus", "plus": "Shopify Plus", "enterprise": "Shopify Plus",
                      "partner_test": "Developer Preview", "affiliate": "Development"}

# User agents per device, for orders whose row has none (Shopify reports the browser's own).
DEFAULT_USER_AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/131.0.0.0 Safari/537.36",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.1 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.1 Mobile/15E148 Safari/604.1",
}


# The made-up addresses devstore shows (it stores none): streets and US cities picked by an id.
STREETS = ("Maple Avenue", "Harbour Street", "Cedar Lane", "Mill Road", "Orchard Way", "King Street", "Elm Court")
CITIES = (("Portland", "Oregon", "OR", "97205"), ("Austin", "Texas", "TX", "78701"),
          ("Columbus", "Ohio", "OH", "43215"), ("Raleigh", "North Carolina", "NC", "27601"),
          ("Albany", "New York", "NY", "12207"))


def _place(seed: int) -> Payload:
    """The street, city, province and zip devstore shows for the resource with id `seed`."""
    city, province, province_code, zip_ = CITIES[(seed // len(STREETS)) % len(CITIES)]
    return {"address1": f"{100 + seed % 900} {STREETS[seed % len(STREETS)]}", "city": city, "province": province,
            "province_code": province_code, "zip": zip_}


def mailing_address(seed: int, first_name: str | None, last_name: str | None, phone: str | None) -> Payload:
    """An order's or checkout's billing / shipping address, in the keys and order of Shopify's samples."""
    place = _place(seed)
    return {"first_name": first_name, "address1": place["address1"], "phone": phone, "city": place["city"],
            "zip": place["zip"], "province": place["province"], "country": "United States", "last_name": last_name,
            "address2": None, "company": None, "latitude": None, "longitude": None,
            "name": " ".join(part for part in (first_name, last_name) if part), "country_code": "US",
            "province_code": place["province_code"]}


def customer_address(row: sqlite3.Row) -> Payload:
    """A customer's `default_address` (devstore gives every customer one, at a made-up place)."""
    place = _place(row["id"])
    first, last = row["first_name"], row["last_name"]
    return {"id": row["id"] * 10 + 1, "customer_id": row["id"], "first_name": first, "last_name": last,
            "company": None, "address1": place["address1"], "address2": None, "city": place["city"],
            "province": place["province"], "country": "United States", "zip": place["zip"], "phone": row["phone"],
            "name": " ".join(part for part in (first, last) if part), "province_code": place["province_code"],
            "country_code": "US", "country_name": "United States", "default": True}


def _names(customer_row: sqlite3.Row | None, email: str | None) -> tuple[str | None, str]:
    """Whose name an order's or checkout's addresses carry: the customer's; for a guest, their email's."""
    if customer_row is not None and (customer_row["first_name"] or customer_row["last_name"]):
        return customer_row["first_name"], customer_row["last_name"] or ""
    local = (email or "").split("@", 1)[0].replace(".", " ").replace("_", " ").title()
    return None, local or "Guest"


@dataclass(frozen=True)
class ShopContext:
    """What every payload needs from the shop: ids, currency and the timezone times are shown in."""

    domain: str
    id: int
    name: str
    email: str
    currency: str
    iana_timezone: str
    plan: str
    created_at: str
    tz: ZoneInfo

    def time(self, text: str | None) -> str | None:
        """A stored UTC time shown the way Shopify shows it: local time with the shop's offset."""
        if not text:
            return None
        return parse_iso(text).astimezone(self.tz).isoformat(timespec="seconds")

    @property
    def business_entity_id(self) -> str:
        """An order's `merchant_business_entity_id`: like Shopify's sample, unpadded base64 of a number."""
        return base64.b64encode(str(self.id).encode()).decode().rstrip("=")

    @property
    def primary_location_id(self) -> int:
        """The shop's one location (devstore has no locations; the id is made from the shop's)."""
        return self.id * 10 + 7

    def money_set(self, cents: int, presentment_currency: str | None = None) -> Payload:
        amount = money(cents)
        return {"shop_money": {"amount": amount, "currency_code": self.currency},
                "presentment_money": {"amount": amount, "currency_code": presentment_currency or self.currency}}


def shop_context(store: DevStore, domain: str) -> ShopContext | None:
    row = store.shop(domain)
    if row is None:
        return None
    return ShopContext(domain=row["domain"], id=row["id"], name=row["name"], email=row["email"],
                       currency=row["currency"], iana_timezone=row["iana_timezone"], plan=row["plan"],
                       created_at=row["created_at"], tz=ZoneInfo(row["iana_timezone"]))


def utc_millis(text: str | None) -> str | None:
    """The UTC millisecond form some newer topics use (carts, customer.tags_*): `...T05:00:00.000Z`."""
    if not text:
        return None
    return parse_iso(text).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def encode(payload: Payload) -> bytes:
    """The raw body sent (and signed): compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(*parts: object) -> str:
    """A stable hex token for values Shopify generates (order tokens, recovery keys)."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _tags_text(raw: str | None) -> str:
    """Tags are a JSON list in state; REST payloads join them with ", "."""
    return ", ".join(json.loads(raw or "[]"))


# -- customers -----------------------------------------------------------------------------------
def customer_resource(ctx: ShopContext, row: sqlite3.Row, *, nested: bool = False) -> Payload:
    """The Customer as webhooks show it since 2025-01: no tags, no consents, no order statistics."""
    body: Payload = {
        "id": row["id"],
        "created_at": ctx.time(row["created_at"]),
        "updated_at": ctx.time(row["updated_at"]),
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "state": row["state"],
        "note": row["note"],
        "verified_email": bool(row["verified_email"]),
        "multipass_identifier": None,
        "tax_exempt": False,
        "email": row["email"],
        "phone": row["phone"],
        "currency": ctx.currency,
    }
    address = customer_address(row)
    if not nested:  # the customer topics list addresses; a customer nested in an order does not
        body["addresses"] = [address]
    body["tax_exemptions"] = []
    body["admin_graphql_api_id"] = gid("Customer", row["id"])
    body["default_address"] = address
    return body


def _customer_row(store: DevStore, shop: str, customer_id: int | None) -> sqlite3.Row | None:
    if customer_id is None:
        return None
    return store.conn().execute("SELECT * FROM customers WHERE shop = ? AND id = ?",
                                (shop, customer_id)).fetchone()


def customer(store: DevStore, ctx: ShopContext, customer_id: int) -> Payload | None:
    row = _customer_row(store, ctx.domain, customer_id)
    return customer_resource(ctx, row) if row else None


def customer_deleted(customer_id: int) -> Payload:
    return {"id": customer_id, "tax_exemptions": [], "admin_graphql_api_id": gid("Customer", customer_id)}


def customer_tags_changed(customer_id: int, tags: Iterable[str], occurred_at: str) -> Payload:
    """`customer.tags_added` / `_removed`: GraphQL-style keys, the changed tags only."""
    return {"customerId": gid("Customer", customer_id), "tags": list(tags), "occurredAt": utc_millis(occurred_at)}


def _consent_time(ctx: ShopContext, row: sqlite3.Row, state: str) -> str | None:
    """When the consent was given or withdrawn: devstore keeps no separate time, so the customer's
    last change; none for a consent never given (`not_subscribed`), as in Shopify's samples."""
    return None if state == "not_subscribed" else ctx.time(row["updated_at"])


def email_consent(store: DevStore, ctx: ShopContext, customer_id: int) -> Payload | None:
    row = _customer_row(store, ctx.domain, customer_id)
    if row is None:
        return None
    state = row["email_marketing_state"].lower()
    return {"customer_id": row["id"], "email_address": row["email"],
            "email_marketing_consent": {"state": state,
                                        "opt_in_level": "single_opt_in" if state == "subscribed" else None,
                                        "consent_updated_at": _consent_time(ctx, row, state)}}


def sms_consent(store: DevStore, ctx: ShopContext, customer_id: int) -> Payload | None:
    row = _customer_row(store, ctx.domain, customer_id)
    if row is None:
        return None
    state = row["sms_marketing_state"].lower()
    return {"id": row["id"], "phone": row["phone"],
            "sms_marketing_consent": {"state": state,
                                      "opt_in_level": "single_opt_in" if state == "subscribed" else None,
                                      "consent_updated_at": _consent_time(ctx, row, state),
                                      "consent_collected_from": "other"}}


# -- orders and refunds --------------------------------------------------------------------------
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
    customer_row = _customer_row(store, ctx.domain, row["customer_id"])

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
    token = _digest(ctx.domain, "order", row["id"])
    order_number = row["number"]
    first_name, last_name = _names(customer_row, row["email"])
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
        "order_status_url": f"https://{ctx.domain}/{ctx.id}/orders/{token}/authenticate?key={_digest(token)}",
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
        "tags": _tags_text(row["tags"]),
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
        "customer": customer_resource(ctx, customer_row, nested=True) if customer_row else None,
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


# -- checkouts and carts -------------------------------------------------------------------------
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
        "key": _digest(token, line.get("variant_id"), line["title"]),
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
    customer_row = _customer_row(store, ctx.domain, row["customer_id"])
    line_cents = sum(int(line["price_cents"]) * int(line["quantity"]) for line in lines)
    currency = row["currency"]
    tax_cents = max(row["total_cents"] - row["subtotal_cents"], 0)
    first_name, last_name = _names(customer_row, row["email"])
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
                                  f"?key={_digest(ctx.domain, 'recover', row['token'])}",
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
        "customer": customer_resource(ctx, customer_row, nested=True) if customer_row else None,
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
            "key": f"{variant}:{_digest(row['token'], variant)}",
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


# -- products ------------------------------------------------------------------------------------
def product(store: DevStore, ctx: ShopContext, product_id: int) -> Payload | None:
    """`products/create|update`: product_type, vendor, comma-joined tags and the variants."""
    conn = store.conn()
    row = conn.execute("SELECT * FROM products WHERE shop = ? AND id = ?", (ctx.domain, product_id)).fetchone()
    if row is None:
        return None
    variants = conn.execute("SELECT * FROM variants WHERE product_id = ? ORDER BY id", (product_id,)).fetchall()
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
        "tags": _tags_text(row["tags"]),
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
            "inventory_item_id": None,
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


# -- shop, bulk operations, compliance -----------------------------------------------------------
def shop_resource(ctx: ShopContext) -> Payload:
    """The Shop resource (`app/uninstalled`, `shop/update`)."""
    offset = dt.datetime.now(ctx.tz).strftime("%z")
    place = _place(ctx.id)
    return {
        "id": ctx.id, "name": ctx.name, "email": ctx.email, "domain": ctx.domain, "province": place["province"],
        "country": "US", "address1": place["address1"], "zip": place["zip"], "city": place["city"], "source": None,
        "phone": f"555{ctx.id % 10_000_000:07d}",
        "latitude": None, "longitude": None, "primary_locale": "en", "address2": None,
        "created_at": ctx.time(ctx.created_at), "updated_at": ctx.time(ctx.created_at),
        "country_code": "US", "country_name": "United States", "currency": ctx.currency,
        "customer_email": ctx.email, "timezone": f"(GMT{offset[:3]}:{offset[3:]}) {ctx.iana_timezone}",
        "iana_timezone": ctx.iana_timezone, "shop_owner": ctx.name,
        "money_format": "${{amount}}", "money_with_currency_format": f"${{{{amount}}}} {ctx.currency}",
        "weight_unit": "kg", "province_code": place["province_code"], "taxes_included": False,
        "auto_configure_tax_inclusivity": None, "tax_shipping": None, "county_taxes": True,
        "plan_display_name": PLAN_DISPLAY_NAMES.get(ctx.plan, ctx.plan.replace("_", " ").title()),
        "plan_name": ctx.plan, "has_discounts": True, "has_gift_cards": False, "myshopify_domain": ctx.domain,
        "google_apps_domain": None, "google_apps_login_enabled": None,
        "money_in_emails_format": "${{amount}}", "money_with_currency_in_emails_format": f"${{{{amount}}}} "
                                                                                          f"{ctx.currency}",
        "eligible_for_payments": True, "requires_extra_payments_agreement": False, "password_enabled": False,
        "has_storefront": True, "finances": True, "primary_location_id": ctx.primary_location_id,
        "checkout_api_supported": True,
        "multi_location_enabled": True, "setup_required": False, "pre_launch_enabled": False,
        "enabled_presentment_currencies": [ctx.currency], "marketing_sms_consent_enabled_at_checkout": False,
        "transactional_sms_disabled": False,
    }


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
