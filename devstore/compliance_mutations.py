"""The privacy compliance requests Shopify sends to apps: a customer's data request, a customer
redaction and a shop redaction. They change no shop data (Shopify only asks the apps; a data request
takes the next id from its own counter): each emits its topic with the customer's id, email and phone
and the ids of the orders concerned, as they are when the request is made.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .mutation_base import NotFound, emit
from .state import DevStore, Event


def _customer_snapshot(conn: sqlite3.Connection, shop: str, customer_id: int) -> dict:
    row = conn.execute("SELECT id, email, phone FROM customers WHERE shop = ? AND id = ?",
                       (shop, customer_id)).fetchone()
    return dict(row) if row else {"id": customer_id, "email": None, "phone": None}


def _customer_orders(conn: sqlite3.Connection, shop: str, customer_id: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM orders WHERE shop = ? AND customer_id = ? ORDER BY id",
                                       (shop, customer_id))]


def _next_data_request_id(conn: sqlite3.Connection) -> int:
    """Data-request ids are not a state.ID_BASE kind; they get their own counter row."""
    row = conn.execute("SELECT value FROM counters WHERE name = 'DataRequest'").fetchone()
    value = row[0] if row else 9_000
    conn.execute("INSERT INTO counters (name, value) VALUES ('DataRequest', ?) "
                 "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (value + 1,))
    return value


def customers_data_request(store: DevStore, shop: str, customer_id: int,
                           orders_requested: Sequence[int] | None = None) -> int:
    """A customer asks the merchant for their data: customers/data_request to every app. Returns its id.

    No (or an empty) `orders_requested` means all of the customer's orders, as Shopify lists them.
    """
    with store.tx() as conn:
        snapshot = _customer_snapshot(conn, shop, customer_id)
        orders = list(orders_requested) if orders_requested else _customer_orders(conn, shop, customer_id)
        request_id = _next_data_request_id(conn)
        emit(store, shop, "customers/data_request", "Customer", customer_id, customer=snapshot,
             orders_requested=orders, data_request_id=request_id)
    return request_id


def customers_redact(store: DevStore, shop: str, customer_id: int,
                     orders_to_redact: Sequence[int] | None = None) -> None:
    """Shopify asks apps to erase a customer: customers/redact (no or empty list: all their orders)."""
    with store.tx() as conn:
        snapshot = _customer_snapshot(conn, shop, customer_id)
        orders = list(orders_to_redact) if orders_to_redact else _customer_orders(conn, shop, customer_id)
        emit(store, shop, "customers/redact", "Customer", customer_id, customer=snapshot, orders_to_redact=orders)


def shop_redact(store: DevStore, shop: str) -> None:
    """Shopify asks apps to erase a shop's data (48 h after uninstall on Shopify): shop/redact."""
    row = store.shop(shop)
    if row is None:
        raise NotFound(f"no shop {shop}")
    store.emit(Event(shop, "shop/redact", "Shop", row["id"]))
