"""Code discounts: `discountCodeBasicCreate`/`Update`, `discountCodeFreeShippingCreate`/`Update`,
`discountCodeDeactivate`, `discountCodeDelete` and `codeDiscountNodeByCode`, with Shopify's shapes.

What devstore keeps of a discount is what a segment-limited code needs: one code (unique per shop,
case-insensitively: "Code must be unique. Please try a different code.", TAKEN), a title, an active
period (status SCHEDULED / ACTIVE / EXPIRED from startsAt and endsAt; deactivating ends it now, as
Shopify does), who may use it (`context` since 2025-10, or the deprecated `customerSelection`: all
customers or customer segments), the value (a 0..1 percentage or an amount, off all items), a minimum
subtotal, combinesWith, appliesOncePerCustomer and usageLimit. Free shipping goes to all countries.
Writes need `write_discounts`, reads `read_discounts`. Reading an input is discount_input.py's,
redeeming a code at checkout discount_checkout.py's.

Inputs Shopify would take that devstore cannot honour (product or collection items, quantity minimums,
specific customers, markets) are not in its SDL, so a document using them fails validation here.
Where Shopify's wording is not known the messages are devstore's; the error codes are Shopify's enum.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from graphql import GraphQLResolveInfo

from .customer_segments import segment_object, segment_row
from .discount_input import BASIC, FREE_SHIPPING, DiscountInput
from .graphql_connections import list_connection
from .graphql_context import RequestContext, require
from .state import DevStore, gid, iso, money, parse_gid, utcnow

SCHEMA = """
CREATE TABLE IF NOT EXISTS code_discounts (
    id INTEGER PRIMARY KEY,                         -- the DiscountCodeNode's id
    shop TEXT NOT NULL,
    kind TEXT NOT NULL,                             -- BASIC | FREE_SHIPPING
    title TEXT NOT NULL,
    code TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT,                                   -- NULL: open-ended; deactivating sets it to now
    segment_ids TEXT,                               -- JSON [segment id]; NULL: all customers
    value TEXT NOT NULL DEFAULT '{}',               -- JSON {percentage} | {amount_cents, applies_on_each_item};
                                                    -- {} for free shipping
    minimum_subtotal_cents INTEGER,
    combines_with TEXT NOT NULL,                    -- JSON {orderDiscounts, productDiscounts, shippingDiscounts}
    applies_once_per_customer INTEGER NOT NULL DEFAULT 0,
    usage_limit INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS code_discounts_code ON code_discounts (shop, code COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS code_discount_redemptions (
    discount_id INTEGER NOT NULL,
    shop TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    customer_id INTEGER,
    amount_cents INTEGER NOT NULL,
    redeemed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS code_discount_redemptions_discount ON code_discount_redemptions (discount_id, customer_id);
"""

# Ids in their own ranges, about the size of Shopify's, clear of state.ID_BASE's kinds. A discount has
# one code, whose DiscountRedeemCode id is the discount's plus the offset.
DISCOUNT_ID_BASE = 1_170_000_000_000
REDEEM_CODE_OFFSET = 16_000_000_000_000
READ_SCOPE, WRITE_SCOPE = "read_discounts", "write_discounts"
TYPENAMES = {BASIC: "DiscountCodeBasic", FREE_SHIPPING: "DiscountCodeFreeShipping"}

Obj = dict[str, Any]


def ensure_tables(store: DevStore) -> None:
    store.conn().executescript(SCHEMA)


# -- reading -------------------------------------------------------------------------------------

def discount_row(conn: sqlite3.Connection, shop: str, discount_id: int | None) -> sqlite3.Row | None:
    if discount_id is None:
        return None
    return conn.execute("SELECT * FROM code_discounts WHERE shop = ? AND id = ?", (shop, discount_id)).fetchone()


def discount_by_code(conn: sqlite3.Connection, shop: str, code: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM code_discounts WHERE shop = ? AND code = ? COLLATE NOCASE",
                        (shop, code.strip())).fetchone()


def discount_status(row: sqlite3.Row, now: dt.datetime) -> str:
    stamp = iso(now)
    if row["ends_at"] is not None and row["ends_at"] <= stamp:
        return "EXPIRED"
    return "SCHEDULED" if row["starts_at"] > stamp else "ACTIVE"


def discount_segment_ids(row: sqlite3.Row) -> list[int] | None:
    """The segments the discount is limited to, or None when it is for all customers."""
    return None if row["segment_ids"] is None else json.loads(row["segment_ids"])


def discount_redemptions(conn: sqlite3.Connection, discount_id: int, customer_id: int | None = None) -> int:
    if customer_id is None:
        return conn.execute("SELECT COUNT(*) FROM code_discount_redemptions WHERE discount_id = ?",
                            (discount_id,)).fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM code_discount_redemptions WHERE discount_id = ? AND customer_id = ?",
                        (discount_id, customer_id)).fetchone()[0]


def _money(cents: int, currency: str) -> Obj:
    return {"amount": money(cents), "currencyCode": currency}


def _context_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    ids = discount_segment_ids(row)
    if ids is None:
        return {"__typename": "DiscountBuyerSelectionAll", "all": "ALL"}
    rows = [segment_row(ctx.conn, ctx.shop, segment_id) for segment_id in ids]
    return {"__typename": "DiscountCustomerSegments", "segments": [segment_object(r) for r in rows if r is not None]}


def _value_object(value: Obj, currency: str) -> Obj:
    if "percentage" in value:
        return {"__typename": "DiscountPercentage", "percentage": value["percentage"]}
    return {"__typename": "DiscountAmount", "amount": _money(value["amount_cents"], currency),
            "appliesOnEachItem": value["applies_on_each_item"]}


def code_discount_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    uses = discount_redemptions(ctx.conn, row["id"])
    code = {"__typename": "DiscountRedeemCode", "id": gid("DiscountRedeemCode", row["id"] + REDEEM_CODE_OFFSET),
            "code": row["code"], "asyncUsageCount": uses}
    minimum = row["minimum_subtotal_cents"]
    found: Obj = {
        "__typename": TYPENAMES[row["kind"]], "title": row["title"], "status": discount_status(row, utcnow()),
        "startsAt": row["starts_at"], "endsAt": row["ends_at"], "createdAt": row["created_at"],
        "updatedAt": row["updated_at"], "appliesOncePerCustomer": bool(row["applies_once_per_customer"]),
        "usageLimit": row["usage_limit"], "asyncUsageCount": uses,
        "codes": lambda _info, **args: list_connection(ctx, [code], args),
        "codesCount": {"count": 1, "precision": "EXACT"},
        "combinesWith": json.loads(row["combines_with"]),
        "context": lambda _info: _context_object(ctx, row),
        "minimumRequirement": None if minimum is None else {
            "__typename": "DiscountMinimumSubtotal", "greaterThanOrEqualToSubtotal": _money(minimum, ctx.currency)},
    }
    if row["kind"] == BASIC:
        found["customerGets"] = {"value": _value_object(json.loads(row["value"]), ctx.currency),
                                 "items": {"__typename": "AllDiscountItems", "allItems": True}}
    else:
        found["destinationSelection"] = {"__typename": "DiscountCountryAll", "allCountries": True}
    return found


def discount_node_object(ctx: RequestContext, row: sqlite3.Row) -> Obj:
    return {"__typename": "DiscountCodeNode", "id": gid("DiscountCodeNode", row["id"]),
            "codeDiscount": code_discount_object(ctx, row)}


def load_discount_node(ctx: RequestContext, id_: int) -> Obj | None:
    row = discount_row(ctx.conn, ctx.shop, id_)
    return discount_node_object(ctx, row) if row else None


# -- resolvers -----------------------------------------------------------------------------------

def _payload(node: Obj | None, errors: list[Obj]) -> Obj:
    return {"codeDiscountNode": node, "userErrors": errors}


def _not_found() -> Obj:
    return {"field": ["id"], "code": "INVALID", "message": "Code discount does not exist", "extraInfo": None}


def _save(info: GraphQLResolveInfo, kind: str, arg: str, data: Obj, id_: str | None = None) -> Obj:
    ctx: RequestContext = info.context
    require(ctx, info, WRITE_SCOPE)
    stamp = iso(utcnow())
    with ctx.store.tx() as conn:
        existing = None
        if id_ is not None:
            existing = discount_row(conn, ctx.shop, parse_gid(id_, "DiscountCodeNode"))
            if existing is None or existing["kind"] != kind:
                return _payload(None, [_not_found()])
        reader = DiscountInput(ctx, conn, arg, kind, data, existing)
        columns = reader.read()
        if reader.errors:
            return _payload(None, reader.errors)
        if existing is None:
            discount_id = conn.execute("SELECT COALESCE(MAX(id), ?) + 1 FROM code_discounts",
                                       (DISCOUNT_ID_BASE,)).fetchone()[0]
            columns.update(id=discount_id, shop=ctx.shop, kind=kind, created_at=stamp, updated_at=stamp)
            conn.execute(f"INSERT INTO code_discounts ({', '.join(columns)}) "          # noqa: S608 - our names
                         f"VALUES ({', '.join('?' for _ in columns)})", list(columns.values()))
        else:
            discount_id = existing["id"]
            columns["updated_at"] = stamp
            conn.execute(f"UPDATE code_discounts SET {', '.join(f'{k} = ?' for k in columns)} "   # noqa: S608
                         "WHERE id = ?", [*columns.values(), discount_id])
        row = discount_row(conn, ctx.shop, discount_id)
    return _payload(discount_node_object(ctx, row), [])


def resolve_basic_create(_root: None, info: GraphQLResolveInfo, basicCodeDiscount: Obj) -> Obj:  # noqa: N803
    return _save(info, BASIC, "basicCodeDiscount", basicCodeDiscount)


def resolve_basic_update(_root: None, info: GraphQLResolveInfo, id: str,  # noqa: A002
                         basicCodeDiscount: Obj) -> Obj:  # noqa: N803
    return _save(info, BASIC, "basicCodeDiscount", basicCodeDiscount, id)


def resolve_free_shipping_create(_root: None, info: GraphQLResolveInfo,
                                 freeShippingCodeDiscount: Obj) -> Obj:  # noqa: N803
    return _save(info, FREE_SHIPPING, "freeShippingCodeDiscount", freeShippingCodeDiscount)


def resolve_free_shipping_update(_root: None, info: GraphQLResolveInfo, id: str,  # noqa: A002
                                 freeShippingCodeDiscount: Obj) -> Obj:  # noqa: N803
    return _save(info, FREE_SHIPPING, "freeShippingCodeDiscount", freeShippingCodeDiscount, id)


def resolve_deactivate(_root: None, info: GraphQLResolveInfo, id: str) -> Obj:  # noqa: A002
    ctx: RequestContext = info.context
    require(ctx, info, WRITE_SCOPE)
    now = utcnow()
    with ctx.store.tx() as conn:
        row = discount_row(conn, ctx.shop, parse_gid(id, "DiscountCodeNode"))
        if row is None:
            return _payload(None, [_not_found()])
        if discount_status(row, now) != "EXPIRED":      # already over: nothing to end
            conn.execute("UPDATE code_discounts SET ends_at = ?, updated_at = ? WHERE id = ?",
                         (iso(now), iso(now), row["id"]))
            row = discount_row(conn, ctx.shop, row["id"])
    return _payload(discount_node_object(ctx, row), [])


def resolve_delete(_root: None, info: GraphQLResolveInfo, id: str) -> Obj:  # noqa: A002
    ctx: RequestContext = info.context
    require(ctx, info, WRITE_SCOPE)
    discount_id = parse_gid(id, "DiscountCodeNode")
    with ctx.store.tx() as conn:
        deleted = discount_id is not None and conn.execute(
            "DELETE FROM code_discounts WHERE shop = ? AND id = ?", (ctx.shop, discount_id)).rowcount == 1
        if deleted:
            conn.execute("DELETE FROM code_discount_redemptions WHERE discount_id = ?", (discount_id,))
    if not deleted or discount_id is None:
        return {"deletedCodeDiscountId": None, "userErrors": [_not_found()]}
    return {"deletedCodeDiscountId": gid("DiscountCodeNode", discount_id), "userErrors": []}


def resolve_code_discount_node_by_code(_root: None, info: GraphQLResolveInfo, code: str) -> Obj | None:
    ctx: RequestContext = info.context
    require(ctx, info, READ_SCOPE)
    row = discount_by_code(ctx.conn, ctx.shop, code)
    return discount_node_object(ctx, row) if row else None


MUTATION_RESOLVERS = {
    "discountCodeBasicCreate": resolve_basic_create,
    "discountCodeBasicUpdate": resolve_basic_update,
    "discountCodeFreeShippingCreate": resolve_free_shipping_create,
    "discountCodeFreeShippingUpdate": resolve_free_shipping_update,
    "discountCodeDeactivate": resolve_deactivate,
    "discountCodeDelete": resolve_delete,
}
QUERY_RESOLVERS = {"codeDiscountNodeByCode": resolve_code_discount_node_by_code}
