"""What the store writes of mutations.py, refund_mutations.py and compliance_mutations.py share: the
`NotFound` error, the time stamp and action id an action's events carry, emitting an event inside
the writer's transaction, reading a row that must exist, checking the fields an edit names,
normalising tags, and turning line-item inputs into the lines orders, checkouts and carts store. It
writes nothing itself, so each of those modules imports it and none of them imports another.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from .state import DevStore, Event, iso, utcnow


class NotFound(LookupError):
    """The resource does not exist in this shop."""


def stamp(now: dt.datetime | None) -> str:
    return iso(now or utcnow())


def action_id() -> str:
    return str(uuid.uuid4())


def emit(store: DevStore, shop: str, topic: str, kind: str, id_: int | None, action: str | None = None,
         **extra: Any) -> None:
    if action is not None:
        extra["event_id"] = action
    store.emit(Event(shop, topic, kind, id_, extra or None))


def row(conn: sqlite3.Connection, table: str, shop: str, id_: int) -> sqlite3.Row:
    row = conn.execute(f"SELECT * FROM {table} WHERE shop = ? AND id = ?", (shop, id_)).fetchone()
    if row is None:
        raise NotFound(f"{table}: no id {id_} in {shop}")
    return row


def check_fields(fields: dict, allowed: frozenset[str], what: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}")


def dedupe_tags(tags: Iterable[str]) -> list[str]:
    """Shopify trims tags and compares them case-insensitively."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            kept.append(tag)
    return kept


def resolve_lines(store: DevStore, shop: str, lines: Iterable[dict]) -> list[dict]:
    """Normalise line inputs to {product_id, variant_id, title, vendor, product_type, sku, quantity, price_cents}.

    A line names a `variant_id` (price and titles come from the catalog) and a `quantity`; any key it
    gives itself (`price_cents`, `title`, ...) wins over the catalog.
    """
    conn = store.conn()
    resolved = []
    for line in lines:
        quantity = int(line.get("quantity", 1))
        if quantity < 1:
            raise ValueError("line item quantity must be at least 1")
        found = None
        if line.get("variant_id") is not None:
            found = conn.execute(
                "SELECT v.id AS variant_id, v.product_id, v.sku, v.price_cents, v.title AS variant_title, "
                "p.title, p.vendor, p.product_type FROM variants v JOIN products p ON p.id = v.product_id "
                "WHERE v.id = ? AND v.shop = ?", (int(line["variant_id"]), shop)).fetchone()
            if found is None and "price_cents" not in line:
                raise NotFound(f"variants: no id {line['variant_id']} in {shop}")
        base = dict(found) if found is not None else {}
        merged = {**base, **{k: v for k, v in line.items() if v is not None}}
        if "price_cents" not in merged or "title" not in merged:
            raise ValueError("a line item needs a variant_id from the catalog, or a title and price_cents")
        resolved.append({"product_id": merged.get("product_id"), "variant_id": merged.get("variant_id"),
                         "title": merged["title"], "vendor": merged.get("vendor"),
                         "product_type": merged.get("product_type"), "sku": merged.get("sku"),
                         "variant_title": merged.get("variant_title"), "quantity": quantity,
                         "price_cents": int(merged["price_cents"])})
    if not resolved:
        raise ValueError("at least one line item is required")
    return resolved


def lines_total(lines: Sequence[dict]) -> int:
    return sum(line["price_cents"] * line["quantity"] for line in lines)


def stored_lines(lines: Sequence[dict]) -> str:
    """Checkout and cart rows keep their lines as JSON (schema.py's documented keys plus catalog facts)."""
    keys = ("product_id", "variant_id", "title", "quantity", "price_cents", "sku", "vendor", "variant_title")
    return json.dumps([{key: line.get(key) for key in keys} for line in lines])
