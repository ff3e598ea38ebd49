"""The control API's catalog edits: the merchant reads or types a variant's cost per item in the admin
(`/_control/shops/<shop>/variants/<id>/cost`), which Shopify keeps on the variant's inventory item and
announces with inventory_items/update. Registered by control.py beside its own routes.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from . import inventory
from .mutation_base import NotFound as NoSuchRow
from .state import gid, money

if TYPE_CHECKING:
    from .server import DevstoreApp


def rules(shop: str) -> list[Rule]:
    return [Rule(f"/_control/shops/{shop}/variants/<int:variant_id>/cost", endpoint="variant_cost",
                 methods=["GET", "POST"])]


def variant_cost(app: DevstoreApp, request: Request, shop: str, variant_id: int) -> Response:
    """GET: the variant's unit cost as Shopify holds it. POST {"cost": "12.34" | null}: the merchant sets
    (or clears) it, which sends inventory_items/update when it changed."""
    if app.store.shop(shop) is None:
        raise NotFound(f"No shop {shop}")
    changed = False
    if request.method == "POST":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "cost" not in body:
            raise BadRequest('Expected {"cost": "12.34"} or {"cost": null}')
        try:
            cents = inventory.parse_cost(body["cost"])
        except ValueError:
            raise BadRequest("cost must be a decimal amount of at least 0, or null") from None
        try:
            _, changed = inventory.variant_cost_set(app.store, shop, variant_id, cents)
        except NoSuchRow:
            raise NotFound(f"No variant {variant_id} in {shop}") from None
    item = inventory.item_of_variant(app.store.conn(), shop, variant_id)
    if item is None:
        raise NotFound(f"No variant {variant_id} in {shop}")
    cost = item["cost_cents"]
    return Response(json.dumps({
        "variant_id": variant_id, "inventory_item_id": gid("InventoryItem", item["id"]),
        "cost": money(cost) if cost is not None else None, "updated_at": item["updated_at"], "changed": changed,
    }), mimetype="application/json")


HANDLERS = {"variant_cost": variant_cost}
