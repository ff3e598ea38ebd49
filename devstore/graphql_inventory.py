"""The Admin API's inventory items and variant listing: the search fields of `inventoryItems` and
`productVariants` (in Shopify's search syntax), loading an item by id, and `inventoryItemUpdate`, which
edits an item's unit cost or tracking and sends inventory_items/update. The root fields are bound in
graphql_resolvers and graphql_mutations; the objects are built in graphql_objects.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from .graphql_connections import Obj, fetch
from .graphql_context import RequestContext, access_denied
from .graphql_lists import FieldHandler, free_text_over, id_field, text_field, time_field
from .graphql_objects import inventory_item_object
from .inventory import WRITE_SCOPE, inventory_item_update, parse_cost
from .mutation_base import NotFound
from .state import parse_gid

# Search fields Shopify lists for QueryRoot.inventoryItems(query:); an item's SKU is its variant's.
INVENTORY_ITEM_SEARCH: dict[str, FieldHandler] = {
    "id": id_field("id", "InventoryItem"),
    "sku": text_field("(SELECT v.sku FROM variants v WHERE v.id = inventory_items.variant_id)"),
    "created_at": time_field("created_at"),
    "updated_at": time_field("updated_at"),
}
INVENTORY_ITEM_SORT = {"ID": "id"}     # the connection takes no sortKey: Shopify lists items by id

_PRODUCT_OF_VARIANT = "(SELECT p.{} FROM products p WHERE p.id = variants.product_id)"
# The subset of QueryRoot.productVariants(query:)'s fields that devstore's rows can answer.
PRODUCT_VARIANT_SEARCH: dict[str, FieldHandler] = {
    "id": id_field("id", "ProductVariant"),
    "product_id": id_field("product_id", "Product"),
    "sku": text_field("sku"),
    "title": text_field("title"),
    "product_type": text_field(_PRODUCT_OF_VARIANT.format("product_type")),
    "vendor": text_field(_PRODUCT_OF_VARIANT.format("vendor")),
}
PRODUCT_VARIANT_TEXT = free_text_over("title", "sku")
PRODUCT_VARIANT_SORT = {"ID": "id", "SKU": "sku", "TITLE": "title"}

# Shopify's wording for an edit the token may not make ("Requires `write_inventory` access scope.
# Also: The user must have a permission to update an inventory item.").
WRITE_ALSO = "The user must have a permission to update an inventory item."
NO_SUCH_ITEM = "Inventory item does not exist"
BAD_COST = "Cost must be a decimal amount of at least 0"


def load_inventory_item(ctx: RequestContext, id_: int) -> Obj | None:
    row = fetch(ctx, "inventory_items", id_)
    return inventory_item_object(ctx, row) if row else None


def resolve_inventory_item_update(_root: None, info: GraphQLResolveInfo, id: str,  # noqa: A002 - GraphQL name
                                  input: dict[str, Any]) -> Obj:  # noqa: A002 - GraphQL name
    ctx: RequestContext = info.context
    if not ctx.granted(WRITE_SCOPE):
        raise access_denied(info, WRITE_SCOPE, also=WRITE_ALSO)
    if parse_gid(id) is None:
        raise GraphQLError(f"Invalid global id '{id}'", nodes=info.field_nodes, path=info.path.as_list(),
                           extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"})

    def refuse(field: list[str], message: str) -> Obj:
        return {"inventoryItem": None, "userErrors": [{"field": field, "message": message}]}

    item_id = parse_gid(id, "InventoryItem")
    if item_id is None:
        return refuse(["id"], NO_SUCH_ITEM)
    changes: dict[str, Any] = {}
    if "cost" in input:     # left out: unchanged; null: the cost is cleared
        try:
            changes["cost_cents"] = parse_cost(input["cost"])
        except ValueError:
            return refuse(["input", "cost"], BAD_COST)
    if input.get("tracked") is not None:
        changes["tracked"] = bool(input["tracked"])
    try:
        inventory_item_update(ctx.store, ctx.shop, item_id, **changes)
    except NotFound:
        return refuse(["id"], NO_SUCH_ITEM)
    return {"inventoryItem": load_inventory_item(ctx, item_id), "userErrors": []}


MUTATION_RESOLVERS: dict[str, Callable[..., Any]] = {
    "inventoryItemUpdate": resolve_inventory_item_update,
}
