"""Refunds and cancellations: refunding chosen line items (or all that is still unrefunded) and
optionally shipping, and cancelling an order, which refunds a paid order in full. Both write the
refund row and update the order's refunded total and financial status in one transaction, and emit
refunds/create and orders/updated (a cancellation also orders/cancelled) under one event id, as
Shopify does.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence

from . import mutation_base
from .mutation_base import NotFound, action_id, emit
from .state import DevStore


def _refund_lines(conn: sqlite3.Connection, order_id: int,
                  requested: Sequence[dict] | None) -> list[dict]:
    """[{line_item_id, quantity, subtotal_cents}] for a refund, never beyond what is still unrefunded."""
    items = {row["id"]: row for row in conn.execute("SELECT * FROM line_items WHERE order_id = ?", (order_id,))}
    already: dict[int, int] = {}
    for refund_row in conn.execute("SELECT line_items FROM refunds WHERE order_id = ?", (order_id,)):
        for entry in json.loads(refund_row["line_items"]):
            already[entry["line_item_id"]] = already.get(entry["line_item_id"], 0) + int(entry["quantity"])
    wanted = requested if requested is not None else [
        {"line_item_id": item_id, "quantity": row["quantity"]} for item_id, row in items.items()]
    lines = []
    for entry in wanted:
        item = items.get(int(entry["line_item_id"]))
        if item is None:
            raise NotFound(f"line_items: no id {entry['line_item_id']} on order {order_id}")
        quantity = min(int(entry.get("quantity", item["quantity"])), item["quantity"] - already.get(item["id"], 0))
        if quantity <= 0:
            continue
        # What the shopper paid per unit, after this line's share of the discount.
        paid = item["price_cents"] * item["quantity"] - item["discount_cents"]
        lines.append({"line_item_id": item["id"], "quantity": quantity,
                      "subtotal_cents": paid * quantity // item["quantity"]})
    return lines


def _refund(conn: sqlite3.Connection, store: DevStore, shop: str, order: sqlite3.Row, refund_id: int,
            requested: Sequence[dict] | None, include_shipping: bool, note: str | None, stamp: str,
            action: str) -> bool:
    """Write a refund inside the caller's transaction; False if there is nothing left to refund."""
    lines = _refund_lines(conn, order["id"], requested)
    amount = sum(line["subtotal_cents"] for line in lines)
    if include_shipping:
        amount += order["shipping_cents"]
    amount = min(amount, order["total_cents"] - order["refunded_cents"])
    if amount <= 0 and not lines:
        return False
    refunded = order["refunded_cents"] + amount
    status = "refunded" if refunded >= order["total_cents"] else "partially_refunded"
    conn.execute("INSERT INTO refunds (id, order_id, shop, created_at, note, amount_cents, line_items) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (refund_id, order["id"], shop, stamp, note, amount, json.dumps(lines)))
    conn.execute("UPDATE orders SET refunded_cents = ?, financial_status = ?, updated_at = ? WHERE id = ?",
                 (refunded, status, stamp, order["id"]))
    emit(store, shop, "refunds/create", "Refund", refund_id, action)
    return True


def refund_create(store: DevStore, shop: str, order_id: int, *, line_items: Sequence[dict] | None = None,
                  include_shipping: bool = False, note: str | None = None,
                  now: dt.datetime | None = None) -> int | None:
    """Refund line items ([{line_item_id, quantity}]; None: everything not yet refunded), optionally shipping.

    Sends refunds/create and orders/updated. Returns the refund id, or None if nothing was left to refund.
    """
    refund_id = store.next_id("Refund")
    stamp = mutation_base.stamp(now)
    action = action_id()
    with store.tx() as conn:
        order = mutation_base.row(conn, "orders", shop, order_id)
        if not _refund(conn, store, shop, order, refund_id, line_items, include_shipping, note, stamp, action):
            return None
        emit(store, shop, "orders/updated", "Order", order_id, action)
    return refund_id


def order_cancel(store: DevStore, shop: str, order_id: int, *, reason: str = "customer", refund: bool = True,
                 now: dt.datetime | None = None) -> None:
    """Cancel an order: orders/cancelled and orders/updated; a paid order is refunded in full (refunds/create)."""
    refund_id = store.next_id("Refund") if refund else None
    stamp = mutation_base.stamp(now)
    action = action_id()
    with store.tx() as conn:
        order = mutation_base.row(conn, "orders", shop, order_id)
        if order["cancelled_at"] is not None:
            raise ValueError(f"order {order_id} is already cancelled")
        if refund_id is not None and order["financial_status"] in ("paid", "partially_refunded"):
            _refund(conn, store, shop, order, refund_id, None, True, "Order cancelled", stamp, action)
        status_update = ", financial_status = 'voided'" if order["financial_status"] in ("pending",
                                                                                          "authorized") else ""
        conn.execute(f"UPDATE orders SET cancelled_at = ?, cancel_reason = ?, closed_at = ?, updated_at = ?"
                     f"{status_update} WHERE id = ?", (stamp, reason, stamp, stamp, order_id))
        emit(store, shop, "orders/cancelled", "Order", order_id, action)
        emit(store, shop, "orders/updated", "Order", order_id, action)
