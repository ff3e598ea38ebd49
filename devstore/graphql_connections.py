"""What the GraphQL objects read rows through: connections (edges, nodes and pageInfo over a page of
a table, or over a list kept as JSON), the search fields and sort keys each top-level connection
accepts in Shopify's search syntax, and lookups by id that stay inside the request's shop and, for
orders, inside what read_orders without read_all_orders may see. It sits below graphql_objects and
graphql_metafields so that both can build connections without importing each other.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from .graphql_context import RequestContext
from .graphql_lists import (
    FieldHandler, Listing, Page, bool_field, compile_search, free_text_over, id_field, number_field, paginate,
    tag_field, text_field, time_field,
)

Obj = dict[str, Any]
Args = dict[str, Any]


# -- connections ---------------------------------------------------------------------------------

def connection(nodes: list[Obj], cursors: list[str], has_next: bool, has_previous: bool) -> Obj:
    return {
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "nodes": nodes,
        "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_previous,
                     "startCursor": cursors[0] if cursors else None,
                     "endCursor": cursors[-1] if cursors else None},
    }


def page_for(ctx: RequestContext, info: GraphQLResolveInfo, listing: Listing, args: Args) -> Page:
    """Read one page; bulk queries ignore pagination arguments and page the root connection themselves."""
    if ctx.bulk_page is not None:
        if info.path.prev is None:
            page = paginate(ctx.conn, listing, first=ctx.bulk_page.size, after=ctx.bulk_page.after)
            ctx.bulk_page.has_next = page.has_next
            ctx.bulk_page.next_after = page.cursors[-1] if page.cursors else None
            return page
        return paginate(ctx.conn, listing)
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last", nodes=info.field_nodes,
                           path=info.path.as_list())
    return paginate(ctx.conn, listing, first=first, after=args.get("after"), last=last, before=args.get("before"))


def table_connection(ctx: RequestContext, info: GraphQLResolveInfo, listing: Listing, args: Args,
                     build: Callable[[sqlite3.Row], Obj]) -> Obj:
    page = page_for(ctx, info, listing, args)
    return connection([build(row) for row in page.rows], page.cursors, page.has_next, page.has_previous)


def list_connection(ctx: RequestContext, items: list[Obj], args: Args) -> Obj:
    """A connection over an in-memory list (lines kept as JSON, synthetic shipping lines)."""
    cursors = [f"i{index}" for index in range(len(items))]
    start, end = 0, len(items)
    if ctx.bulk_page is None:
        if args.get("after") in cursors:
            start = cursors.index(args["after"]) + 1
        if args.get("before") in cursors:
            end = cursors.index(args["before"])
        first, last = args.get("first"), args.get("last")
        if first is not None:
            end = min(end, start + first)
        if last is not None:
            start = max(start, end - last)
    return connection(items[start:end], cursors[start:end], end < len(items), start > 0)


def search(ctx: RequestContext, info: GraphQLResolveInfo, query: str | None, fields: dict[str, FieldHandler],
           free_text: FieldHandler | None) -> tuple[str, list[Any]]:
    (sql, params), warnings = compile_search(query, fields, free_text)
    if warnings:
        ctx.search_warnings.append({"path": info.path.as_list(), "query": query, "warnings": warnings})
    return sql, params


# -- search fields -------------------------------------------------------------------------------

_SPENT = ("SELECT COALESCE(SUM(o.total_cents - o.refunded_cents), 0) / 100.0 FROM orders o "
          "WHERE o.customer_id = customers.id AND o.cancelled_at IS NULL")


def _accepts_marketing(op: str, value: str) -> tuple[str, list[Any]] | None:
    if op != ":" or value.lower() not in ("true", "false"):
        return None
    return ("email_marketing_state = 'SUBSCRIBED'" if value.lower() == "true"
            else "email_marketing_state != 'SUBSCRIBED'"), []


CUSTOMER_SEARCH: dict[str, FieldHandler] = {
    "id": id_field("id", "Customer"),
    "email": text_field("email"),
    "first_name": text_field("first_name"),
    "last_name": text_field("last_name"),
    "phone": text_field("phone"),
    "state": text_field("state"),
    "tag": tag_field(),
    "tag_not": tag_field(negate=True),
    "created_at": time_field("created_at"),
    "updated_at": time_field("updated_at"),
    "accepts_marketing": _accepts_marketing,
    "orders_count": number_field("SELECT COUNT(*) FROM orders o WHERE o.customer_id = customers.id"),
    "number_of_orders": number_field("SELECT COUNT(*) FROM orders o WHERE o.customer_id = customers.id"),
    "total_spent": number_field(_SPENT),
    "amount_spent": number_field(_SPENT),
}
CUSTOMER_TEXT = free_text_over("first_name", "last_name", "email")


def _order_status(op: str, value: str) -> tuple[str, list[Any]] | None:
    clauses = {"open": "closed_at IS NULL AND cancelled_at IS NULL", "closed": "closed_at IS NOT NULL",
               "cancelled": "cancelled_at IS NOT NULL", "any": "1"}
    return (clauses[value.lower()], []) if op == ":" and value.lower() in clauses else None


def _discount_code(op: str, value: str) -> tuple[str, list[Any]] | None:
    if op != ":":
        return None
    return ("EXISTS (SELECT 1 FROM json_each(discount_codes) "
            "WHERE lower(json_extract(json_each.value, '$.code')) = lower(?))"), [value]


ORDER_SEARCH: dict[str, FieldHandler] = {
    "id": id_field("id", "Order"),
    "name": text_field("name"),
    "email": text_field("email"),
    "customer_id": id_field("customer_id", "Customer"),
    "created_at": time_field("created_at"),
    "updated_at": time_field("updated_at"),
    "processed_at": time_field("processed_at"),
    "financial_status": text_field("financial_status"),
    "fulfillment_status": text_field("fulfillment_status"),
    "source_name": text_field("source_name"),
    "status": _order_status,
    "discount_code": _discount_code,
    "tag": tag_field(),
    "tag_not": tag_field(negate=True),
    "test": bool_field("test"),
}
ORDER_TEXT = free_text_over("name", "email")

PRODUCT_SEARCH: dict[str, FieldHandler] = {
    "id": id_field("id", "Product"),
    "title": text_field("title"),
    "handle": text_field("handle"),
    "product_type": text_field("product_type"),
    "vendor": text_field("vendor"),
    "status": text_field("status"),
    "tag": tag_field(),
    "tag_not": tag_field(negate=True),
    "created_at": time_field("created_at"),
    "updated_at": time_field("updated_at"),
}
PRODUCT_TEXT = free_text_over("title")

CHECKOUT_SEARCH: dict[str, FieldHandler] = {
    "id": id_field("id", "AbandonedCheckout"),
    "email": text_field("email"),
    "customer_id": id_field("customer_id", "Customer"),
    "created_at": time_field("created_at"),
    "updated_at": time_field("updated_at"),
}
CHECKOUT_TEXT = free_text_over("email")

CUSTOMER_SORT = {"ID": "id", "CREATED_AT": "created_at", "UPDATED_AT": "updated_at"}
ORDER_SORT = {"ID": "id", "CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "PROCESSED_AT": "processed_at"}
PRODUCT_SORT = {"ID": "id", "CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "TITLE": "title"}
CHECKOUT_SORT = {"ID": "id", "CREATED_AT": "created_at"}

# -- lookups -------------------------------------------------------------------------------------


def fetch(ctx: RequestContext, table: str, id_: int | None) -> sqlite3.Row | None:
    if id_ is None:
        return None
    return ctx.conn.execute(f"SELECT * FROM {table} WHERE id = ? AND shop = ?", (id_, ctx.shop)).fetchone()


def visible_order(ctx: RequestContext, row: sqlite3.Row | None) -> sqlite3.Row | None:
    cutoff = ctx.order_cutoff()
    return row if row is not None and (cutoff is None or row["created_at"] >= cutoff) else None


def order_listing(ctx: RequestContext, info: GraphQLResolveInfo, args: Args, *,
                  customer_id: int | None = None) -> Listing:
    where: list[str] = ["shop = ?"]
    params: list[Any] = [ctx.shop]
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    cutoff = ctx.order_cutoff()
    if cutoff is not None:
        where.append("created_at >= ?")
        params.append(cutoff)
    sql, search_params = search(ctx, info, args.get("query"), ORDER_SEARCH, ORDER_TEXT)
    where.append(f"({sql})")
    # An explicit null sorts as the field's default does: QueryRoot.orders by PROCESSED_AT, a
    # customer's orders by ID (Shopify's defaults; both executors fill in a left-out sortKey).
    sort_key = args.get("sortKey") or ("ID" if customer_id is not None else "PROCESSED_AT")
    return Listing("orders", " AND ".join(where), params + search_params, ORDER_SORT[sort_key],
                   bool(args.get("reverse")))
