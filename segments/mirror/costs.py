"""Mirror writes of variants' unit costs (VariantCost, one row per inventory item): costs from the
inventory_items/* webhooks, the backfill's variant export and reconciliation; which variant an item
belongs to from the products/* webhooks and those same reads. Set-at-a-time, like orders.py.

A cost changes only for a strictly newer `updated_at`: a webhook as old as the stored cost, or
older, is a late or repeated delivery and changes nothing. A GraphQL read (backfill,
reconciliation) is Shopify's current state, so it also wins a tie whose cost differs: two edits in
the same second (Shopify's resolution) are settled by the next read, not by which webhook came last.
Whatever changes a variant's cost recomputes the orders holding it and marks their buyers dirty
(segments.mirror.order_costs), in the same transaction.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction

from segments.mirror.models import VariantCost
from segments.mirror.order_costs import variant_costs_changed
from segments.mirror.records import CostRecord, VariantLink
from segments.mirror.sql import upsert
from segments.mirror.writer import dedupe
from segments.shops.models import Shop

# A row without a time (a link that came before its item's cost) takes any cost; NULL compares as false.
NEWER_COST = "(t.updated_at IS NULL OR excluded.updated_at > t.updated_at)"
CURRENT_COST = (f"({NEWER_COST} OR (excluded.updated_at = t.updated_at "
                "AND excluded.unit_cost IS DISTINCT FROM t.unit_cost))")
# An inventory item belongs to one variant for its whole life: a link is only ever filled in.
NEW_LINK = "(excluded.variant_id IS NOT NULL AND excluded.variant_id IS DISTINCT FROM t.variant_id)"


def costs_upsert(*, shop: Shop, records: Sequence[CostRecord], current: bool = False) -> int:
    """Store the items' costs (and their variants, where the source names them); returns how many
    rows changed. `current`: the records were read from Shopify just now (GraphQL), so a cost with
    the same `updated_at` as the stored one but another amount replaces it."""
    rows = [{"shop_id": shop.pk, "inventory_item_id": r.inventory_item_id, "variant_id": r.variant_id,
             "unit_cost": r.unit_cost, "updated_at": r.updated_at}
            for r in sorted(dedupe(records, "inventory_item_id"), key=lambda r: r.inventory_item_id)]
    newer = CURRENT_COST if current else NEWER_COST
    with transaction.atomic(savepoint=False):
        changed = upsert(VariantCost, rows, conflict=("shop_id", "inventory_item_id"), update=(),
                         extra_set={"unit_cost": f"CASE WHEN {newer} THEN excluded.unit_cost ELSE t.unit_cost END",
                                    "updated_at": f"CASE WHEN {newer} THEN excluded.updated_at ELSE t.updated_at END",
                                    "variant_id": "COALESCE(excluded.variant_id, t.variant_id)"},
                         guard=f"{newer} OR {NEW_LINK}", returning=("variant_id",))
        variant_costs_changed(shop=shop, variant_ids=[variant for variant, in changed])
    return len(changed)


def variants_link(*, shop: Shop, links: Iterable[VariantLink]) -> int:
    """products/create|update: note each variant's inventory item. An item not seen yet gets a row
    without a cost or a time, which its inventory_items/create (or reconciliation) fills in."""
    by_item = {link.inventory_item_id: link for link in links}
    rows = [{"shop_id": shop.pk, "inventory_item_id": item, "variant_id": by_item[item].variant_id}
            for item in sorted(by_item)]
    with transaction.atomic(savepoint=False):
        changed = upsert(VariantCost, rows, conflict=("shop_id", "inventory_item_id"), update=("variant_id",),
                         guard="excluded.variant_id IS DISTINCT FROM t.variant_id", returning=("variant_id",))
        variant_costs_changed(shop=shop, variant_ids=[variant for variant, in changed])
    return len(changed)


def costs_delete(*, shop: Shop, inventory_item_ids: Iterable[int]) -> int:
    """inventory_items/delete (the variant or its product was deleted): the item's row goes."""
    ids = sorted(set(inventory_item_ids))
    if not ids:
        return 0
    with transaction.atomic(savepoint=False):
        gone = VariantCost.objects.filter(shop=shop, inventory_item_id__in=ids)
        variants = list(gone.values_list("variant_id", flat=True))
        deleted = gone.delete()[0]
        variant_costs_changed(shop=shop, variant_ids=variants)
    return deleted
