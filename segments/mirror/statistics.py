"""Planner statistics after bulk writes: ANALYZE what a bulk load filled, at once.

A table a bulk load has just filled has no statistics (or those of an emptier table) until
autovacuum gets to it, a minute or more later, and never where autovacuum is off. Meanwhile the
planner takes it for nearly empty (one row for a shop's 17,580 orders) and picks plans that only
suit tiny tables.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from segments.mirror.models import Checkout, Customer, LineItem, Order, Product, Refund, VariantCost

# What a history backfill writes (customer stubs, orders with their line items and refunds,
# products, abandoned checkouts, variants' unit costs).
MIRROR_TABLES = tuple(model._meta.db_table for model in (Customer, Product, Order, LineItem, Refund, Checkout,
                                                         VariantCost))
# Autovacuum's default analyze scale factor: a table is stale once a tenth of its rows changed.
STALE_FRACTION = 0.1


def tables_analyze(*, tables: Sequence[str]) -> list[str]:
    """ANALYZE each table; returns the tables analyzed."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return list(tables)


def table_analyze_if_rewritten(*, table: str, written: int) -> bool:
    """ANALYZE `table` when `written` rows (just written by a bulk statement) are a tenth of it or
    more, or it was never analyzed; a small shop's nightly rewrite of a shared table leaves it to
    autovacuum. Returns whether it analyzed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        known = cursor.fetchone()[0]      # -1: never analyzed nor vacuumed
    if 0 <= known and written < STALE_FRACTION * known:
        return False
    return bool(tables_analyze(tables=[table]))
