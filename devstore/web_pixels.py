"""Web pixels: `webPixelCreate`, `webPixelUpdate`, `webPixelDelete` and the `webPixel` query.

An app activates its web pixel extension on a shop by creating the shop's web pixel record, which
holds the settings its extension's `shopify.extension.toml` defines; an app has at most one per shop
(https://shopify.dev/docs/apps/build/marketing-analytics/build-web-pixels). Rows live in the
`web_pixels` table, keyed by shop and app.

What Shopify documents, devstore does: writing needs `write_pixels` and `read_customer_events`, reading
needs `read_pixels` (or `write_pixels`); `settings` is JSON, sent either as an object or as a string
holding one (the tutorial's example), and answered as a compact JSON string (the tutorial's response);
the query without a pixel is the top-level error "No web pixel was found for this app.". devstore has
no extension to validate settings against, so it holds them to what every definition allows: an object
of strings (`single_line_text_field` is the only type a web pixel setting may have). The userErrors'
messages and fields are devstore's wording; their codes are Shopify's.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from .graphql_context import RequestContext, access_denied
from .state import DevStore, gid, iso, parse_gid, utcnow

READ_SCOPE = "read_pixels"
WRITE_SCOPE = "write_pixels"
EVENTS_SCOPE = "read_customer_events"
# What Shopify's ACCESS_DENIED adds after `write_pixels` for the mutations.
WRITE_ALSO = "The app requires read_customer_events access scope and user access permission."
SETTINGS_FIELD = ["webPixel", "settings"]

Obj = dict[str, Any]


def context(info: GraphQLResolveInfo) -> RequestContext:
    return info.context


def _require_write(ctx: RequestContext, info: GraphQLResolveInfo) -> None:
    if not (ctx.granted(WRITE_SCOPE) and ctx.granted(EVENTS_SCOPE)):
        raise access_denied(info, WRITE_SCOPE, also=WRITE_ALSO)


def _error(code: str, field: list[str] | None, message: str) -> Obj:
    return {"code": code, "field": field, "message": message}


def encode_settings(value: Any) -> tuple[str | None, Obj | None]:
    """(the settings as stored, None) or (None, the userError). A string is parsed as JSON first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, _error("INVALID_CONFIGURATION_JSON", SETTINGS_FIELD, "Settings must be valid JSON.")
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None, _error("INVALID_SETTINGS", SETTINGS_FIELD,
                            "Settings must be a JSON object whose values are strings, as the extension's "
                            "settings definition declares them.")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False), None


def web_pixel_object(row: sqlite3.Row) -> Obj:
    return {"__typename": "WebPixel", "id": gid("WebPixel", row["id"]), "settings": row["settings"]}


def app_pixel_row(conn: sqlite3.Connection, shop: str, api_key: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM web_pixels WHERE shop = ? AND api_key = ?", (shop, api_key)).fetchone()


def web_pixel_settings(store: DevStore, shop: str, api_key: str) -> dict[str, str] | None:
    """The settings the app's pixel on the shop holds, or None without one (for tests and the demo)."""
    row = app_pixel_row(store.conn(), shop, api_key)
    return json.loads(row["settings"]) if row else None


def shop_pixels(store: DevStore, shop: str) -> list[Obj]:
    """Every app's pixel on the shop, settings decoded (the control API's view)."""
    rows = store.conn().execute("SELECT * FROM web_pixels WHERE shop = ? ORDER BY id", (shop,)).fetchall()
    return [{"id": gid("WebPixel", row["id"]), "api_key": row["api_key"], "settings": json.loads(row["settings"]),
             "created_at": row["created_at"], "updated_at": row["updated_at"]} for row in rows]


def load_web_pixel(ctx: RequestContext, id_: int) -> Obj | None:
    """A pixel by id, only if it is the calling app's on this shop (for `node`)."""
    row = app_pixel_row(ctx.conn, ctx.shop, ctx.api_key)
    return web_pixel_object(row) if row is not None and row["id"] == id_ else None


def no_pixel(info: GraphQLResolveInfo) -> GraphQLError:
    # Shopify answers a missing pixel with this error rather than null; apps match on the message.
    return GraphQLError("No web pixel was found for this app.", nodes=info.field_nodes, path=info.path.as_list())


# -- mutations -----------------------------------------------------------------------------------

def resolve_web_pixel_create(_root: None, info: GraphQLResolveInfo, webPixel: Obj) -> Obj:  # noqa: N803
    ctx = context(info)
    _require_write(ctx, info)
    settings, error = encode_settings(webPixel["settings"])
    if error is not None:
        return {"webPixel": None, "userErrors": [error]}
    pixel_id = ctx.store.next_id("WebPixel")   # reserved before the write lock, as next_id requires
    stamp = iso(utcnow())
    with ctx.store.tx() as conn:
        if app_pixel_row(conn, ctx.shop, ctx.api_key) is not None:
            return {"webPixel": None, "userErrors": [_error("TAKEN", None, "Web pixel is taken.")]}
        conn.execute("INSERT INTO web_pixels (id, shop, api_key, settings, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (pixel_id, ctx.shop, ctx.api_key, settings, stamp, stamp))
        row = app_pixel_row(conn, ctx.shop, ctx.api_key)
    return {"webPixel": web_pixel_object(row), "userErrors": []}


def _not_found() -> Obj:
    return _error("NOT_FOUND", ["id"], "Web pixel not found.")


def resolve_web_pixel_update(_root: None, info: GraphQLResolveInfo, id: str, webPixel: Obj) -> Obj:  # noqa: A002, N803
    ctx = context(info)
    _require_write(ctx, info)
    pixel_id = parse_gid(id, "WebPixel")
    settings, error = encode_settings(webPixel["settings"])
    with ctx.store.tx() as conn:
        row = app_pixel_row(conn, ctx.shop, ctx.api_key)
        if row is None or row["id"] != pixel_id:
            return {"webPixel": None, "userErrors": [_not_found()]}
        if error is not None:
            return {"webPixel": None, "userErrors": [error]}
        conn.execute("UPDATE web_pixels SET settings = ?, updated_at = ? WHERE id = ?",
                     (settings, iso(utcnow()), pixel_id))
        row = app_pixel_row(conn, ctx.shop, ctx.api_key)
    return {"webPixel": web_pixel_object(row), "userErrors": []}


def resolve_web_pixel_delete(_root: None, info: GraphQLResolveInfo, id: str) -> Obj:  # noqa: A002
    ctx = context(info)
    _require_write(ctx, info)
    pixel_id = parse_gid(id, "WebPixel")
    with ctx.store.tx() as conn:
        deleted = pixel_id is not None and conn.execute(
            "DELETE FROM web_pixels WHERE id = ? AND shop = ? AND api_key = ?",
            (pixel_id, ctx.shop, ctx.api_key)).rowcount == 1
    if not deleted or pixel_id is None:
        return {"deletedWebPixelId": None, "userErrors": [_not_found()]}
    return {"deletedWebPixelId": gid("WebPixel", pixel_id), "userErrors": []}


MUTATION_RESOLVERS = {
    "webPixelCreate": resolve_web_pixel_create,
    "webPixelUpdate": resolve_web_pixel_update,
    "webPixelDelete": resolve_web_pixel_delete,
}
