"""The GraphQL Admin API endpoint: parse, validate, price, throttle, execute and report cost like Shopify."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_schema,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.validation import (
    FieldsOnCorrectTypeRule,
    KnownArgumentNamesRule,
    KnownDirectivesRule,
    KnownFragmentNamesRule,
    KnownTypeNamesRule,
    NoUndefinedVariablesRule,
    NoUnusedFragmentsRule,
    NoUnusedVariablesRule,
    OverlappingFieldsCanBeMergedRule,
    ProvidedRequiredArgumentsRule,
    ScalarLeafsRule,
    UniqueArgumentNamesRule,
    ValuesOfCorrectTypeRule,
    VariablesInAllowedPositionRule,
)

from . import customer_segments, discounts, inventory
from .bucket import BucketRegistry, LeakyBucket, ThrottleStatus, plan_limits
from .bulk import BulkRunner
from .config import DevstoreConfig
from .cost import MAX_QUERY_COST, actual_cost, analyze, max_cost_message
from .graphql_context import RequestContext
from .graphql_metafields import ensure_tables
from .graphql_mutations import MUTATION_RESOLVERS
from .graphql_resolvers import QUERY_RESOLVERS
from .state import DevStore, utcnow

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("admin_schema.graphql")
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
MAX_COST_DOC = "https://shopify.dev/api/usage/limits#rate-limits"
BAD_REQUEST = {"errors": {"query": "Required parameter missing or invalid"}}
PARSE_CACHE_SIZE = 512

# graphql-ruby's error codes (what Shopify answers with) for graphql-core's validation rules.
RULE_CODES: dict[type, str] = {
    FieldsOnCorrectTypeRule: "undefinedField",
    KnownArgumentNamesRule: "argumentNotAccepted",
    ProvidedRequiredArgumentsRule: "missingRequiredArguments",
    ValuesOfCorrectTypeRule: "argumentLiteralsIncompatible",
    ScalarLeafsRule: "selectionMismatch",
    KnownTypeNamesRule: "undefinedType",
    NoUndefinedVariablesRule: "variableNotDefined",
    NoUnusedVariablesRule: "variableNotUsed",
    VariablesInAllowedPositionRule: "variableMismatch",
    KnownFragmentNamesRule: "undefinedFragment",
    NoUnusedFragmentsRule: "useAndDefineFragment",
    UniqueArgumentNamesRule: "argumentNotUnique",
    OverlappingFieldsCanBeMergedRule: "fieldConflict",
    KnownDirectivesRule: "undefinedDirective",
}


def build_admin_schema() -> GraphQLSchema:
    """The SDL with every root field bound to its resolver."""
    schema = build_schema(SCHEMA_PATH.read_text())
    for root, resolvers in ((schema.query_type, QUERY_RESOLVERS), (schema.mutation_type, MUTATION_RESOLVERS)):
        assert root is not None
        missing = set(root.fields) - set(resolvers)
        if missing:
            raise RuntimeError(f"admin_schema.graphql has {root.name} fields without resolvers: {sorted(missing)}")
        for name, resolver in resolvers.items():
            root.fields[name].resolve = resolver
    for abstract in ("Node", "WebhookSubscriptionEndpoint"):
        # Every object builder names its type, so abstract fields resolve from the value itself.
        schema.get_type(abstract).resolve_type = lambda value, _info, _type: value["__typename"]  # type: ignore[union-attr]
    return schema


def _error(message: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": extensions} if extensions else {"message": message}


def _formatted(error: GraphQLError, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = dict(error.formatted)
    if code is not None:
        body["extensions"] = {"code": code, **(error.extensions or {})}
    return body


class _ParseCache:
    """Recently seen documents with their validation errors; apps repeat the same few queries."""

    def __init__(self, schema: GraphQLSchema, size: int):
        self._schema, self._size = schema, size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[DocumentNode | None, list[dict[str, Any]]]] = OrderedDict()

    def get(self, query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
        with self._lock:
            if query in self._entries:
                self._entries.move_to_end(query)
                return self._entries[query]
        entry = self._parse(query)
        with self._lock:
            self._entries[query] = entry
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry

    def _parse(self, query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
        try:
            document = parse(query)
        except GraphQLError as exc:
            return None, [_formatted(exc, "parseError")]
        if not validate(self._schema, document):
            return document, []
        # Attribute each error to its rule, only on this slow path, to give Shopify's error codes.
        errors = [_formatted(e, RULE_CODES.get(rule, "validationError"))
                  for rule in specified_rules for e in validate(self._schema, document, [rule])]
        return None, errors


class AdminAPI:
    """The `/admin/api/{version}/graphql.json` endpoint of every devstore shop."""

    def __init__(self, store: DevStore, config: DevstoreConfig, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.config = config
        self.clock = clock
        self.sleep: Callable[[float], None] = time.sleep   # the latency fault's wait; tests may replace it
        for tables in (ensure_tables, customer_segments.ensure_tables, discounts.ensure_tables):
            tables(store)
        inventory.items_ensure(store)   # every variant has its inventory item, in older state files too
        self.schema = build_admin_schema()
        self.buckets = BucketRegistry(clock)
        # Per shop: (restore rate, bucket size) set through the control API instead of the plan's
        # (Shopify does not publish bucket sizes; an app must read them from throttleStatus), and
        # how many THROTTLED answers it got, which tests read to see that an app paced itself.
        self.bucket_sizes: dict[str, tuple[float, float]] = {}
        self.throttled: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self.bulk = BulkRunner(store, self.schema, self.run_document)
        self.bulk.recover_orphans()
        self._documents = _ParseCache(self.schema, PARSE_CACHE_SIZE)

    # -- the endpoint --------------------------------------------------------------------------
    def execute(self, *, shop: str, api_key: str, scopes: set[str], api_version: str,
                body: bytes) -> tuple[int, dict[str, str], object]:
        """Returns (http_status, extra_headers, json_body). The caller has already checked the access token.

        json_body is bytes, not JSON, when a 5xx fault is injected (sent verbatim as text/html).
        """
        headers = {"X-Request-Id": str(uuid.uuid4()), "X-Shopify-API-Version": api_version}
        latency = self.store.fault(shop, "latency")
        if latency:
            self.sleep(float(latency.get("ms", 0)) / 1000)
        failure = self._injected_failure(shop)
        if failure is not None:
            page = f"<html><body><h1>{failure} Service Error</h1></body></html>".encode()
            return failure, {**headers, "Content-Type": "text/html; charset=utf-8"}, page
        shop_row = self.store.shop(shop)
        if shop_row is None:
            return 404, headers, {"errors": "Not Found"}
        request = _decode(body)
        if request is None:
            return 400, headers, BAD_REQUEST
        query, variables, operation_name = request
        restore, size = (self.bucket_sizes.get(shop)
                         or plan_limits(shop_row["plan"], self.config.restore_multiplier))
        bucket = self.buckets.bucket(shop, api_key, capacity=size, restore_rate=restore)

        def answer(payload: dict[str, Any], requested: int, actual: int | None, status: ThrottleStatus) -> tuple[
                int, dict[str, str], object]:
            payload.setdefault("extensions", {})["cost"] = {
                "requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status.as_json()}
            return 200, headers, payload

        document, errors = self._documents.get(query)
        if document is None:
            return answer({"errors": errors}, 0, 0, bucket.status())
        operation = _operation(document, operation_name)
        if isinstance(operation, str):
            return answer({"errors": [_error(operation)]}, 0, 0, bucket.status())
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return answer({"errors": [_formatted(e, "variableInvalid") for e in coerced]}, 0, 0, bucket.status())
        analysis = analyze(self.schema, document, operation, coerced)
        # Argument errors first: a missing `first` is priced as a full page and would otherwise
        # hide behind MAX_COST_EXCEEDED.
        if analysis.errors:
            return answer({"errors": [e.formatted for e in analysis.errors]}, analysis.requested, None,
                          bucket.status())
        if analysis.requested > MAX_QUERY_COST:
            error = _error(max_cost_message(analysis.requested), code="MAX_COST_EXCEEDED",
                           cost=analysis.requested, maxCost=MAX_QUERY_COST, documentation=MAX_COST_DOC)
            return answer({"errors": [error]}, analysis.requested, None, bucket.status())
        taken, status = self._take(bucket, shop, analysis.requested)
        if not taken:
            with self._counts_lock:
                self.throttled[shop] = self.throttled.get(shop, 0) + 1
            error = _error("Throttled", code="THROTTLED", documentation=RATE_LIMITS_DOC)
            return answer({"errors": [error]}, analysis.requested, None, status)
        ctx = RequestContext(store=self.store, config=self.config, shop=shop, shop_row=shop_row, api_key=api_key,
                             scopes=frozenset(scopes), api_version=api_version, now=utcnow(), bulk=self.bulk)
        result = self.run_document(document, variables, ctx, operation_name)
        actual = min(analysis.requested, actual_cost(self.schema, document, operation, coerced, result.data))
        # Shopify charges the requested cost up front and refunds what the query did not use.
        status = bucket.refund(analysis.requested - actual)
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [self._public_error(e, headers["X-Request-Id"]) for e in result.errors]
        payload["data"] = result.data
        if ctx.search_warnings:
            payload["extensions"] = {"search": ctx.search_warnings}
        return answer(payload, analysis.requested, actual, status)

    def run_document(self, document: DocumentNode, variables: dict[str, Any], ctx: RequestContext,
                     operation_name: str | None = None) -> ExecutionResult:
        """Execute a validated document; bulk operations come through here too, bypassing cost and the bucket."""
        result = execute(self.schema, document, context_value=ctx, variable_values=variables,
                         operation_name=operation_name)
        assert isinstance(result, ExecutionResult)   # every resolver is synchronous
        return result

    # -- helpers -------------------------------------------------------------------------------
    def _take(self, bucket: LeakyBucket, shop: str, requested: int) -> tuple[bool, ThrottleStatus]:
        fault = self.store.fault(shop, "throttle")
        ceiling = float(fault.get("available", 0)) if fault is not None else None
        return bucket.try_take(requested, ceiling=ceiling)

    def _injected_failure(self, shop: str) -> int | None:
        """Consume one injected 5xx answer, if any; the fault goes away when its count runs out."""
        if self.store.fault(shop, "error5xx") is None:
            return None
        # Read and count down under one write lock so parallel requests never share an answer; the row
        # is looked up here (not with store.fault) to count down a shop-wide ('*') fault in place.
        with self.store.tx() as conn:
            row = conn.execute("SELECT shop, params FROM faults WHERE kind = 'error5xx' AND shop IN (?, '*') "
                               "ORDER BY shop = '*' LIMIT 1", (shop,)).fetchone()
            if row is None:
                return None
            params = json.loads(row["params"])
            count = params.get("count")
            if count is not None:
                remaining = int(count) - 1
                self.store.fault_set(row["shop"], "error5xx",
                                     {**params, "count": remaining} if remaining > 0 else None)
        return int(params.get("status", 502))

    @staticmethod
    def _public_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
        if error.original_error is None or isinstance(error.original_error, GraphQLError):
            return dict(error.formatted)
        # A devstore bug: log it, and answer the way Shopify answers its own internal errors.
        log.error("devstore GraphQL resolver failed at %s", error.path, exc_info=error.original_error)
        return {"message": f"Internal error. Looks like something went wrong on our end.\nRequest ID: {request_id} "
                           "(include this in support requests).",
                "path": error.path, "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}


def _decode(body: bytes) -> tuple[str, dict[str, Any], str | None] | None:
    """(query, variables, operationName) from a JSON body, or None when it is not a usable request."""
    try:
        request = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(request, dict) or not isinstance(request.get("query"), str) or not request["query"].strip():
        return None
    variables = request.get("variables") or {}
    if isinstance(variables, str):
        try:
            variables = json.loads(variables) if variables.strip() else {}
        except ValueError:
            return None
    if not isinstance(variables, dict):
        return None
    name = request.get("operationName")
    return request["query"], variables, name if isinstance(name, str) and name else None


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | str:
    """The operation to run, or the error message when there is none to pick."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        chosen = next((op for op in operations if op.name and op.name.value == name), None)
        if chosen is None:
            return f'No operation named "{name}"'
    elif len(operations) == 1:
        chosen = operations[0]
    else:
        return "An operation name is required"
    if chosen.operation == OperationType.SUBSCRIPTION:
        return "Subscriptions are not supported"
    return chosen
