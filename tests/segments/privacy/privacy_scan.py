"""A scan of every table of the app's database for one person's identifiers.

Tables come from `connection.introspection.table_names()` (every app, and tables no model declares);
each column is read according to its type: text, JSON (webhook payloads are jsonb stored with lz4
column compression, which PostgreSQL decompresses on read, so the scan sees the document) and
bytea (lz4 frames decompressed when the `lz4` module is present, otherwise the scan fails rather
than skip them); integer and decimal columns are compared with the person's Shopify ids; columns
of an encrypted model field are decrypted first. A column type the scan does not know fails the
scan: a column it cannot read is a column it has not proved clean.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.apps import apps
from django.db import connection

from segments.shops.crypto import EncryptedTextField

TEXT = {"CharField", "TextField", "JSONField", "SlugField", "EmailField", "GenericIPAddressField", "UUIDField",
        "FilePathField", "URLField"}
INTEGER = {"IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
           "PositiveSmallIntegerField", "AutoField", "BigAutoField", "SmallAutoField", "DecimalField", "FloatField"}
BINARY = {"BinaryField"}
# Cannot hold an id, an email, a phone number, a name or an address line.
NOT_READ = {"BooleanField", "DateField", "DateTimeField", "TimeField", "DurationField"}
LZ4_FRAME = b"\x04\x22\x4d\x18"


@dataclass(frozen=True)
class Needles:
    """What identifies the person: Shopify ids (matched as whole numbers, in numeric columns and in
    text), and strings (emails, phone numbers, names, address lines; matched case-insensitively)."""

    ids: tuple[int, ...]
    texts: tuple[str, ...]

    def found_in_text(self, text: str) -> set[str]:
        folded = text.casefold()
        hits = {str(i) for i in self.ids if re.search(rf"(?<!\d){i}(?!\d)", text)}
        return hits | {t for t in self.texts if t.casefold() in folded}

    def found_in_number(self, value) -> set[str]:
        if isinstance(value, float) and not value.is_integer():
            return set()
        if isinstance(value, Decimal) and value != value.to_integral_value():
            return set()
        return {str(i) for i in self.ids if int(value) == i}


@dataclass(frozen=True)
class Hit:
    table: str
    column: str
    needle: str


def _encrypted_columns() -> dict[tuple[str, str], EncryptedTextField]:
    return {(model._meta.db_table, field.column): field for model in apps.get_models()
            for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)}


def _binary_text(value: bytes | memoryview) -> str:
    data = bytes(value)
    if data.startswith(LZ4_FRAME):
        try:
            import lz4.frame
        except ImportError:   # pragma: no cover - fails the scan instead of skipping the column
            raise AssertionError("an lz4-compressed bytea value, and no lz4 module to read it") from None
        data = lz4.frame.decompress(data)
    return data.decode("utf-8", errors="replace")


def table_columns() -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, Django field type)]} for every table in the database."""
    columns: dict[str, list[tuple[str, str]]] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            described = []
            for column in connection.introspection.get_table_description(cursor, table):
                try:
                    kind = connection.introspection.get_field_type(column.type_code, column)
                except KeyError:
                    kind = f"unknown type {column.type_code}"
                described.append((column.name, kind))
            columns[table] = described
    return columns


def database_scan(needles: Needles, *, tables: Iterable[str] | None = None) -> set[Hit]:
    """Every (table, column, needle) where a needle occurs in the database."""
    encrypted = _encrypted_columns()
    hits: set[Hit] = set()
    quote = connection.ops.quote_name
    for table, columns in table_columns().items():
        if tables is not None and table not in tables:
            continue
        unknown = [(name, kind) for name, kind in columns if kind not in TEXT | INTEGER | BINARY | NOT_READ]
        assert not unknown, f"{table}: columns the privacy scan cannot read: {unknown}"
        read = [(name, kind) for name, kind in columns if kind not in NOT_READ]
        if not read:
            continue
        selected = ", ".join(f"CAST({quote(name)} AS text)" if kind == "JSONField" else quote(name)
                             for name, kind in read)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {selected} FROM {quote(table)}")
            rows = cursor.fetchall()
        for row in rows:
            for (name, kind), value in zip(read, row):
                if value is None:
                    continue
                if kind in INTEGER:
                    found = needles.found_in_number(value)
                elif kind in BINARY:
                    found = needles.found_in_text(_binary_text(value))
                else:
                    if (table, name) in encrypted:
                        value = encrypted[(table, name)].from_db_value(value, None, connection)
                    found = needles.found_in_text(str(value))
                hits |= {Hit(table, name, needle) for needle in found}
    return hits
