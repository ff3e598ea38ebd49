"""Multi-row upserts with an out-of-order guard, in SQL both PostgreSQL and SQLite (3.35+) accept."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from django.db import connection, models

BATCH = 500


@lru_cache(maxsize=None)
def _adapters(model: type[models.Model], columns: tuple[str, ...], vendor: str):
    """Per column, the function turning a Python value into a database parameter."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    adapters = []
    for column in columns:
        field = fields[column]
        if vendor == "postgresql" and not isinstance(field, models.JSONField):
            adapters.append(None)  # psycopg adapts datetimes, decimals and ints itself (fast path)
        else:
            adapters.append(lambda value, f=field: f.get_db_prep_save(value, connection))
    return adapters


def distinct(left: str, right: str) -> str:
    op = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    return f"{left} {op} {right}"


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
    adapters = _adapters(model, columns, connection.vendor)
    assignments = [f"{c} = excluded.{c}" for c in update]
    assignments += [f"{c} = {expr}" for c, expr in (extra_set or {}).items()]
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    result: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]
            params = []
            for row in chunk:
                for adapt, column in zip(adapters, columns):
                    value = row[column]
                    params.append(value if adapt is None else adapt(value))
            sql = (f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES "
                   f"{', '.join([placeholder] * len(chunk))} "
                   f"ON CONFLICT ({', '.join(conflict)}) DO "
                   + (f"UPDATE SET {', '.join(assignments)}" + (f" WHERE {guard}" if guard else "")
                      if assignments else "NOTHING")
                   + f" RETURNING {', '.join(returning)}")
            cursor.execute(sql, params)
            result.extend(cursor.fetchall())
    return result
