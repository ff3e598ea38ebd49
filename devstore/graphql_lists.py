"""Connections over SQLite tables: Shopify search syntax (`query:`), sort keys and opaque cursors.

Search syntax (https://shopify.dev/docs/api/usage/search-syntax): terms joined by AND (implicit) or
OR, grouped with parentheses, negated with NOT or a leading `-`; `field:value`, `field:>value`,
`>=`, `<`, `<=`; values may be quoted; a trailing `*` is a prefix match. An unknown field is ignored
and reported as a warning, as Shopify does in `extensions.search`.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from .state import iso, parse_gid

Sql = tuple[str, list[Any]]
FieldHandler = Callable[[str, str], Sql | None]   # (operator, value) -> SQL, None when the value is invalid

COMPARATORS = (">=", "<=", ">", "<")


# -- search syntax -------------------------------------------------------------------------------

def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    current, quote = "", ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            current += ch
            quote = ch
        elif ch.isspace() or ch in "()":
            if current:
                tokens.append(current)
                current = ""
            if ch in "()":
                tokens.append(ch)
        else:
            current += ch
    if current:
        tokens.append(current)
    return tokens


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


class _Parser:
    """Recursive descent over the tokens, compiling straight to SQL."""

    def __init__(self, tokens: list[str], fields: dict[str, FieldHandler], free_text: FieldHandler | None):
        self.tokens, self.pos = tokens, 0
        self.fields, self.free_text = fields, free_text
        self.warnings: list[dict] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expr(self) -> Sql:
        parts = [self.and_expr()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.and_expr())
        return _join(parts, "OR")

    def and_expr(self) -> Sql:
        parts: list[Sql] = []
        while (token := self.peek()) is not None and token not in (")", "OR"):
            if token == "AND":
                self.take()
                continue
            parts.append(self.unary())
        return _join(parts, "AND")

    def unary(self) -> Sql:
        token = self.take()
        if token == "NOT":
            sql, params = self.unary()
            return f"NOT ({sql})", params
        if token == "(":
            inner = self.expr()
            if self.peek() == ")":
                self.take()
            return inner
        if token.startswith("-") and len(token) > 1:
            sql, params = self.term(token[1:])
            return f"NOT ({sql})", params
        return self.term(token)

    def term(self, token: str) -> Sql:
        name, sep, raw = token.partition(":")
        if not sep or name.startswith(("'", '"')):
            if self.free_text is None:
                return "1", []
            return self.free_text(":", _unquote(token)) or ("1", [])
        op = next((c for c in COMPARATORS if raw.startswith(c)), ":")
        value = _unquote(raw[len(op):] if op != ":" else raw)
        handler = self.fields.get(name)
        compiled = handler(op, value) if handler else None
        if compiled is None:
            # Shopify ignores a term it cannot use and says so in extensions.search.
            self.warnings.append({"field": name, "message": "Invalid search field for this query."}
                                 if handler is None else
                                 {"field": name, "message": f"Invalid value for the {name} field."})
            return "1", []
        return compiled


def _join(parts: list[Sql], word: str) -> Sql:
    if not parts:
        return "1", []
    if len(parts) == 1:
        return parts[0]
    return f" {word} ".join(f"({sql})" for sql, _ in parts), [p for _, params in parts for p in params]


def compile_search(query: str | None, fields: dict[str, FieldHandler],
                   free_text: FieldHandler | None = None) -> tuple[Sql, list[dict]]:
    """A Shopify search string -> (SQL predicate, warnings)."""
    if not query or not query.strip():
        return ("1", []), []
    parser = _Parser(_tokens(query), fields, free_text)
    sql = parser.expr()
    return sql, parser.warnings


# -- field handlers ------------------------------------------------------------------------------

def _sql_op(op: str) -> str:
    return "=" if op == ":" else op


def normalize_time(value: str) -> tuple[str, str | None] | None:
    """'2026-09-01' / '2026-09-01T10:00:00Z' / with offset -> (UTC iso, end of day for date-only)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
            return iso(day), iso(day + dt.timedelta(days=1))
        moment = dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)   # devstore reads naive times as UTC
    return iso(moment.replace(microsecond=0)), None


def time_field(column: str) -> FieldHandler:
    def handler(op: str, value: str) -> Sql | None:
        parsed = normalize_time(value)
        if parsed is None:
            return None
        start, day_end = parsed
        if op == ":" and day_end is not None:
            return f"({column} >= ? AND {column} < ?)", [start, day_end]
        return f"{column} {_sql_op(op)} ?", [start]
    return handler


def id_field(column: str, kind: str) -> FieldHandler:
    def handler(op: str, value: str) -> Sql | None:
        number = parse_gid(value, kind) if value.startswith("gid://") else (int(value) if value.isdigit() else None)
        if number is None:
            return None
        return f"{column} {_sql_op(op)} ?", [number]
    return handler


def number_field(expression: str) -> FieldHandler:
    def handler(op: str, value: str) -> Sql | None:
        try:
            number = float(value)
        except ValueError:
            return None
        return f"({expression}) {_sql_op(op)} ?", [number]
    return handler


def text_field(*columns: str) -> FieldHandler:
    """Case-insensitive equality, or a prefix match with a trailing `*`."""
    def handler(op: str, value: str) -> Sql | None:
        if op != ":":
            return None
        if value.endswith("*"):
            pattern = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses = [f"lower({c}) LIKE lower(?) ESCAPE '\\'" for c in columns]
            return " OR ".join(clauses), [pattern] * len(columns)
        return " OR ".join(f"lower({c}) = lower(?)" for c in columns), [value] * len(columns)
    return handler


def tag_field(column: str = "tags", negate: bool = False) -> FieldHandler:
    def handler(op: str, value: str) -> Sql | None:
        if op != ":":
            return None
        sql = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE lower(json_each.value) = lower(?))"
        return (f"NOT {sql}" if negate else sql), [value]
    return handler


def bool_field(column: str) -> FieldHandler:
    def handler(op: str, value: str) -> Sql | None:
        if op != ":" or value.lower() not in ("true", "false"):
            return None
        return f"{column} = ?", [1 if value.lower() == "true" else 0]
    return handler


def free_text_over(*columns: str) -> FieldHandler:
    """A bare word matches any of the default fields by substring, like Shopify's keyword search."""
    def handler(op: str, value: str) -> Sql | None:
        pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").rstrip("*") + "%"
        return " OR ".join(f"lower({c}) LIKE lower(?) ESCAPE '\\'" for c in columns), [pattern] * len(columns)
    return handler


# -- pagination ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    """Rows of one table matching a predicate, ordered by (sort column, id)."""

    table: str
    where: str
    params: Sequence[Any]
    sort_column: str = "id"
    reverse: bool = False


@dataclass(frozen=True)
class Page:
    rows: list[sqlite3.Row]
    cursors: list[str]
    has_next: bool
    has_previous: bool


def encode_cursor(sort_column: str, row: sqlite3.Row) -> str:
    payload = json.dumps([sort_column, row[sort_column], row["id"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort_column: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        column, value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise GraphQLError("Invalid cursor for current pagination sort.") from exc
    if column != sort_column or not isinstance(row_id, int):
        raise GraphQLError("Invalid cursor for current pagination sort.")
    return value, row_id


def _beyond(listing: Listing, key: tuple[Any, int], *, forward: bool, inclusive: bool = False) -> Sql:
    """Predicate for rows after (forward) or before `key` in the listing's order."""
    ascending = not listing.reverse
    cmp = ">" if forward == ascending else "<"
    if inclusive:
        cmp += "="
    if listing.sort_column == "id":
        return f"id {cmp} ?", [key[1]]
    return f"({listing.sort_column}, id) {cmp} (?, ?)", [key[0], key[1]]


def _fetch(conn: sqlite3.Connection, listing: Listing, extra: Sql | None, *, forward: bool,
           limit: int | None) -> list[sqlite3.Row]:
    ascending = (not listing.reverse) == forward
    direction = "ASC" if ascending else "DESC"
    where, params = f"({listing.where})", list(listing.params)
    if extra is not None:
        where += f" AND {extra[0]}"
        params += extra[1]
    order = "id" if listing.sort_column == "id" else f"{listing.sort_column} {direction}, id"
    sql = f"SELECT * FROM {listing.table} WHERE {where} ORDER BY {order} {direction}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return conn.execute(sql, params).fetchall()


def _exists(conn: sqlite3.Connection, listing: Listing, extra: Sql) -> bool:
    sql = f"SELECT 1 FROM {listing.table} WHERE ({listing.where}) AND {extra[0]} LIMIT 1"
    return conn.execute(sql, list(listing.params) + extra[1]).fetchone() is not None


def paginate(conn: sqlite3.Connection, listing: Listing, *, first: int | None = None, after: str | None = None,
             last: int | None = None, before: str | None = None) -> Page:
    """Keyset pagination; with neither `first` nor `last` every row is returned (bulk operations)."""
    after_key = decode_cursor(after, listing.sort_column) if after else None
    before_key = decode_cursor(before, listing.sort_column) if before else None
    bounds: list[Sql] = []
    if after_key is not None:
        bounds.append(_beyond(listing, after_key, forward=True))
    if before_key is not None:
        bounds.append(_beyond(listing, before_key, forward=False))
    extra = _join(bounds, "AND") if bounds else None
    if last is not None and first is None:
        rows = _fetch(conn, listing, extra, forward=False, limit=last + 1)
        has_previous = len(rows) > last
        rows = list(reversed(rows[:last]))
        has_next = before_key is not None and _exists(conn, listing, _beyond(listing, before_key, forward=True,
                                                                             inclusive=True))
    else:
        rows = _fetch(conn, listing, extra, forward=True, limit=None if first is None else first + 1)
        has_next = first is not None and len(rows) > first
        rows = rows if first is None else rows[:first]
        if last is not None:
            # Shopify allows first and last together: the last `last` of the first `first`.
            has_previous_in_page = len(rows) > last
            rows = rows[-last:] if last else []
        else:
            has_previous_in_page = False
        has_previous = has_previous_in_page or (after_key is not None and _exists(
            conn, listing, _beyond(listing, after_key, forward=False, inclusive=True)))
    cursors = [encode_cursor(listing.sort_column, row) for row in rows]
    return Page(rows, cursors, has_next, has_previous)
