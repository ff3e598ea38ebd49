"""Shopify's REST-shaped inventory item payloads, and the variants' inventory items in product
payloads, parsed into cost records (records.py): rest.py's rules and helpers, in a module of their own.

inventory_items/create|update carry the REST InventoryItem: `id`, `cost` (a decimal string in the
shop currency, or null when no cost was entered) and `updated_at`, but not the variant; a
products/* body names each variant's `inventory_item_id`. A cost that is there but unusable (not
a number, negative, beyond the column) is a PayloadError, never read as "no cost".
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from segments.mirror.records import CostRecord, VariantLink
from segments.mirror.rest import PayloadError, _decimal, _dicts, _int, _required_id, timestamp

CENT = Decimal("0.01")
MAX_COST = Decimal("1e12")      # VariantCost.unit_cost holds 14 digits, 2 of them after the point


def _cost(payload: dict) -> Decimal | None:
    raw = payload.get("cost")
    if raw is None:
        return None
    found = _decimal(raw)
    if found is None or not 0 <= found < MAX_COST:
        raise PayloadError("inventory item payload has no usable 'cost'")
    return found.quantize(CENT, rounding=ROUND_HALF_UP)


def inventory_item_record(payload: dict) -> CostRecord:
    """inventory_items/create|update."""
    return CostRecord(inventory_item_id=_required_id(payload, "id", "inventory item"),
                      updated_at=timestamp(payload.get("updated_at")), unit_cost=_cost(payload))


def inventory_item_deleted_id(payload: dict) -> int:
    return _required_id(payload, "id", "inventory item")


def variant_links(payload: dict) -> list[VariantLink]:
    """products/create|update: each variant with its inventory item (one naming none is left out)."""
    pairs = ((_int(v.get("id")), _int(v.get("inventory_item_id"))) for v in _dicts(payload.get("variants")))
    return [VariantLink(variant_id=variant, inventory_item_id=item) for variant, item in pairs
            if variant is not None and item is not None]
