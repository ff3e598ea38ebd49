"""The shop's theme as a merchant sets it up in Shopify's theme editor: which of an app's blocks sit
on which page template with what settings, and whether its app embed is on (off after install, as on
Shopify). Kept per shop as one JSON document, like a theme's templates and settings_data.json:

    {"embed": {"enabled": true, "settings": {"proxy_path": "/apps/shopseg"}},
     "templates": {"index": [{"block": "segment-banner", "settings": {...}}], "product": [...], ...}}

`page_parts` renders them for a storefront page with devstore.theme (the real Liquid engine).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .graphql_context import app_numeric_id
from .state import DevStore
from .theme import EMBED, block_assets, embed_html, render_block

TEMPLATES = ("index", "product", "collection", "search", "cart")
COLLECTION_BLOCKS = {"segment-products", "segment-experience"}


class ThemeInvalid(ValueError):
    pass


def theme_get(store: DevStore, shop: str) -> dict:
    row = store.conn().execute("SELECT config FROM themes WHERE shop = ?", (shop,)).fetchone()
    return json.loads(row["config"]) if row else {"embed": {"enabled": False, "settings": {}}, "templates": {}}


def theme_set(store: DevStore, shop: str, config: dict) -> dict:
    """Save `config` after rendering every block in it once (a block or setting the extension does
    not have is refused, as the theme editor would not offer it)."""
    embed = config.get("embed") or {}
    templates = config.get("templates") or {}
    if not isinstance(embed, dict) or not isinstance(templates, dict) or set(templates) - set(TEMPLATES):
        raise ThemeInvalid(f"templates are some of {', '.join(TEMPLATES)}; embed is an object")
    clean = {"embed": {"enabled": bool(embed.get("enabled")), "settings": dict(embed.get("settings") or {})},
             "templates": {t: [{"block": b["block"], "settings": dict(b.get("settings") or {})} for b in blocks]
                           for t, blocks in templates.items()}}
    try:
        embed_html(None, clean["embed"]["settings"])
        for blocks in clean["templates"].values():
            for placed in blocks:
                if placed["block"] == EMBED:
                    raise ThemeInvalid("the app embed is not a section block")
                render_block(placed["block"], settings=placed["settings"], customer=None, collections={})
    except (OSError, KeyError, ValueError) as error:
        raise ThemeInvalid(str(error)) from None
    with store.tx() as conn:
        conn.execute("INSERT INTO themes (shop, config) VALUES (?, ?) ON CONFLICT(shop) DO UPDATE "
                             "SET config = excluded.config", (shop, json.dumps(clean)))
    return clean


def app_object(store: DevStore, shop: str) -> dict[str, Any]:
    """Liquid's `app` for the theme's app blocks: the app-data metafields of the shop's installation of
    the app (devstore's shops have one app installed), `{namespace: {key: {"value", "type"}}}`."""
    conn = store.conn()
    installed = conn.execute("SELECT api_key FROM installations WHERE shop = ? AND uninstalled_at IS NULL "
                             "ORDER BY installed_at DESC LIMIT 1", (shop,)).fetchone()
    metafields: dict[str, dict[str, Any]] = {}
    if installed is not None:
        for row in conn.execute("SELECT namespace, key, type, value FROM metafields WHERE shop = ? AND "
                                "owner_type = 'APP_INSTALLATION' AND owner_id = ?",
                                (shop, app_numeric_id(f"{shop}/{installed['api_key']}"))):
            value = json.loads(row["value"]) if row["type"] == "json" else row["value"]
            metafields.setdefault(row["namespace"], {})[row["key"]] = {"value": value, "type": row["type"]}
    return {"metafields": metafields}


def page_parts(store: DevStore, shop: str, template: str, *, customer: dict | None,
               collections: Callable[[], dict[str, dict[str, Any]]],
               cart: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """(head tags, the template's blocks, the app embed) as HTML for one page; `collections()` is
    asked only when a placed block has a collection setting."""
    theme = theme_get(store, shop)
    placed = theme["templates"].get(template, [])
    known = collections() if any(b["block"] in COLLECTION_BLOCKS for b in placed) else {}
    app = app_object(store, shop) if placed else {"metafields": {}}
    blocks = "".join('<section class="shopify-app-block">'
                     f'{render_block(b["block"], settings=b["settings"], customer=customer, collections=known, app=app, cart=cart)}'
                     '</section>' for b in placed)
    embed = embed_html(customer, theme["embed"]["settings"]) if theme["embed"]["enabled"] else ""
    return block_assets([b["block"] for b in placed]), blocks, embed
