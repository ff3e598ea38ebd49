"""Multi-row upserts with an out-of-order guard.

Large batches (backfill, reconciliation) travel as one array per column (`INSERT … SELECT … FROM
unnest(…)`): the statement text is the same for every batch, so it is parsed and planned once per
connection instead of once per batch, and a batch can be large. Small batches (a webhook's order)
use a multi-row VALUES list.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache

from django.db import connection, models

ARRAY_BATCH = 5000     # rows per unnest statement
ARRAY_MIN_ROWS = 10    # below this a VALUES list is cheaper than building typed arrays


@lru_cache(maxsize=None)
def _adapters(model: type[models.Model], columns: tuple[str, ...]):
    """Per column, the function turning a Python value into a VALUES parameter (None: as it is)."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    adapters = []
    for column in columns:
        field = fields[column]
        if not isinstance(field, models.JSONField):
            adapters.append(None)  # psycopg adapts datetimes, decimals and ints itself (fast path)
        else:
            adapters.append(lambda value, f=field: f.get_db_prep_save(value, connection))
    return adapters


@lru_cache(maxsize=None)
def array_types(model: type[models.Model], columns: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """Per column: the PostgreSQL type of its array parameter, and whether it is JSON (sent as text)."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    types = []
    for column in columns:
        field = fields[column]
        is_json = isinstance(field, models.JSONField)
        types.append(("text" if is_json else field.rel_db_type(connection) if field.is_relation
                      else field.db_type(connection), is_json))
    return tuple(types)


def _tail(conflict: Sequence[str], assignments: list[str], guard: str | None, returning: Sequence[str]) -> str:
    action = (f"UPDATE SET {', '.join(assignments)}" + (f" WHERE {guard}" if guard else "")
              if assignments else "NOTHING")
    return f" ON CONFLICT ({', '.join(conflict)}) DO {action} RETURNING {', '.join(returning)}"


def _upsert_arrays(table: str, model, rows: Sequence[dict], columns: tuple[str, ...], tail: str) -> list[tuple]:
    types = array_types(model, columns)
    names = [f"c{i}" for i in range(len(columns))]
    selected = ", ".join(f"u.{n}::jsonb" if is_json else f"u.{n}" for n, (_, is_json) in zip(names, types))
    sql = (f"INSERT INTO {table} AS t ({', '.join(columns)}) SELECT {selected} FROM unnest("
           + ", ".join(f"%s::{db_type}[]" for db_type, _ in types) + f") AS u({', '.join(names)})" + tail)
    result: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), ARRAY_BATCH):
            chunk = rows[start:start + ARRAY_BATCH]
            arrays = []
            for column, (_, is_json) in zip(columns, types):
                values = [row[column] for row in chunk]
                arrays.append([None if v is None else json.dumps(v) for v in values] if is_json else values)
            cursor.execute(sql, arrays)
            result.extend(cursor.fetchall())
    return result


def distinct(left: str, right: str) -> str:
    return f"{left} IS DISTINCT FROM {right}"


def upsert(model: type[models.Model], rows: Sequence[dict], *, conflict: Sequence[str], update: Iterable[str],
           guard: str | None = None, extra_set: dict[str, str] | None = None,
           returning: Sequence[str] = ("id",)) -> list[tuple]:
    """INSERT ... ON CONFLICT (conflict) DO UPDATE SET ... WHERE guard RETURNING ...

    Rows the guard skips (a stale update) are not returned, so the caller learns what applied.
    `extra_set` adds raw `column = expression` assignments (t = the table, excluded = the new row).
    """
    if not rows:
        return []
    table = model._meta.db_table
    columns = tuple(rows[0].keys())
    assignments = [f"{c} = excluded.{c}" for c in update]
    assignments += [f"{c} = {expr}" for c, expr in (extra_set or {}).items()]
    tail = _tail(conflict, assignments, guard, returning)
    if len(rows) >= ARRAY_MIN_ROWS:
        return _upsert_arrays(table, model, rows, columns, tail)
    adapters = _adapters(model, columns)
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [value if adapt is None else adapt(value)
              for row in rows for adapt, value in zip(adapters, (row[column] for column in columns))]
    sql = f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES {', '.join([placeholder] * len(rows))}" + tail
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
