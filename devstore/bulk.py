"""Bulk operations: staged uploads, bulk query and bulk mutation runs in background threads, JSONL results.

Shopify's rules (https://shopify.dev/docs/api/usage/bulk-operations/queries and .../imports):
- a bulk query has at most 5 connections, nested at most 2 deep, no top-level `node`/`nodes`, and its
  pagination arguments are ignored; the JSONL output puts each connection node on its own line, with
  nested connection children on separate lines carrying `"__parentId"`, after their parent;
- a bulk mutation runs one mutation once per line of an uploaded JSONL variables file and writes
  one `{"data": …, "__lineNumber": n}` line per input line (0-based, in input order);
- up to 5 operations run at once per shop and app (API 2026-01 and later);
- `bulk_operations/finish` fires when an operation ends, whatever its status.
"""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLSchema

from .bulk_exec import execute_bulk_page
from .bulk_plan import Plan, mutation_document, query_plan
from .graphql_context import BulkPage, RequestContext
from .state import DevStore, Event, iso, utcnow

MAX_CONCURRENT_OPERATIONS = 5
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
ROOT_PAGE_SIZE = 250            # how many root objects are read per step of a bulk query
ACTIVE_STATUSES = "('CREATED', 'RUNNING', 'CANCELING')"   # an SQL list: operations that hold a slot

Executor = Callable[[DocumentNode, dict[str, Any], RequestContext], ExecutionResult]
UserError = dict[str, Any]


# -- staged uploads and result files (called by the HTTP server) --------------------------------

def staged_target(store: DevStore, public_url: str, shop: str, filename: str, mime_type: str) -> dict[str, Any]:
    """Reserve an upload key and describe the form the client must POST (as Shopify's GCS targets do)."""
    key = f"tmp/{shop}/bulk/{uuid.uuid4()}/{PurePosixPath(filename).name or 'vars.jsonl'}"
    with store.tx() as conn:
        conn.execute("INSERT INTO staged_uploads (key, shop, created_at, content) VALUES (?, ?, ?, NULL)",
                     (key, shop, iso(utcnow())))
    return {
        "url": f"{public_url}/staged-uploads",
        "resourceUrl": None,    # Shopify returns null for BULK_MUTATION_VARIABLES: the key is the path
        "parameters": [{"name": "key", "value": key},
                       {"name": "Content-Type", "value": mime_type},
                       {"name": "success_action_status", "value": "201"},
                       {"name": "acl", "value": "private"}],
    }


def staged_upload_receive(store: DevStore, key: str, content: bytes) -> bool:
    """Store an uploaded variables file under a key handed out by stagedUploadsCreate."""
    if len(content) > MAX_UPLOAD_BYTES:
        return False
    with store.tx() as conn:
        updated = conn.execute("UPDATE staged_uploads SET content = ? WHERE key = ?", (content, key)).rowcount
    return updated == 1


def bulk_result_bytes(store: DevStore, operation_id: int, partial: bool = False) -> bytes | None:
    column = "partial_result" if partial else "result"
    row = store.conn().execute(f"SELECT {column} AS data FROM bulk_operations WHERE id = ?",
                               (operation_id,)).fetchone()
    return bytes(row["data"]) if row is not None and row["data"] is not None else None


# -- JSONL --------------------------------------------------------------------------------------

def _split(value: dict[str, Any], plan: Plan) -> tuple[dict[str, Any], list[tuple[Plan, dict[str, Any]]]]:
    """Inline fields of one object, and the connections under it that become their own lines."""
    line: dict[str, Any] = {}
    nested: list[tuple[Plan, dict[str, Any]]] = []
    for key, item in value.items():
        child = plan.children.get(key)
        if child is None or item is None or not (child.connection or child.nested):
            line[key] = item
        elif child.connection:
            nested.append((child, item))
        elif isinstance(item, list):
            parts = [_split(element, child) for element in item]
            line[key] = [part for part, _ in parts]
            nested += [n for _, inner in parts for n in inner]
        else:
            line[key], inner = _split(item, child)
            nested += inner
    return line, nested


def _nodes(connection: dict[str, Any], plan: Plan) -> Iterator[dict[str, Any]]:
    # A query may ask for both edges{node} and nodes; each object is written once.
    key, node_key = plan.node_paths[0]
    for item in connection.get(key) or []:
        node = item.get(node_key) if node_key is not None else item
        if node is not None:
            yield node


def flatten(node: dict[str, Any], plan: Plan, parent_id: str | None) -> Iterator[dict[str, Any]]:
    """One object and its nested connections' objects, parent first, as JSONL lines."""
    line, nested = _split(node, plan)
    if parent_id is not None:
        line["__parentId"] = parent_id
    yield line
    own_id = node.get("id", parent_id)
    for child_plan, connection in nested:
        for child in _nodes(connection, child_plan):
            yield from flatten(child, child_plan, own_id)


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dump(line: dict[str, Any]) -> bytes:
    return _encode(line).encode() + b"\n"


# -- the runner ---------------------------------------------------------------------------------

@dataclass
class _Output:
    file: Any = field(default_factory=lambda: tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024))
    objects: int = 0
    roots: int = 0

    def write(self, line: dict[str, Any], *, root: bool) -> None:
        self.file.write(_dump(line))
        self.objects += 1
        self.roots += int(root)

    def data(self) -> bytes:
        self.file.seek(0)
        return self.file.read()


class BulkRunner:
    """Starts, runs, cancels and finishes bulk operations; one daemon thread per running operation."""

    def __init__(self, store: DevStore, schema: GraphQLSchema, execute: Executor):
        self.store = store
        self.schema = schema
        self._execute = execute
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def recover_orphans(self) -> None:
        """Operations left active by a previous server process can never finish: fail them."""
        stamp = iso(utcnow())
        with self.store.tx() as conn:
            orphans = conn.execute(f"SELECT id, shop FROM bulk_operations WHERE status IN {ACTIVE_STATUSES}")
            for row in orphans.fetchall():
                conn.execute("UPDATE bulk_operations SET status = 'FAILED', error_code = 'INTERNAL_SERVER_ERROR', "
                             "completed_at = ? WHERE id = ?", (stamp, row["id"]))
                self.store.emit(Event(row["shop"], "bulk_operations/finish", "BulkOperation", row["id"]))

    def wait(self, operation_id: int, timeout: float | None = None) -> bool:
        """Block until an operation's thread ends (tests, benchmarks). True when it has ended."""
        with self._lock:
            thread = self._threads.get(operation_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _create(self, ctx: RequestContext, kind: str, text: str, staged_path: str | None,
                client_identifier: str | None) -> sqlite3.Row | None:
        op_id = self.store.next_id("BulkOperation")   # reserved before the write lock, as next_id requires
        with self.store.tx() as conn:
            running = conn.execute(f"SELECT COUNT(*) FROM bulk_operations WHERE shop = ? AND api_key = ? "
                                   f"AND status IN {ACTIVE_STATUSES}", (ctx.shop, ctx.api_key)).fetchone()[0]
            if running >= MAX_CONCURRENT_OPERATIONS:
                return None
            conn.execute("INSERT INTO bulk_operations (id, shop, api_key, type, status, query, staged_upload_path, "
                         "client_identifier, created_at) VALUES (?, ?, ?, ?, 'CREATED', ?, ?, ?, ?)",
                         (op_id, ctx.shop, ctx.api_key, kind, text, staged_path, client_identifier, iso(utcnow())))
            return conn.execute("SELECT * FROM bulk_operations WHERE id = ?", (op_id,)).fetchone()

    def _launch(self, op_id: int, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            finally:
                with self._lock:   # a finished operation needs no thread handle: wait() then returns at once
                    self._threads.pop(op_id, None)

        thread = threading.Thread(target=run, name=f"devstore-bulk-{op_id}", daemon=True)
        with self._lock:
            self._threads[op_id] = thread
        thread.start()

    # -- starting ----------------------------------------------------------------------------
    def start_query(self, ctx: RequestContext, text: str) -> tuple[sqlite3.Row | None, list[UserError]]:
        document, plan, errors = query_plan(self.schema, text)
        if errors:
            return None, [{"field": ["query"], "message": m, "code": "INVALID"} for m in errors]
        assert document is not None and plan is not None
        row = self._create(ctx, "QUERY", text, None, None)
        if row is None:
            return None, [{"field": None, "code": "LIMIT_REACHED",
                           "message": "Bulk operations limit reached. Please try again later."}]
        run_ctx = dataclasses.replace(ctx, bulk_page=BulkPage(ROOT_PAGE_SIZE), search_warnings=[])
        self._launch(row["id"], lambda: self._guard(row["id"], ctx.shop, lambda out: self._run_query(
            row["id"], run_ctx, document, plan, out)))
        return row, []

    def start_mutation(self, ctx: RequestContext, text: str, staged_path: str,
                       client_identifier: str | None) -> tuple[sqlite3.Row | None, list[UserError]]:
        document, errors = mutation_document(self.schema, text)
        if errors:
            return None, [{"field": ["mutation"], "message": m, "code": "INVALID_MUTATION"} for m in errors]
        assert document is not None
        upload = self.store.conn().execute("SELECT content FROM staged_uploads WHERE key = ? AND shop = ?",
                                           (staged_path, ctx.shop)).fetchone()
        if upload is None or upload["content"] is None:
            return None, [{"field": ["stagedUploadPath"], "code": "NO_SUCH_FILE",
                           "message": "The JSONL file could not be found. Try uploading the file again, and check "
                                      "that you've entered the URL correctly for the stagedUploadPath mutation "
                                      "argument."}]
        lines = _variable_lines(bytes(upload["content"]))
        if lines is None:
            return None, [{"field": ["stagedUploadPath"], "code": "INVALID_STAGED_UPLOAD_FILE",
                           "message": "The JSONL file submitted via the stagedUploadsCreate mutation is invalid. "
                                      "Update the file and try again."}]
        row = self._create(ctx, "MUTATION", text, staged_path, client_identifier)
        if row is None:
            return None, [{"field": None, "code": "LIMIT_REACHED",
                           "message": "Bulk operations limit reached. Please try again later."}]
        run_ctx = dataclasses.replace(ctx, search_warnings=[])
        self._launch(row["id"], lambda: self._guard(row["id"], ctx.shop, lambda out: self._run_mutation(
            row["id"], run_ctx, document, lines, out)))
        return row, []

    def cancel(self, ctx: RequestContext, op_id: int) -> tuple[sqlite3.Row | None, list[UserError]]:
        with self.store.tx() as conn:
            row = conn.execute("SELECT * FROM bulk_operations WHERE id = ? AND shop = ? AND api_key = ?",
                               (op_id, ctx.shop, ctx.api_key)).fetchone()
            if row is None:
                return None, [{"field": ["id"], "code": "INVALID", "message": "Bulk operation does not exist"}]
            if row["status"] not in ("CREATED", "RUNNING"):
                return row, [{"field": ["id"], "code": "INVALID",
                              "message": f"A bulk operation cannot be canceled when it is {row['status'].lower()}"}]
            conn.execute("UPDATE bulk_operations SET status = 'CANCELING' WHERE id = ?", (op_id,))
            return conn.execute("SELECT * FROM bulk_operations WHERE id = ?", (op_id,)).fetchone(), []

    # -- running -----------------------------------------------------------------------------
    def _guard(self, op_id: int, shop: str, run: Callable[[_Output], str | None]) -> None:
        """Run an operation to its end state; `run` returns an error code, or None when it completed."""
        out = _Output()
        with self.store.tx() as conn:
            conn.execute("UPDATE bulk_operations SET status = 'RUNNING' WHERE id = ? AND status = 'CREATED'", (op_id,))
        try:
            error_code = run(out)
        except Exception:   # noqa: BLE001 - any crash must still end the operation, as Shopify's do
            error_code = "INTERNAL_SERVER_ERROR"
        data = out.data()
        with self.store.tx() as conn:
            canceled = conn.execute("SELECT status FROM bulk_operations WHERE id = ?",
                                    (op_id,)).fetchone()["status"] == "CANCELING"
            status = "CANCELED" if canceled else ("FAILED" if error_code else "COMPLETED")
            conn.execute(
                "UPDATE bulk_operations SET status = ?, error_code = ?, object_count = ?, root_object_count = ?, "
                "file_size = ?, result = ?, partial_result = ?, completed_at = ? WHERE id = ?",
                (status, None if canceled else error_code, out.objects, out.roots,
                 len(data) if status == "COMPLETED" else None,
                 data if status == "COMPLETED" and out.objects else None,
                 data if status != "COMPLETED" and data else None, iso(utcnow()), op_id))
            self.store.emit(Event(shop, "bulk_operations/finish", "BulkOperation", op_id))
        out.file.close()

    def _progress(self, op_id: int, out: _Output) -> bool:
        """Publish counts so far; False when the operation has been asked to stop."""
        with self.store.tx() as conn:
            conn.execute("UPDATE bulk_operations SET object_count = ?, root_object_count = ? WHERE id = ?",
                         (out.objects, out.roots, op_id))
            status = conn.execute("SELECT status FROM bulk_operations WHERE id = ?", (op_id,)).fetchone()["status"]
        return status != "CANCELING"

    def _run_query(self, op_id: int, ctx: RequestContext, document: DocumentNode, root: Plan,
                   out: _Output) -> str | None:
        assert ctx.bulk_page is not None
        key, plan = next(iter(root.children.items()))
        while self._progress(op_id, out):
            ctx.bulk_page.has_next = False
            data = execute_bulk_page(self.schema, document, ctx)
            if data is None:  # not a plain selection, or an error to report: graphql-core's way
                ctx.bulk_page.has_next = False
                result = self._execute(document, {}, ctx)
                if result.errors:
                    denied = any((e.extensions or {}).get("code") == "ACCESS_DENIED" for e in result.errors)
                    return "ACCESS_DENIED" if denied else "INTERNAL_SERVER_ERROR"
                data = result.data
            value = (data or {}).get(key)
            if value is not None:
                roots = _nodes(value, plan) if plan.connection else iter([value])
                for node in roots:
                    for index, line in enumerate(flatten(node, plan, None)):
                        out.write(line, root=index == 0)
            if not ctx.bulk_page.has_next:
                return None
            ctx.bulk_page.after = ctx.bulk_page.next_after
        return None

    def _run_mutation(self, op_id: int, ctx: RequestContext, document: DocumentNode,
                      lines: list[tuple[int, dict[str, Any]]], out: _Output) -> str | None:
        for position, (number, variables) in enumerate(lines):
            if position % 100 == 0 and not self._progress(op_id, out):
                return None
            result = self._execute(document, variables, ctx)
            line: dict[str, Any] = {"data": result.data}
            if result.errors:
                line["errors"] = [e.formatted for e in result.errors]
            line["__lineNumber"] = number
            out.write(line, root=True)
        return None


def _variable_lines(content: bytes) -> list[tuple[int, dict[str, Any]]] | None:
    """(0-based line number, variables) for each non-blank line; None when the file is not JSONL of objects."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(text.splitlines()):
        if not raw.strip():
            continue
        try:
            variables = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(variables, dict):
            return None
        lines.append((number, variables))
    return lines
