"""Row -> GraphQL object builders: dicts keyed by Shopify field names, with callables for nested reads.

graphql-core's default resolver calls a callable value with `(info, **args)`, so related objects and
connections are read only when a query selects them.
"""
from __future__ import annotations

import json
import sqlite3
from functools import cache
from typing import Any

from graphql import GraphQLResolveInfo

from .graphql_connections import Obj, fetch, list_connection, order_listing, table_connection
from .graphql_context import RequestContext, app_numeric_id, require
from .graphql_lists import Listing
from .graphql_metafields import metafield_connection, metafield_object, metafield_row
from .inventory import READ_SCOPES as INVENTORY_READ_SCOPES
from .inventory import item_of_variant
from .state import gid, money

# -- money ---------------------------------------------------------------------------------------


def money_v2(cents: int, currency: str) -> Obj:
    return {"amount": money(cents), "currencyCode": currency}


def money_bag(cents: int, currency: str) -> Obj:
    # devstore keeps one currency per order, so shop and presentment amounts agree.
    amount = money_v2(cents, currency)
    return {"shopMoney": amount, "presentmentMoney": amount}


# -- enums ---------------------------------------------------------------------------------------

_FINANCIAL = {"AUTHORIZED", "EXPIRED", "PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "PENDING", "REFUNDED",
              "VOIDED"}
_FULFILLMENT = {"FULFILLED": "FULFILLED", "PARTIAL": "PARTIALLY_FULFILLED", "PARTIALLY_FULFILLED":
                "PARTIALLY_FULFILLED", "RESTOCKED": "RESTOCKED", "ON_HOLD": "ON_HOLD", "SCHEDULED": "SCHEDULED"}
_CANCEL = {"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"}
_EMAIL_STATES = {"INVALID", "NOT_SUBSCRIBED", "PENDING", "REDACTED", "SUBSCRIBED", "UNSUBSCRIBED"}
_SMS_STATES = {"NOT_SUBSCRIBED", "PENDING", "REDACTED", "SUBSCRIBED", "UNSUBSCRIBED"}


def _enum(value: str | None, allowed: set[str], fallback: str | None) -> str | None:
    upper = (value or "").upper()
    return upper if upper in allowed else fallback


# -- shop ----------------------------------------------------------------------------------------

_PLAN_NAMES = {"basic": "Basic", "shopify": "Shopify", "advanced": "Advanced", "plus": "Shopify Plus",
               "enterprise": "Commerce Components"}


def shop_object(ctx: RequestContext) -> Obj:
    row = ctx.shop_row
    plan = row["plan"]
    return {
        "__typename": "Shop", "id": gid("Shop", row["id"]), "name": row["name"], "email": row["email"],
        "myshopifyDomain": row["domain"], "currencyCode": row["currency"], "ianaTimezone": row["iana_timezone"],
        "createdAt": row["created_at"],
        "plan": {"displayName": _PLAN_NAMES.get(plan, "Development"),
                 "publicDisplayName": _PLAN_NAMES.get(plan, "Development"),
                 "partnerDevelopment": plan not in _PLAN_NAMES,
                 "shopifyPlus": plan in ("plus", "enterprise")},
    }


def installation_object(ctx: RequestContext) -> Obj:
    scopes = sorted(ctx.scopes)
    return {"__typename": "AppInstallation",
            "id": gid("AppInstallation", app_numeric_id(f"{ctx.shop}/{ctx.api_key}")),
            "accessScopes": [{"handle": s, "description": s.replace("_", " ").capitalize()} for s in scopes]}


# -- customers -----------------------------------------------------------------------------------

def display_name(row: sqlite3.Row) -> str:
    name = " ".join(part for part in (row["first_name"], row["last_name"]) if part)
    return name or row["email"] or row["phone"] or ""


def customer_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    cid = row["id"]

    @cache
    def stats() -> tuple[int, int]:
        found = ctx.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN cancelled_at IS NULL THEN total_cents - refunded_cents "
            "ELSE 0 END), 0) FROM orders WHERE customer_id = ? AND shop = ?", (cid, ctx.shop)).fetchone()
        return int(found[0]), int(found[1])

    def last_order(info: GraphQLResolveInfo) -> Obj | None:
        require(ctx, info, "read_orders")
        cutoff = ctx.order_cutoff() or ""
        found = ctx.conn.execute("SELECT * FROM orders WHERE customer_id = ? AND shop = ? AND created_at >= ? "
                                 "ORDER BY created_at DESC, id DESC LIMIT 1", (cid, ctx.shop, cutoff)).fetchone()
        return order_object(ctx, found) if found else None

    def orders(info: GraphQLResolveInfo, **args: Any) -> Obj:
        require(ctx, info, "read_orders")
        return table_connection(ctx, info, order_listing(ctx, info, args, customer_id=cid), args,
                                lambda r: order_object(ctx, r))

    email_state = _enum(row["email_marketing_state"], _EMAIL_STATES, "NOT_SUBSCRIBED")
    sms_state = _enum(row["sms_marketing_state"], _SMS_STATES, "NOT_SUBSCRIBED")
    email, phone = row["email"], row["phone"]
    return {
        "__typename": "Customer",
        "id": gid("Customer", cid),
        "legacyResourceId": str(cid),
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "displayName": display_name(row),
        "email": email,
        "phone": phone,
        "state": _enum(row["state"], {"DECLINED", "DISABLED", "ENABLED", "INVITED"}, "DISABLED"),
        "tags": json.loads(row["tags"]),
        "note": row["note"],
        "verifiedEmail": bool(row["verified_email"]),
        "numberOfOrders": lambda info: str(stats()[0]),
        "amountSpent": lambda info: money_v2(stats()[1], ctx.currency),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "defaultEmailAddress": {"emailAddress": email,
                                "marketingState": email_state if email_state != "REDACTED" else "INVALID"}
        if email else None,
        "defaultPhoneNumber": {"phoneNumber": phone, "marketingState": sms_state, "smsMarketingConsent": {
            # the consent object's enum says NEVER_SUBSCRIBED where the phone's flat one said NOT_SUBSCRIBED
            "state": "NEVER_SUBSCRIBED" if sms_state == "NOT_SUBSCRIBED" else sms_state}} if phone else None,
        "emailMarketingConsent": {"marketingState": email_state} if email else None,
        "smsMarketingConsent": {"marketingState": sms_state} if phone else None,
        "lastOrder": last_order,
        "orders": orders,
        "metafield": lambda info, key, namespace=None: _metafield(ctx, "CUSTOMER", cid, namespace, key),
        "metafields": lambda info, **args: metafield_connection(ctx, info, "CUSTOMER", cid, args),
    }


def _metafield(ctx: RequestContext, owner_type: str, owner_id: int, namespace: str | None, key: str) -> Obj | None:
    row = metafield_row(ctx, owner_type, owner_id, namespace, key)
    return metafield_object(row) if row else None


# -- products ------------------------------------------------------------------------------------

def product_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    pid = row["id"]

    def variants(info: GraphQLResolveInfo, **args: Any) -> Obj:
        listing = Listing("variants", "product_id = ? AND shop = ?", [pid, ctx.shop], "id", bool(args.get("reverse")))
        return table_connection(ctx, info, listing, args, lambda r: variant_object(ctx, r, product=row))

    return {
        "__typename": "Product", "id": gid("Product", pid), "legacyResourceId": str(pid),
        "title": row["title"], "handle": row["handle"], "productType": row["product_type"],
        "vendor": row["vendor"], "tags": json.loads(row["tags"]),
        "status": _enum(row["status"], {"ACTIVE", "ARCHIVED", "DRAFT"}, "ACTIVE"),
        "createdAt": row["created_at"], "updatedAt": row["updated_at"],
        "variants": variants,
        "metafield": lambda info, key, namespace=None: _metafield(ctx, "PRODUCT", pid, namespace, key),
    }


def variant_object(ctx: RequestContext, row: sqlite3.Row, product: sqlite3.Row | None = None) -> Obj:
    def product_of(info: GraphQLResolveInfo) -> Obj | None:
        found = product if product is not None else fetch(ctx, "products", row["product_id"])
        return product_object(ctx, found) if found else None

    def inventory_item(info: GraphQLResolveInfo) -> Obj | None:
        # a line item's variant is read with read_orders alone; its item needs an inventory scope
        require(ctx, info, INVENTORY_READ_SCOPES)
        found = item_of_variant(ctx.conn, ctx.shop, row["id"])
        return inventory_item_object(ctx, found, variant=row) if found else None

    return {"__typename": "ProductVariant", "id": gid("ProductVariant", row["id"]),
            "legacyResourceId": str(row["id"]), "title": row["title"], "sku": row["sku"],
            "price": money(row["price_cents"]), "product": product_of, "inventoryItem": inventory_item}


def inventory_item_object(ctx: RequestContext, row: sqlite3.Row, variant: sqlite3.Row | None = None) -> Obj:
    """A variant's inventory item: its SKU is the variant's, its unit cost in the shop currency."""
    @cache
    def variant_row() -> sqlite3.Row | None:
        return variant if variant is not None else fetch(ctx, "variants", row["variant_id"])

    # ProductVariant is read with read_products: an app holding read_inventory alone sees the item only
    def variant_of(info: GraphQLResolveInfo) -> Obj | None:
        require(ctx, info, "read_products")
        found = variant_row()
        return variant_object(ctx, found) if found is not None else None

    def variants(info: GraphQLResolveInfo, **args: Any) -> Obj:
        require(ctx, info, "read_products")
        found = variant_row()
        return list_connection(ctx, [variant_object(ctx, found)] if found else [], args)

    cost = row["cost_cents"]
    return {
        "__typename": "InventoryItem", "id": gid("InventoryItem", row["id"]), "legacyResourceId": str(row["id"]),
        "sku": lambda info: found["sku"] if (found := variant_row()) is not None else None,
        "tracked": bool(row["tracked"]), "requiresShipping": bool(row["requires_shipping"]),
        "unitCost": money_v2(cost, ctx.currency) if cost is not None else None,
        "createdAt": row["created_at"], "updatedAt": row["updated_at"],
        "variant": variant_of,
        "variants": variants,
    }


def _variant_by_id(ctx: RequestContext, variant_id: int | None) -> Obj | None:
    found = fetch(ctx, "variants", variant_id)
    return variant_object(ctx, found) if found else None


def _product_by_id(ctx: RequestContext, product_id: int | None) -> Obj | None:
    found = fetch(ctx, "products", product_id)
    return product_object(ctx, found) if found else None


# -- orders --------------------------------------------------------------------------------------

def order_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    oid, currency = row["id"], row["currency"]

    def bag(cents: int) -> Obj:
        return money_bag(cents, currency)

    def customer(info: GraphQLResolveInfo) -> Obj | None:
        require(ctx, info, "read_customers")
        found = fetch(ctx, "customers", row["customer_id"])
        return customer_object(ctx, found) if found else None

    def line_items(info: GraphQLResolveInfo, **args: Any) -> Obj:
        listing = Listing("line_items", "order_id = ? AND shop = ?", [oid, ctx.shop], "id", bool(args.get("reverse")))
        return table_connection(ctx, info, listing, args, lambda r: line_item_object(ctx, r, currency))

    def shipping_lines(info: GraphQLResolveInfo, **args: Any) -> Obj:
        lines: list[Obj] = []
        if row["shipping_title"] or row["shipping_code"]:
            lines.append({"id": gid("ShippingLine", oid), "title": row["shipping_title"] or row["shipping_code"],
                          "code": row["shipping_code"], "originalPriceSet": bag(row["shipping_cents"]),
                          "discountedPriceSet": bag(row["shipping_cents"])})
        items = list(reversed(lines)) if args.get("reverse") else lines
        return list_connection(ctx, items, args)

    def refunds(info: GraphQLResolveInfo, first: int | None = None) -> list[Obj]:
        sql = "SELECT * FROM refunds WHERE order_id = ? AND shop = ? ORDER BY id"
        rows = ctx.conn.execute(sql + (" LIMIT ?" if first is not None else ""),
                                (oid, ctx.shop) + ((first,) if first is not None else ())).fetchall()
        return [{"__typename": "Refund", "id": gid("Refund", r["id"]), "legacyResourceId": str(r["id"]),
                 "createdAt": r["created_at"], "note": r["note"], "totalRefundedSet": bag(r["amount_cents"])}
                for r in rows]

    codes = [c.get("code") for c in json.loads(row["discount_codes"]) if isinstance(c, dict) and c.get("code")]
    fulfillment = _FULFILLMENT.get((row["fulfillment_status"] or "").upper(), "UNFULFILLED")
    return {
        "__typename": "Order",
        "id": gid("Order", oid), "legacyResourceId": str(oid), "name": row["name"],
        "createdAt": row["created_at"], "processedAt": row["processed_at"], "updatedAt": row["updated_at"],
        "cancelledAt": row["cancelled_at"],
        "cancelReason": _enum(row["cancel_reason"], _CANCEL, "OTHER") if row["cancelled_at"] else None,
        "closed": row["closed_at"] is not None, "closedAt": row["closed_at"],
        "test": bool(row["test"]), "email": row["email"],
        "customer": customer,
        "displayFinancialStatus": _enum(row["financial_status"], _FINANCIAL, None),
        "displayFulfillmentStatus": fulfillment,
        "currencyCode": currency,
        "totalPriceSet": bag(row["total_cents"]),
        "subtotalPriceSet": bag(row["subtotal_cents"]),
        "currentTotalPriceSet": bag(row["total_cents"] - row["refunded_cents"]),
        "totalDiscountsSet": bag(row["discount_cents"]),
        "totalRefundedSet": bag(row["refunded_cents"]),
        "totalShippingPriceSet": bag(row["shipping_cents"]),
        "totalTaxSet": bag(row["tax_cents"]),
        "discountCodes": codes,
        "discountCode": codes[0] if codes else None,
        "sourceName": row["source_name"],
        "clientIp": row["browser_ip"],
        "tags": json.loads(row["tags"]),
        "lineItems": line_items,
        "shippingLines": shipping_lines,
        "refunds": refunds,
        "metafield": lambda info, key, namespace=None: _metafield(ctx, "ORDER", oid, namespace, key),
    }


def line_item_object(ctx: RequestContext, row: sqlite3.Row, currency: str) -> Obj:
    quantity, price, discount = row["quantity"], row["price_cents"], row["discount_cents"]
    return {
        "__typename": "LineItem", "id": gid("LineItem", row["id"]),
        "title": row["title"], "name": row["title"], "quantity": quantity, "sku": row["sku"], "vendor": row["vendor"],
        "variant": lambda info: _variant_by_id(ctx, row["variant_id"]),
        "product": lambda info: _product_by_id(ctx, row["product_id"]),
        "originalUnitPriceSet": money_bag(price, currency),
        "originalTotalSet": money_bag(price * quantity, currency),
        "discountedTotalSet": money_bag(price * quantity - discount, currency),
        "totalDiscountSet": money_bag(discount, currency),
    }


# -- abandoned checkouts -------------------------------------------------------------------------

def checkout_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    cid, currency = row["id"], row["currency"]

    def customer(info: GraphQLResolveInfo) -> Obj | None:
        require(ctx, info, "read_customers")
        found = fetch(ctx, "customers", row["customer_id"])
        return customer_object(ctx, found) if found else None

    def line_items(info: GraphQLResolveInfo, **args: Any) -> Obj:
        items = []
        for index, line in enumerate(json.loads(row["line_items"])):
            price, quantity = int(line.get("price_cents", 0)), int(line.get("quantity", 1))
            variant_id, product_id = line.get("variant_id"), line.get("product_id")
            items.append({
                "__typename": "AbandonedCheckoutLineItem", "id": gid("AbandonedCheckoutLineItem", cid * 1000 + index),
                "title": line.get("title", ""), "quantity": quantity,
                "variant": lambda info, v=variant_id: _variant_by_id(ctx, v),
                "product": lambda info, p=product_id: _product_by_id(ctx, p),
                "originalUnitPriceSet": money_bag(price, currency),
                "originalTotalPriceSet": money_bag(price * quantity, currency),
            })
        return list_connection(ctx, list(reversed(items)) if args.get("reverse") else items, args)

    return {
        "__typename": "AbandonedCheckout", "id": gid("AbandonedCheckout", cid), "name": f"#{cid}",
        "abandonedCheckoutUrl": f"https://{ctx.shop}/{ctx.shop_row['id']}/checkouts/ac/{row['token']}/recover",
        "createdAt": row["created_at"], "updatedAt": row["updated_at"], "completedAt": row["completed_at"],
        "customer": customer,
        "totalPriceSet": money_bag(row["total_cents"], currency),
        "subtotalPriceSet": money_bag(row["subtotal_cents"], currency),
        "lineItems": line_items,
    }


# -- webhook subscriptions and bulk operations ---------------------------------------------------

def webhook_object(row: sqlite3.Row) -> Obj:
    uri: str = row["uri"]
    if uri.startswith("pubsub://"):
        project, _, topic = uri[len("pubsub://"):].partition(":")
        endpoint: Obj = {"__typename": "WebhookPubSubEndpoint", "pubSubProject": project, "pubSubTopic": topic}
    elif uri.startswith("arn:"):
        endpoint = {"__typename": "WebhookEventBridgeEndpoint", "arn": uri}
    else:
        endpoint = {"__typename": "WebhookHttpEndpoint", "callbackUrl": uri}
    return {
        "__typename": "WebhookSubscription", "id": gid("WebhookSubscription", row["id"]),
        "topic": row["topic"], "uri": uri, "endpoint": endpoint, "callbackUrl": uri, "format": row["format"],
        "apiVersion": {"handle": row["api_version"], "displayName": row["api_version"], "supported": True},
        "createdAt": row["created_at"], "updatedAt": row["updated_at"],
    }


def bulk_operation_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    base = f"{ctx.config.public_url}/bulk-results/{row['id']}.jsonl"
    # Shopify gives no url when an operation found nothing, and partial data only for a failed run.
    has_result = row["status"] == "COMPLETED" and row["object_count"] > 0
    has_partial = row["status"] in ("FAILED", "CANCELED") and row["partial_result"] is not None
    return {
        "__typename": "BulkOperation", "id": gid("BulkOperation", row["id"]), "status": row["status"],
        "errorCode": row["error_code"], "type": row["type"], "query": row["query"],
        "createdAt": row["created_at"], "completedAt": row["completed_at"],
        "objectCount": str(row["object_count"]), "rootObjectCount": str(row["root_object_count"]),
        "fileSize": str(row["file_size"]) if row["file_size"] is not None and has_result else None,
        "url": base if has_result else None,
        "partialDataUrl": f"{base}?partial=1" if has_partial else None,
    }
