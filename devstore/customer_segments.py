"""Shopify's native customer segments: `segmentCreate`, `segmentUpdate`, `segmentDelete` and `segment(id)`.

A segment is a name and a ShopifyQL segment query; its members are whoever matches the query now,
read live from the `customers` table (Shopify updates membership by itself, lazily; devstore has no
lag). The one filter devstore understands is the one an app mirroring a tag needs:
`customer_tags CONTAINS 'tag'` and `customer_tags NOT CONTAINS 'tag'` (this exact tag among the
customer's, case-insensitively, as tags compare), joined with AND / OR and parentheses, AND binding
tighter. Any other query is the userError "Query not supported: …" on `query`, so an app relying on
more of ShopifyQL fails here rather than passing against devstore.

Writes need `write_customers`, reads `read_customers` (shopify.dev, segmentUpdate and Segment). Names
are unique per shop. The messages follow Shopify's "Name can't be blank" style; the duplicate-name and
unsupported-query wordings are devstore's.
"""
from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLResolveInfo

from .graphql_context import RequestContext, access_denied, require
from .state import DevStore, gid, iso, parse_gid, utcnow

SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_segments (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,                            -- ShopifyQL, as the app sent it
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (shop, name)
);
"""

# Ids in their own range (Shopify's segment ids are about this size), clear of state.ID_BASE's kinds.
SEGMENT_ID_BASE = 560_000_000_000
MAX_NAME = 255
MAX_QUERY = 5000
WRITE_ALSO = "The user must not have restricted access."

Obj = dict[str, Any]


def ensure_tables(store: DevStore) -> None:
    store.conn().executescript(SCHEMA)


# -- the query language --------------------------------------------------------------------------

class SegmentQueryError(ValueError):
    """A query devstore cannot evaluate; the message says where."""


@dataclass(frozen=True)
class TagCondition:
    tag: str                  # lower-cased: tags compare case-insensitively
    negated: bool

    def matches(self, tags: frozenset[str]) -> bool:
        return (self.tag in tags) != self.negated


@dataclass(frozen=True)
class Junction:
    operator: str             # AND | OR
    parts: tuple[Condition, ...]

    def matches(self, tags: frozenset[str]) -> bool:
        test = all if self.operator == "AND" else any
        return test(part.matches(tags) for part in self.parts)


Condition = TagCondition | Junction

_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|'(?P<string>(?:[^'\\]|\\.)*)'"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>\S))")


def _tokens(query: str) -> list[tuple[str, str, int]]:
    """(kind, text, column) for each token; kind is paren, string, word or bad."""
    found = []
    for match in _TOKEN.finditer(query):
        kind = match.lastgroup
        if kind is None:            # trailing whitespace
            continue
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text)
        found.append((kind, text, match.start(kind) + 1))
    return found


class _Parser:
    def __init__(self, query: str):
        self.tokens = _tokens(query)
        self.at = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def fail(self, expected: str) -> SegmentQueryError:
        token = self.peek()
        where = f"column {token[2]}, found {token[1]!r}" if token else "the end of the query"
        return SegmentQueryError(f"expected {expected} at {where}")

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.at += 1
            return token[1].upper()
        return None

    def junction(self, operator: str, parse_part: Any) -> Condition:
        parts = [parse_part()]
        while self.keyword(operator):
            parts.append(parse_part())
        return parts[0] if len(parts) == 1 else Junction(operator, tuple(parts))

    def expression(self) -> Condition:
        return self.junction("OR", lambda: self.junction("AND", self.term))

    def term(self) -> Condition:
        token = self.peek()
        if token and token[:2] == ("paren", "("):
            self.at += 1
            inner = self.expression()
            if self.peek() is None or self.peek()[:2] != ("paren", ")"):   # type: ignore[index]
                raise self.fail("')'")
            self.at += 1
            return inner
        if not (token and token[0] == "word" and token[1] == "customer_tags"):
            raise self.fail("customer_tags (the only filter devstore evaluates)")
        self.at += 1
        negated = self.keyword("NOT") is not None
        if not self.keyword("CONTAINS"):
            raise self.fail("CONTAINS or NOT CONTAINS")
        value = self.peek()
        if not (value and value[0] == "string" and value[1].strip()):
            raise self.fail("a tag in single quotes")
        self.at += 1
        return TagCondition(value[1].strip().lower(), negated)


def segment_query_parse(query: str) -> Condition:
    parser = _Parser(query)
    tree = parser.expression()
    if parser.peek() is not None:
        raise parser.fail("AND, OR or the end of the query")
    return tree


def _tag_set(raw: str | None) -> frozenset[str]:
    return frozenset(tag.lower() for tag in json.loads(raw or "[]"))


# -- selectors -----------------------------------------------------------------------------------

def segment_row(conn: sqlite3.Connection, shop: str, segment_id: int | None) -> sqlite3.Row | None:
    if segment_id is None:
        return None
    return conn.execute("SELECT * FROM customer_segments WHERE shop = ? AND id = ?", (shop, segment_id)).fetchone()


def segment_customer_is_member(store: DevStore, shop: str, customer_id: int, segment_ids: Iterable[int]) -> bool:
    """Whether the customer matches any of the segments now (deleted segments match nobody)."""
    conn = store.conn()
    customer = conn.execute("SELECT tags FROM customers WHERE shop = ? AND id = ?", (shop, customer_id)).fetchone()
    if customer is None:
        return False
    tags = _tag_set(customer["tags"])
    for segment_id in segment_ids:
        row = segment_row(conn, shop, segment_id)
        if row is not None and segment_query_parse(row["query"]).matches(tags):
            return True
    return False


def segment_member_count(store: DevStore, shop: str, query: str) -> int:
    tree = segment_query_parse(query)
    rows = store.conn().execute("SELECT tags FROM customers WHERE shop = ?", (shop,))
    return sum(1 for row in rows if tree.matches(_tag_set(row["tags"])))


def segments_listing(store: DevStore, shop: str) -> list[Obj]:
    """The shop's segments with their live member counts (the control API's view)."""
    rows = store.conn().execute("SELECT * FROM customer_segments WHERE shop = ? ORDER BY id", (shop,)).fetchall()
    return [{"id": gid("Segment", row["id"]), "name": row["name"], "query": row["query"],
             "member_count": segment_member_count(store, shop, row["query"]),
             "created_at": row["created_at"], "updated_at": row["updated_at"]} for row in rows]


def segment_object(row: sqlite3.Row) -> Obj:
    return {"__typename": "Segment", "id": gid("Segment", row["id"]), "name": row["name"], "query": row["query"],
            "creationDate": row["created_at"], "lastEditDate": row["updated_at"]}


def load_segment(ctx: RequestContext, id_: int) -> Obj | None:
    row = segment_row(ctx.conn, ctx.shop, id_)
    return segment_object(row) if row else None


# -- resolvers -----------------------------------------------------------------------------------

def _error(field: str, message: str) -> Obj:
    return {"field": [field], "message": message}


def _require_write(ctx: RequestContext, info: GraphQLResolveInfo) -> None:
    if not ctx.granted("write_customers"):
        raise access_denied(info, "write_customers", also=WRITE_ALSO)


def _checked(name: str | None, query: str | None) -> list[Obj]:
    """The userErrors of a name and a query (None: not being set)."""
    errors = []
    if name is not None and not name.strip():
        errors.append(_error("name", "Name can't be blank"))
    elif name is not None and len(name) > MAX_NAME:
        errors.append(_error("name", f"Name is too long (maximum is {MAX_NAME} characters)"))
    if query is not None and not query.strip():
        errors.append(_error("query", "Query can't be blank"))
    elif query is not None and len(query) > MAX_QUERY:
        errors.append(_error("query", f"Query is too long (maximum is {MAX_QUERY} characters)"))
    elif query is not None:
        try:
            segment_query_parse(query)
        except SegmentQueryError as exc:
            errors.append(_error("query", f"Query not supported: {exc}"))
    return errors


def _name_taken(conn: sqlite3.Connection, shop: str, name: str, other_than: int | None = None) -> bool:
    return conn.execute("SELECT 1 FROM customer_segments WHERE shop = ? AND name = ? AND id IS NOT ?",
                        (shop, name, other_than)).fetchone() is not None


def _taken() -> Obj:
    return _error("name", "Name has already been taken")


def resolve_segment_create(_root: None, info: GraphQLResolveInfo, name: str, query: str) -> Obj:
    ctx: RequestContext = info.context
    _require_write(ctx, info)
    name = name.strip()
    errors = _checked(name, query)
    if errors:
        return {"segment": None, "userErrors": errors}
    stamp = iso(utcnow())
    with ctx.store.tx() as conn:
        if _name_taken(conn, ctx.shop, name):
            return {"segment": None, "userErrors": [_taken()]}
        segment_id = conn.execute("SELECT COALESCE(MAX(id), ?) + 1 FROM customer_segments",
                                  (SEGMENT_ID_BASE,)).fetchone()[0]
        conn.execute("INSERT INTO customer_segments (id, shop, name, query, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (segment_id, ctx.shop, name, query, stamp, stamp))
        row = segment_row(conn, ctx.shop, segment_id)
    return {"segment": segment_object(row), "userErrors": []}


def _missing() -> Obj:
    return _error("id", "Segment does not exist")


def resolve_segment_update(_root: None, info: GraphQLResolveInfo, id: str, name: str | None = None,  # noqa: A002
                           query: str | None = None) -> Obj:
    ctx: RequestContext = info.context
    _require_write(ctx, info)
    segment_id = parse_gid(id, "Segment")
    name = name.strip() if name is not None else None
    errors = _checked(name, query)
    with ctx.store.tx() as conn:
        row = segment_row(conn, ctx.shop, segment_id)
        if row is None:
            return {"segment": None, "userErrors": [_missing()]}
        if errors:
            return {"segment": None, "userErrors": errors}
        if name is not None and _name_taken(conn, ctx.shop, name, other_than=segment_id):
            return {"segment": None, "userErrors": [_taken()]}
        conn.execute("UPDATE customer_segments SET name = ?, query = ?, updated_at = ? WHERE id = ?",
                     (name if name is not None else row["name"], query if query is not None else row["query"],
                      iso(utcnow()), segment_id))
        row = segment_row(conn, ctx.shop, segment_id)
    return {"segment": segment_object(row), "userErrors": []}


def resolve_segment_delete(_root: None, info: GraphQLResolveInfo, id: str) -> Obj:  # noqa: A002
    ctx: RequestContext = info.context
    _require_write(ctx, info)
    segment_id = parse_gid(id, "Segment")
    with ctx.store.tx() as conn:
        deleted = segment_id is not None and conn.execute(
            "DELETE FROM customer_segments WHERE shop = ? AND id = ?", (ctx.shop, segment_id)).rowcount == 1
    if not deleted or segment_id is None:
        return {"deletedSegmentId": None, "userErrors": [_missing()]}
    return {"deletedSegmentId": gid("Segment", segment_id), "userErrors": []}


def resolve_segment(_root: None, info: GraphQLResolveInfo, id: str) -> Obj | None:  # noqa: A002
    ctx: RequestContext = info.context
    require(ctx, info, "read_customers")
    segment_id = parse_gid(id, "Segment")
    return load_segment(ctx, segment_id) if segment_id is not None else None


MUTATION_RESOLVERS = {
    "segmentCreate": resolve_segment_create,
    "segmentUpdate": resolve_segment_update,
    "segmentDelete": resolve_segment_delete,
}
QUERY_RESOLVERS = {"segment": resolve_segment}
