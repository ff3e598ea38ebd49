"""Shopify bulk operations, for every domain that runs them (the history backfill's exports, tag
sync's bulk mutations): their state as one dataclass, read through the shop's throttled sender,
one operation or several per call, and their JSONL result files streamed line by line."""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from segments.shops.graphql import ShopSender

ACTIVE = frozenset({"CREATED", "RUNNING", "CANCELING"})      # still going: poll again later
FIELDS = "id status errorCode objectCount url partialDataUrl query"
BULK_OPERATION = f"""query BulkOperation($id: ID!) {{
  bulkOperation(id: $id) {{ {FIELDS} }}
}}"""
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=300.0)


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str
    error_code: str | None
    object_count: int
    url: str | None
    partial_data_url: str | None    # what a failed or cancelled operation got done
    root: str | None                # the query's top-level connection (a query operation's)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _root_of(query: str | None) -> str | None:
    found = re.match(r"\s*\{\s*(\w+)", query or "")
    return found.group(1) if found else None


def bulk_operation_from(node: dict | None) -> BulkOperation | None:
    if node is None:
        return None
    return BulkOperation(id=node["id"], status=node["status"], error_code=node.get("errorCode"),
                         object_count=int(node.get("objectCount") or 0), url=node.get("url"),
                         partial_data_url=node.get("partialDataUrl"), root=_root_of(node.get("query")))


def bulk_operation_read(sender: ShopSender, operation_id: str) -> BulkOperation | None:
    """The operation's state (None for an id Shopify does not know)."""
    return bulk_operation_from(sender.call(BULK_OPERATION, {"id": operation_id}, 1).data.get("bulkOperation"))


def bulk_operations_document(count: int) -> str:
    """One query for `count` operations by id: variables $id0, $id1, …; fields op0, op1, …."""
    params = ", ".join(f"$id{i}: ID!" for i in range(count))
    body = " ".join(f"op{i}: bulkOperation(id: $id{i}) {{ {FIELDS} }}" for i in range(count))
    return f"query BulkOperations({params}) {{ {body} }}"


def bulk_operations_read(sender: ShopSender, operation_ids: list[str]) -> dict[str, BulkOperation | None]:
    """Several operations in one call, by id (None for an id Shopify does not know)."""
    if not operation_ids:
        return {}
    data = sender.call(bulk_operations_document(len(operation_ids)),
                       {f"id{i}": op for i, op in enumerate(operation_ids)}).data
    return {op: bulk_operation_from(data.get(f"op{i}")) for i, op in enumerate(operation_ids)}


@contextmanager
def result_file(url: str) -> Iterator[httpx.Response]:
    """An operation's result file as a streamed response (its status checked by the caller)."""
    with httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as http, http.stream("GET", url) as response:
        yield response


def jsonl_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines without holding more than one chunk."""
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        yield from parts
    if tail:
        yield tail
