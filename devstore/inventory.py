"""Inventory items: each variant's one item, which holds its unit cost the way Shopify holds it
(`InventoryItem.unitCost`, in the shop currency; devstore keeps cents, NULL when no cost was entered),
and the writes to it. An edit sends `inventory_items/update`; items come and go with their variants
(`inventory_items/create`, `inventory_items/delete`). The generator draws its catalog's costs here.
"""
from __future__ import annotations

import datetime as dt
import decimal
import random
import sqlite3
from collections.abc import Sequence

from . import mutation_base
from .mutation_base import emit
from .state import DevStore, iso, utcnow

# A generated catalog: most variants cost 35-65% of their price, and some have no cost entered, as
# in real shops (merchants skip the field for items they never priced).
COST_SHARE = (0.35, 0.65)
NO_COST_SHARE = 0.08
MAX_COST_CENTS = 10 ** 13      # a bound on what an edit may set, far above any real unit cost

# Reading an item takes either scope (Shopify: "Requires `read_inventory` access scope or
# `read_products` access scope"); editing one takes write_inventory.
READ_SCOPES = ("read_inventory", "read_products")
WRITE_SCOPE = "write_inventory"

_UNSET = object()

ItemRow = tuple[int, int, "int | None", str]   # (item id, variant id, cost in cents or None, created_at)


def cost_stream(seed: int) -> random.Random:
    """The generator's random stream for unit costs: its own, so adding costs moved no other seeded row."""
    return random.Random(f"devstore-unit-costs/{seed}")


def unit_cost(rng: random.Random, price_cents: int) -> int | None:
    """A drawn unit cost for a variant at `price_cents`; None for a variant without one."""
    if rng.random() < NO_COST_SHARE:
        return None
    low, high = COST_SHARE
    return round(price_cents * (low + (high - low) * rng.random()))


def parse_cost(value: object) -> int | None:
    """InventoryItemInput.cost (a Decimal: string or number; null clears it) -> cents, rounded half up.
    Raises ValueError for what is not a non-negative amount."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("not a decimal")
    try:
        amount = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError("not a decimal") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("negative or not finite")
    cents = int((amount * 100).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))
    if cents > MAX_COST_CENTS:
        raise ValueError("too large")
    return cents


# -- rows ----------------------------------------------------------------------------------------

def items_insert(conn: sqlite3.Connection, shop: str, rows: Sequence[ItemRow]) -> None:
    """One item per variant, created (and last updated) when given."""
    conn.executemany("INSERT INTO inventory_items (id, shop, variant_id, cost_cents, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", [(item, shop, variant, cost, created, created)
                                                  for item, variant, cost, created in rows])


def items_ensure(store: DevStore) -> int:
    """Give an item to every variant that has none (state files written before devstore kept items,
    rows tests insert by hand), with costs drawn as the generator draws them. Sends nothing: to an
    app the items were always there. Returns how many were made."""
    missing = store.conn().execute(
        "SELECT v.id, v.shop, v.price_cents, p.created_at FROM variants v LEFT JOIN products p ON p.id = v.product_id "
        "WHERE NOT EXISTS (SELECT 1 FROM inventory_items i WHERE i.variant_id = v.id) ORDER BY v.id").fetchall()
    if not missing:
        return 0
    ids = store.next_ids("InventoryItem", len(missing))   # reserved before the write lock, as next_ids requires
    costs = cost_stream(0)
    fallback = iso(utcnow())
    with store.tx() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO inventory_items (id, shop, variant_id, cost_cents, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(item_id, row["shop"], row["id"], unit_cost(costs, row["price_cents"]), row["created_at"] or fallback,
              row["created_at"] or fallback) for item_id, row in zip(ids, missing)])
    return len(missing)


def item_of_variant(conn: sqlite3.Connection, shop: str, variant_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM inventory_items WHERE shop = ? AND variant_id = ?",
                        (shop, variant_id)).fetchone()


# -- writes --------------------------------------------------------------------------------------

def inventory_item_update(store: DevStore, shop: str, item_id: int, *, cost_cents: object = _UNSET,
                          tracked: bool | None = None, now: dt.datetime | None = None) -> bool:
    """Edit an item's unit cost (cents; None clears it) or whether it is tracked: inventory_items/update.

    An edit that changes nothing writes nothing and sends nothing. Returns whether anything changed.
    Raises mutation_base.NotFound for an item the shop does not have.
    """
    stamp = mutation_base.stamp(now)
    with store.tx() as conn:
        row = mutation_base.row(conn, "inventory_items", shop, item_id)
        changes: dict[str, object] = {}
        if cost_cents is not _UNSET and cost_cents != row["cost_cents"]:
            changes["cost_cents"] = cost_cents
        if tracked is not None and int(tracked) != row["tracked"]:
            changes["tracked"] = int(tracked)
        if not changes:
            return False
        assignments = "".join(f"{column} = ?, " for column in changes)
        conn.execute(f"UPDATE inventory_items SET {assignments}updated_at = ? WHERE id = ?",   # noqa: S608
                     (*changes.values(), stamp, item_id))
        emit(store, shop, "inventory_items/update", "InventoryItem", item_id)
    return True


def variant_cost_set(store: DevStore, shop: str, variant_id: int, cost_cents: int | None, *,
                     now: dt.datetime | None = None) -> tuple[int, bool]:
    """The merchant types a variant's cost per item in the admin. Returns (its item's id, changed)."""
    found = item_of_variant(store.conn(), shop, variant_id)
    if found is None:
        raise mutation_base.NotFound(f"variants: no id {variant_id} in {shop}")
    return found["id"], inventory_item_update(store, shop, found["id"], cost_cents=cost_cents, now=now)


def items_of_product_delete(conn: sqlite3.Connection, shop: str, product_id: int, stamp: str) -> list[int]:
    """Inside the product's deletion (before its variants go): its items go too. Returns their ids,
    for the caller's inventory_items/delete events (`items_deleted`)."""
    ids = [row[0] for row in conn.execute(
        "SELECT i.id FROM inventory_items i JOIN variants v ON v.id = i.variant_id WHERE v.product_id = ? "
        "AND i.shop = ? ORDER BY i.id", (product_id, shop))]
    for item_id in ids:
        conn.execute("DELETE FROM inventory_items WHERE id = ?", (item_id,))
        conn.execute("INSERT OR REPLACE INTO deleted_resources (shop, kind, id, deleted_at) VALUES (?, ?, ?, ?)",
                     (shop, "InventoryItem", item_id, stamp))
    return ids


def items_deleted(store: DevStore, shop: str, item_ids: Sequence[int]) -> None:
    """inventory_items/delete for each item, its body (the id) taken now since the row is gone."""
    for item_id in item_ids:
        emit(store, shop, "inventory_items/delete", "InventoryItem", item_id, payload={"id": item_id})
