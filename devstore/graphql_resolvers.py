"""QueryRoot resolvers: shop, installation, node lookups and the top-level connections, with scope checks."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from .customer_segments import QUERY_RESOLVERS as SEGMENT_QUERIES
from .customer_segments import load_segment
from .discounts import QUERY_RESOLVERS as DISCOUNT_QUERIES
from .discounts import READ_SCOPE as DISCOUNTS_READ_SCOPE
from .discounts import load_discount_node
from .graphql_connections import (
    CHECKOUT_SEARCH, CHECKOUT_SORT, CHECKOUT_TEXT, CUSTOMER_SEARCH, CUSTOMER_SORT, CUSTOMER_TEXT, PRODUCT_SEARCH,
    PRODUCT_SORT, PRODUCT_TEXT, Obj, fetch, order_listing, search, table_connection, visible_order,
)
from .graphql_context import RequestContext, require
from .graphql_inventory import (
    INVENTORY_ITEM_SEARCH, INVENTORY_ITEM_SORT, PRODUCT_VARIANT_SEARCH, PRODUCT_VARIANT_SORT, PRODUCT_VARIANT_TEXT,
    load_inventory_item,
)
from .graphql_lists import Listing
from .graphql_metafields import metafield_object
from .graphql_objects import (
    bulk_operation_object, checkout_object, customer_object, installation_object, inventory_item_object,
    order_object, product_object, shop_object, variant_object, webhook_object,
)
from .inventory import READ_SCOPES as INVENTORY_READ_SCOPES
from .state import parse_gid
from .topics import Scope
from .web_pixels import READ_SCOPE as PIXELS_READ_SCOPE
from .web_pixels import app_pixel_row, load_web_pixel, no_pixel, web_pixel_object

Resolver = Callable[..., Any]


def context(info: GraphQLResolveInfo) -> RequestContext:
    return info.context


def invalid_id(info: GraphQLResolveInfo, value: str) -> GraphQLError:
    return GraphQLError(f"Invalid global id '{value}'", nodes=info.field_nodes, path=info.path.as_list(),
                        extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"})


def _id(info: GraphQLResolveInfo, value: str, kind: str) -> int | None:
    """A GID's numeric id; malformed ids are an error, ids of another kind find nothing."""
    if parse_gid(value) is None:
        raise invalid_id(info, value)
    return parse_gid(value, kind)


# -- single objects ------------------------------------------------------------------------------

def _load_customer(ctx: RequestContext, id_: int) -> Obj | None:
    row = fetch(ctx, "customers", id_)
    return customer_object(ctx, row) if row else None


def _load_order(ctx: RequestContext, id_: int) -> Obj | None:
    row = visible_order(ctx, fetch(ctx, "orders", id_))
    return order_object(ctx, row) if row else None


def _load_product(ctx: RequestContext, id_: int) -> Obj | None:
    row = fetch(ctx, "products", id_)
    return product_object(ctx, row) if row else None


def _load_variant(ctx: RequestContext, id_: int) -> Obj | None:
    row = fetch(ctx, "variants", id_)
    return variant_object(ctx, row) if row else None


def _load_checkout(ctx: RequestContext, id_: int) -> Obj | None:
    row = fetch(ctx, "checkouts", id_)
    return checkout_object(ctx, row) if row and row["completed_at"] is None else None


def _load_webhook(ctx: RequestContext, id_: int) -> Obj | None:
    row = ctx.conn.execute("SELECT * FROM webhook_subscriptions WHERE id = ? AND shop = ? AND api_key = ?",
                           (id_, ctx.shop, ctx.api_key)).fetchone()
    return webhook_object(row) if row else None


def _load_bulk(ctx: RequestContext, id_: int) -> Obj | None:
    row = ctx.conn.execute("SELECT * FROM bulk_operations WHERE id = ? AND shop = ? AND api_key = ?",
                           (id_, ctx.shop, ctx.api_key)).fetchone()
    return bulk_operation_object(ctx, row) if row else None


def _load_metafield(ctx: RequestContext, id_: int) -> Obj | None:
    row = ctx.conn.execute("SELECT * FROM metafields WHERE id = ? AND shop = ?", (id_, ctx.shop)).fetchone()
    return metafield_object(row) if row else None


# kind -> (scope needed to read it, or alternatives any one of which will do; loader)
NODE_KINDS: dict[str, tuple[Scope | None, Callable[[RequestContext, int], Obj | None]]] = {
    "Customer": ("read_customers", _load_customer),
    "Order": ("read_orders", _load_order),
    "Product": ("read_products", _load_product),
    "ProductVariant": ("read_products", _load_variant),
    "InventoryItem": (INVENTORY_READ_SCOPES, load_inventory_item),
    "AbandonedCheckout": ("read_orders", _load_checkout),
    "WebhookSubscription": (None, _load_webhook),
    "BulkOperation": (None, _load_bulk),
    "Metafield": (None, _load_metafield),
    "WebPixel": (PIXELS_READ_SCOPE, load_web_pixel),
    "Segment": ("read_customers", load_segment),
    "DiscountCodeNode": (DISCOUNTS_READ_SCOPE, load_discount_node),
}


def _node(ctx: RequestContext, info: GraphQLResolveInfo, value: str) -> Obj | None:
    if parse_gid(value) is None:
        raise invalid_id(info, value)
    kind = value[len("gid://shopify/"):].split("/")[0]
    if kind == "Shop":
        return shop_object(ctx) if parse_gid(value, "Shop") == ctx.shop_row["id"] else None
    if kind not in NODE_KINDS:
        return None
    scope, load = NODE_KINDS[kind]
    if scope is not None:
        require(ctx, info, scope)
    id_ = parse_gid(value, kind)
    return load(ctx, id_) if id_ is not None else None


def resolve_node(_root: None, info: GraphQLResolveInfo, id: str) -> Obj | None:  # noqa: A002 - GraphQL name
    return _node(context(info), info, id)


def resolve_nodes(_root: None, info: GraphQLResolveInfo, ids: list[str]) -> list[Obj | None]:
    ctx = context(info)
    return [_node(ctx, info, value) for value in ids]


def _single(kind: str) -> Resolver:
    scope, load = NODE_KINDS[kind]

    def resolve(_root: None, info: GraphQLResolveInfo, id: str) -> Obj | None:  # noqa: A002
        ctx = context(info)
        if scope is not None:
            require(ctx, info, scope)
        id_ = _id(info, id, kind)
        return load(ctx, id_) if id_ is not None else None
    return resolve


# -- connections ---------------------------------------------------------------------------------

def _searched_connection(info: GraphQLResolveInfo, args: Any, *, scope: Scope, table: str, where: str,
                         fields: Any, text: Any, sort: Any, build: Any) -> Obj:
    """A shop's table read as a connection: scope check, the `query` search, sort, one page."""
    ctx = context(info)
    require(ctx, info, scope)
    sql, params = search(ctx, info, args.get("query"), fields, text)
    listing = Listing(table, f"shop = ? AND {where}({sql})", [ctx.shop, *params],
                      sort[args.get("sortKey") or "ID"], bool(args.get("reverse")))
    return table_connection(ctx, info, listing, args, lambda row: build(ctx, row))


def resolve_customers(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    return _searched_connection(info, args, scope="read_customers", table="customers", where="",
                                fields=CUSTOMER_SEARCH, text=CUSTOMER_TEXT, sort=CUSTOMER_SORT, build=customer_object)


def resolve_orders(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    ctx = context(info)
    require(ctx, info, "read_orders")
    return table_connection(ctx, info, order_listing(ctx, info, args), args, lambda row: order_object(ctx, row))


def resolve_products(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    return _searched_connection(info, args, scope="read_products", table="products", where="",
                                fields=PRODUCT_SEARCH, text=PRODUCT_TEXT, sort=PRODUCT_SORT, build=product_object)


def resolve_product_variants(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    return _searched_connection(info, args, scope="read_products", table="variants", where="",
                                fields=PRODUCT_VARIANT_SEARCH, text=PRODUCT_VARIANT_TEXT, sort=PRODUCT_VARIANT_SORT,
                                build=variant_object)


def resolve_inventory_items(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    return _searched_connection(info, args, scope=INVENTORY_READ_SCOPES, table="inventory_items", where="",
                                fields=INVENTORY_ITEM_SEARCH, text=None, sort=INVENTORY_ITEM_SORT,
                                build=inventory_item_object)


def resolve_abandoned_checkouts(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    # abandoned checkouts are read with read_orders, as on Shopify
    return _searched_connection(info, args, scope="read_orders", table="checkouts", where="completed_at IS NULL AND ",
                                fields=CHECKOUT_SEARCH, text=CHECKOUT_TEXT, sort=CHECKOUT_SORT, build=checkout_object)


def resolve_webhook_subscriptions(_root: None, info: GraphQLResolveInfo, **args: Any) -> Obj:
    ctx = context(info)
    where, params = ["shop = ?", "api_key = ?"], [ctx.shop, ctx.api_key]
    if args.get("topics"):
        where.append(f"topic IN ({', '.join('?' * len(args['topics']))})")
        params += args["topics"]
    if args.get("format"):
        where.append("format = ?")
        params.append(args["format"])
    if args.get("uri"):
        where.append("uri = ?")
        params.append(args["uri"])
    listing = Listing("webhook_subscriptions", " AND ".join(where), params, "id", bool(args.get("reverse")))
    return table_connection(ctx, info, listing, args, webhook_object)


def resolve_current_bulk_operation(_root: None, info: GraphQLResolveInfo, type: str = "QUERY") -> Obj | None:  # noqa: A002
    ctx = context(info)
    row = ctx.conn.execute("SELECT * FROM bulk_operations WHERE shop = ? AND api_key = ? AND type = ? "
                           "ORDER BY id DESC LIMIT 1", (ctx.shop, ctx.api_key, type)).fetchone()
    return bulk_operation_object(ctx, row) if row else None


def resolve_web_pixel(_root: None, info: GraphQLResolveInfo, id: str | None = None) -> Obj:  # noqa: A002
    """The app's one pixel on the shop; an `id` must be that pixel's."""
    ctx = context(info)
    require(ctx, info, PIXELS_READ_SCOPE)
    wanted = _id(info, id, "WebPixel") if id is not None else None
    row = app_pixel_row(ctx.conn, ctx.shop, ctx.api_key)
    if row is None or (id is not None and row["id"] != wanted):
        raise no_pixel(info)
    return web_pixel_object(row)


QUERY_RESOLVERS: dict[str, Resolver] = {
    "shop": lambda _root, info: shop_object(context(info)),
    "currentAppInstallation": lambda _root, info: installation_object(context(info)),
    "node": resolve_node,
    "nodes": resolve_nodes,
    "customer": _single("Customer"),
    "customers": resolve_customers,
    "order": _single("Order"),
    "orders": resolve_orders,
    "product": _single("Product"),
    "products": resolve_products,
    "productVariants": resolve_product_variants,
    "inventoryItem": _single("InventoryItem"),
    "inventoryItems": resolve_inventory_items,
    "abandonedCheckouts": resolve_abandoned_checkouts,
    "webhookSubscription": _single("WebhookSubscription"),
    "webhookSubscriptions": resolve_webhook_subscriptions,
    "bulkOperation": _single("BulkOperation"),
    "currentBulkOperation": resolve_current_bulk_operation,
    "webPixel": resolve_web_pixel,
    **SEGMENT_QUERIES,
    **DISCOUNT_QUERIES,
}
