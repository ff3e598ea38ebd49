"""Metafields on customers, orders and products: storage, reads, `metafieldsSet` and `metafieldDefinitionCreate`.

schema.py has no metafield tables, so this module adds `metafields` and `metafield_definitions` to the
store's file. `metafieldsSet` is atomic and limited to 25 inputs, an omitted namespace means the
app's reserved namespace, and `type` may be omitted when a definition supplies it
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsSet).
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from graphql import GraphQLResolveInfo

from .graphql_connections import table_connection
from .graphql_context import app_numeric_id
from .graphql_lists import Listing
from .state import DevStore, gid, iso, parse_gid, utcnow

if TYPE_CHECKING:
    from .graphql_context import RequestContext

SCHEMA = """
CREATE TABLE IF NOT EXISTS metafields (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    owner_type TEXT NOT NULL,                       -- CUSTOMER | ORDER | PRODUCT | APP_INSTALLATION
    owner_id INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (shop, owner_type, owner_id, namespace, key)
);
CREATE TABLE IF NOT EXISTS metafield_definitions (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    owner_type TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (shop, owner_type, namespace, key)
);
"""

# Ids in their own range, clear of state.ID_BASE's kinds.
METAFIELD_ID_BASE = 26_000_000_000
DEFINITION_ID_BASE = 1_000_000
MAX_METAFIELDS_PER_CALL = 25

OWNERS = {"Customer": ("CUSTOMER", "customers", "write_customers"),
          "Order": ("ORDER", "orders", "write_orders"),
          "Product": ("PRODUCT", "products", "write_products"),
          # App-data metafields: on the app's own installation, which needs no scope.
          "AppInstallation": ("APP_INSTALLATION", "installations", None)}

# The types devstore validates, with their category for MetafieldDefinitionType.
TYPES: dict[str, str] = {
    "single_line_text_field": "TEXT", "multi_line_text_field": "TEXT", "json": "JSON", "boolean": "TRUE_FALSE",
    "number_integer": "NUMBER", "number_decimal": "NUMBER", "date": "DATE_TIME", "date_time": "DATE_TIME",
    "url": "URL", "color": "TEXT", "money": "MEASUREMENT",
    "list.single_line_text_field": "TEXT", "list.number_integer": "NUMBER", "list.url": "URL",
}


def ensure_tables(store: DevStore) -> None:
    store.conn().executescript(SCHEMA)


def _namespace(ctx: RequestContext, namespace: str | None) -> str:
    """`$app` (or nothing) is the app's reserved namespace; `$app:foo` a sub-namespace of it."""
    if not namespace or namespace == "$app":
        return ctx.app_namespace()
    if namespace.startswith("$app:"):
        return f"{ctx.app_namespace()}--{namespace[len('$app:'):]}"
    return namespace


def metafield_row(ctx: RequestContext, owner_type: str, owner_id: int, namespace: str | None,
                  key: str) -> sqlite3.Row | None:
    return ctx.conn.execute(
        "SELECT * FROM metafields WHERE shop = ? AND owner_type = ? AND owner_id = ? AND namespace = ? AND key = ?",
        (ctx.shop, owner_type, owner_id, _namespace(ctx, namespace), key)).fetchone()


def _json_value(type_: str, value: str) -> Any:
    if type_ in ("json", "money") or type_.startswith("list."):
        return json.loads(value)
    if type_ == "boolean":
        return value == "true"
    if type_ == "number_integer":
        return int(value)
    if type_ == "number_decimal":
        return value   # Shopify keeps decimals as strings in jsonValue to avoid float rounding
    return value


def metafield_object(row: sqlite3.Row) -> dict[str, Any]:
    return {"__typename": "Metafield", "id": gid("Metafield", row["id"]), "namespace": row["namespace"],
            "key": row["key"], "type": row["type"], "value": row["value"],
            "jsonValue": _json_value(row["type"], row["value"]), "ownerType": row["owner_type"],
            "createdAt": row["created_at"], "updatedAt": row["updated_at"]}


def metafield_connection(ctx: RequestContext, info: GraphQLResolveInfo, owner_type: str, owner_id: int,
                         args: dict[str, Any]) -> dict[str, Any]:
    where, params = ["shop = ?", "owner_type = ?", "owner_id = ?"], [ctx.shop, owner_type, owner_id]
    if args.get("namespace"):
        where.append("namespace = ?")
        params.append(_namespace(ctx, args["namespace"]))
    if args.get("keys"):
        # Shopify's `keys` are "namespace.key" pairs.
        pairs = [k.rsplit(".", 1) for k in args["keys"] if "." in k]
        where.append("(" + " OR ".join("(namespace = ? AND key = ?)" for _ in pairs) + ")" if pairs else "0")
        params += [v for ns, key in pairs for v in (_namespace(ctx, ns), key)]
    listing = Listing("metafields", " AND ".join(where), params)
    return table_connection(ctx, info, listing, args, metafield_object)


def _valid_value(type_: str, value: str) -> bool:
    try:
        if type_ == "number_integer":
            int(value)
        elif type_ == "number_decimal":
            float(value)
        elif type_ == "boolean":
            return value in ("true", "false")
        elif type_ in ("json", "money"):
            json.loads(value)
        elif type_.startswith("list."):
            return isinstance(json.loads(value), list)
        elif type_ == "date":
            dt.date.fromisoformat(value)
        elif type_ == "date_time":
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif type_ == "single_line_text_field":
            return "\n" not in value
    except ValueError:
        return False
    return True


UserErrors = list[dict[str, Any]]


def metafields_set(ctx: RequestContext, inputs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]] | None, UserErrors]:
    """Validate every input, then write all or nothing. Returns (metafields, userErrors)."""
    if len(inputs) > MAX_METAFIELDS_PER_CALL:
        return None, [{"field": ["metafields"], "code": "LESS_THAN_OR_EQUAL_TO", "elementIndex": None,
                       "message": f"Exceeded the maximum metafields input limit of {MAX_METAFIELDS_PER_CALL}."}]
    errors: UserErrors = []
    planned: list[tuple[str, str, int, str, str, str, str]] = []
    conn = ctx.conn

    def fail(index: int, field: str, code: str, message: str) -> None:
        errors.append({"field": ["metafields", str(index), field], "code": code, "message": message,
                       "elementIndex": index})

    for index, item in enumerate(inputs):
        owner_kind = next((k for k in OWNERS if parse_gid(item["ownerId"], k) is not None), None)
        if owner_kind is None:
            fail(index, "ownerId", "INVALID_VALUE", "Owner type is not supported.")
            continue
        owner_type, table, scope = OWNERS[owner_kind]
        owner_id = parse_gid(item["ownerId"], owner_kind) or 0   # the kind matched, so the id parses
        if scope and not ctx.granted(scope):
            fail(index, "ownerId", "INVALID_VALUE", f"Access denied: `{scope}` access scope is required.")
            continue
        if owner_type == "APP_INSTALLATION":    # only the calling app's own installation
            if owner_id != app_numeric_id(f"{ctx.shop}/{ctx.api_key}"):
                fail(index, "ownerId", "INVALID_VALUE", "Owner does not exist.")
                continue
        elif conn.execute(f"SELECT 1 FROM {table} WHERE id = ? AND shop = ?", (owner_id, ctx.shop)).fetchone() is None:
            fail(index, "ownerId", "INVALID_VALUE", "Owner does not exist.")
            continue
        namespace, key = _namespace(ctx, item.get("namespace")), item["key"]
        if not 2 <= len(key) <= 64:
            fail(index, "key", "TOO_SHORT" if len(key) < 2 else "TOO_LONG",
                 "Key must be between 2 and 64 characters.")
            continue
        definition = conn.execute("SELECT type FROM metafield_definitions WHERE shop = ? AND owner_type = ? "
                                  "AND namespace = ? AND key = ?", (ctx.shop, owner_type, namespace, key)).fetchone()
        type_ = item.get("type") or (definition["type"] if definition else None)
        if not type_:
            fail(index, "type", "BLANK", "Type can't be blank.")
            continue
        if type_ not in TYPES:
            fail(index, "type", "INVALID_TYPE", f"Type '{type_}' is not a valid metafield type.")
            continue
        if definition and definition["type"] != type_:
            fail(index, "type", "INVALID_TYPE", f"Type must be '{definition['type']}' to match the definition.")
            continue
        if not _valid_value(type_, item["value"]):
            fail(index, "value", "INVALID_VALUE", f"Value is invalid for the type {type_}.")
            continue
        planned.append((owner_type, table, owner_id, namespace, key, type_, item["value"]))
    if errors:
        return None, errors
    stamp = iso(utcnow())
    written: list[dict[str, Any]] = []
    with ctx.store.tx() as tx:
        for owner_type, _table, owner_id, namespace, key, type_, value in planned:
            next_id = tx.execute("SELECT COALESCE(MAX(id), ?) + 1 FROM metafields", (METAFIELD_ID_BASE,)).fetchone()[0]
            tx.execute(
                "INSERT INTO metafields (id, shop, owner_type, owner_id, namespace, key, type, value, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (shop, owner_type, owner_id, namespace, "
                "key) DO UPDATE SET type = excluded.type, value = excluded.value, updated_at = excluded.updated_at",
                (next_id, ctx.shop, owner_type, owner_id, namespace, key, type_, value, stamp, stamp))
            row = tx.execute("SELECT * FROM metafields WHERE shop = ? AND owner_type = ? AND owner_id = ? "
                             "AND namespace = ? AND key = ?",
                             (ctx.shop, owner_type, owner_id, namespace, key)).fetchone()
            written.append(metafield_object(row))
    return written, []


def definition_create(ctx: RequestContext, definition: dict[str, Any]) -> tuple[dict[str, Any] | None, UserErrors]:
    """The minimal `metafieldDefinitionCreate`: name, namespace, key, type and owner type."""
    namespace, key, type_ = _namespace(ctx, definition.get("namespace")), definition["key"], definition["type"]
    owner_type, name = definition["ownerType"], definition["name"].strip()
    if not name:
        return None, [{"field": ["definition", "name"], "code": "PRESENT", "message": "Name can't be blank."}]
    if type_ not in TYPES:
        return None, [{"field": ["definition", "type"], "code": "INCLUSION",
                       "message": f"Type '{type_}' is not a valid metafield type."}]
    if not 2 <= len(key) <= 64:
        return None, [{"field": ["definition", "key"], "code": "TOO_SHORT" if len(key) < 2 else "TOO_LONG",
                       "message": "Key must be between 2 and 64 characters."}]
    with ctx.store.tx() as tx:
        if tx.execute("SELECT 1 FROM metafield_definitions WHERE shop = ? AND owner_type = ? AND namespace = ? "
                      "AND key = ?", (ctx.shop, owner_type, namespace, key)).fetchone():
            return None, [{"field": ["definition", "key"], "code": "TAKEN",
                           "message": f"Key is in use for {owner_type.lower()} metafields on the '{namespace}' "
                                      "namespace."}]
        next_id = tx.execute("SELECT COALESCE(MAX(id), ?) + 1 FROM metafield_definitions",
                             (DEFINITION_ID_BASE,)).fetchone()[0]
        tx.execute("INSERT INTO metafield_definitions (id, shop, owner_type, namespace, key, name, type, description, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (next_id, ctx.shop, owner_type, namespace, key, name, type_, definition.get("description"),
                    iso(utcnow())))
    return {"__typename": "MetafieldDefinition", "id": gid("MetafieldDefinition", next_id), "name": name,
            "namespace": namespace, "key": key, "description": definition.get("description"),
            "ownerType": owner_type, "type": {"name": type_, "category": TYPES[type_]}}, []
