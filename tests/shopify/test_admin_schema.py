"""Every GraphQL document the app can send is valid against Shopify's Admin schema of the pinned API
version (settings.SHOPIFY_API_VERSION, vendored in tests/shopify/schema/), with the variables the
app sends; the documents run inside bulk operations are checked too.

The documents are collected from the code, so a new one cannot go unchecked:

- every module-level string of the app's packages (also inside module-level dicts, lists and
  tuples) that parses as a GraphQL document is one; when it declares variables, VARIABLES must
  give values the app sends with it;
- every place that hands a document to the sender (`shop_graphql(query=…)`, `….call(…)`,
  `….graphql(…)`) is found in the source. One that passes a module-level constant is covered by
  the above; any other expression must be registered in BUILT with a function that builds, through
  the app's own code, every document it can send and their variables.

An unregistered send, a document without variables, or a registration that nothing matches any
more fails, naming it.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from graphql import GraphQLSchema

from segments.experiences import flow
from segments.mirror import backfill_plan, reconcile
from segments.shops import bulk_operations
from segments.shops import subscriptions as webhook_subscriptions
from segments.storefront.models import Pixel
from segments.storefront.pixel import pixel_settings
from segments.tags import bulk as tag_bulk
from segments.tags import metafield as tag_metafield
from segments.tags import transport as tag_transport
from segments.tags.models import TagBulkOperation
from segments.tags.plans import Plan, Want
from shopseg.shopify.client import GraphQLResult
from tests.shopify.admin_schema import shopify_admin_schema
from tests.shopify.admin_schema_checks import Case, as_document, problems_of
from tests.shopify.admin_schema_storefront import STOREFRONT_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
APP_PACKAGES = ("segments", "shopseg", "webhooks")
NOT_APP = ("devstore/",)     # the local Shopify: it answers documents and sends none
# What takes a document to send, as its `query` or first argument: shop_graphql(…), and the
# sender's and the client's methods (ShopSender.call, ShopClient.graphql).
SEND_FUNCTIONS = {"shop_graphql"}
SEND_METHODS = {"call", "graphql", "shop_graphql"}
LOOKS_LIKE_GRAPHQL = re.compile(r"^\s*(query|mutation|subscription)\b|^\s*\{")


# -- what the app sends with each document ---------------------------------------------------------
CURSOR = "eyJsYXN0X2lkIjo3MDAwMDAwMTAxLCJsYXN0X3ZhbHVlIjoiNzAwMDAwMDEwMSJ9"
CHANGED_SINCE = "updated_at:>='2026-10-01T00:00:00Z'"        # shop_reconcile's search


def _tag_plans() -> list[Plan]:
    """A customer losing one tag and gaining another, and one only gaining (tag sync's shapes)."""
    return [Plan(customer_id=1, shopify_id=7008001, change_ids=[1, 2], remove=[Want("seg-lapsed", 3, 7)],
                 add=[Want("seg-vip", 4, 2)]),
            Plan(customer_id=2, shopify_id=7008002, change_ids=[3], add=[Want("seg-vip", 4, 2)])]


def _bulk_tag_lines(add: bool) -> list[dict[str, Any]]:
    """The JSONL variables a bulk tag operation uploads, written by tag_bulk itself."""
    plans = [p for p in _tag_plans() if (p.add if add else p.remove)]
    op = TagBulkOperation(add=add, lines=[tag_bulk._line(p, add) for p in plans], line_count=len(plans))
    return [json.loads(line) for line in tag_bulk._jsonl(op).splitlines()]


def _pixel_settings() -> dict[str, str]:
    return pixel_settings(Pixel(ingest_key="k3y-abcdefghijklmnopqrstuvwx"))


def _backfill_queries() -> list[str]:
    """Every stage's bulk query, the orders stage cut into date slices as a large shop's is."""
    searches = backfill_plan.order_slices(oldest_at="2019-03-01T10:00:00Z", newest_at="2026-10-01T10:00:00Z",
                                     orders=600_000, per_slice=backfill_plan.ORDERS_PER_SLICE,
                                     most=backfill_plan.MAX_ORDER_SLICES)
    assert len(searches) > 1
    stages = [s for s in backfill_plan.STAGES if s.root != "orders"]
    stages += [dataclasses.replace(backfill_plan.STAGE_BY_ROOT["orders"], search=search) for search in searches]
    return [stage.query for stage in stages]


# Module constant (module:NAME, NAME[key] inside a dict, NAME[i] inside a list) -> variable sets.
VARIABLES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "segments.shops.subscriptions:LIST": lambda: [{"after": None}, {"after": CURSOR}],
    "segments.shops.subscriptions:CREATE": lambda: [
        {"topic": topic, "uri": webhook_subscriptions.webhook_uri()} for topic in webhook_subscriptions.WEBHOOK_TOPICS],
    "segments.shops.subscriptions:DELETE": lambda: [{"id": "gid://shopify/WebhookSubscription/892301"}],
    "segments.mirror.reconcile:ORDER_LINE_ITEMS": lambda: [{"id": "gid://shopify/Order/450789469",
                                                              "after": CURSOR}],
    "segments.tags.bulk:MUTATIONS[True]": lambda: _bulk_tag_lines(True),
    "segments.tags.bulk:MUTATIONS[False]": lambda: _bulk_tag_lines(False),
    "segments.tags.bulk:STAGED_UPLOAD": lambda: [{"input": [{
        "resource": "BULK_MUTATION_VARIABLES", "filename": "shopseg-tags-12.jsonl", "mimeType": "text/jsonl",
        "httpMethod": "POST"}]}],
    "segments.tags.bulk:RUN": lambda: [
        {"mutation": tag_bulk.MUTATIONS[add], "path": "tmp/21759409/bulk/2d278b12/shopseg-tags-12.jsonl",
         "client": "shopseg-tags-12"} for add in (False, True)],
    "segments.tags.metafield:DEFINITION": lambda: [{"definition": {
        "name": "shopseg segments", "namespace": tag_metafield.NAMESPACE, "key": tag_metafield.KEY,
        "type": tag_metafield.TYPE, "ownerType": "CUSTOMER",
        "description": "The customer's shopseg segments and since when (written by shopseg).",
        "access": {"storefront": "PUBLIC_READ"}}}],
    "segments.tags.metafield:SET": lambda: [{"metafields": [
        {"ownerId": f"gid://shopify/Customer/{n}", "namespace": tag_metafield.NAMESPACE, "key": tag_metafield.KEY,
         "type": tag_metafield.TYPE,
         "value": json.dumps([{"segment": "vip", "tag": "seg-vip", "since": "2026-10-01T10:00:00+00:00"}])}
        for n in range(7008001, 7008001 + tag_metafield.PER_CALL)]}],
    "segments.mirror.backfill_plan:BULK_RUN": lambda: [{"query": query} for query in _backfill_queries()],
    "segments.shops.bulk_operations:BULK_OPERATION": lambda: [{"id": "gid://shopify/BulkOperation/720918"}],
    "segments.storefront.pixel:PIXEL_CREATE": lambda: [{"webPixel": {"settings": json.dumps(_pixel_settings())}}],
    "segments.storefront.pixel:PIXEL_UPDATE": lambda: [{"id": "gid://shopify/WebPixel/100000001",
                                                        "webPixel": {"settings": json.dumps(_pixel_settings())}}],
    **STOREFRONT_VARIABLES}

# Module-level strings that parse as GraphQL but are pieces spliced into documents, not documents.
NOT_DOCUMENTS = {"segments.mirror.graphql:MONEY": "the `{ shopMoney { amount } }` selection of every MoneyBag field"}


# -- documents built at the call -------------------------------------------------------------------
def _reconcile_pages() -> list[Case]:
    return [Case(f"segments.mirror.reconcile:RESOURCES[{r.root}].query", r.query,
                 ({"query": CHANGED_SINCE, "after": None}, {"query": CHANGED_SINCE, "after": CURSOR}))
            for r in reconcile.RESOURCES]


class _Recording(tag_transport.Sender):
    """Tag sync's own sender with the network cut off: it builds its aliased document and variables
    exactly as in a run and keeps them instead of sending."""

    def __init__(self) -> None:
        super().__init__(client=None, throttle=None)  # type: ignore[arg-type]
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def call(self, query: str, variables: dict | None = None, cost: float | None = None) -> GraphQLResult:
        self.sent.append((query, variables or {}))
        return GraphQLResult(data={}, requested_cost=None, actual_cost=None, throttle=None)


def _tag_sync_batches() -> list[Case]:
    recorder = _Recording()
    plans = _tag_plans()
    recorder.send(plans)
    recorder.send(plans[1:])
    return [Case(f"segments.tags.sync:Sender.send[{n}]", query, (variables,))
            for n, (query, variables) in enumerate(recorder.sent)]


def _bulk_operation_polls() -> list[Case]:
    return [Case(f"segments.mirror.backfill:bulk_operations_document({count})",
                 bulk_operations.bulk_operations_document(count),
                 ({f"id{i}": f"gid://shopify/BulkOperation/{720918 + i}" for i in range(count)},))
            for count in (1, backfill_plan.RUNNING_EXPORTS)]


def _flow_trigger_batches() -> list[Case]:   # one trigger, and a full request of entries and exits
    payload = {"customer_id": 7_000_000_000, "Segment name": "VIP", "Segment tag": "seg:vip"}
    return [Case(f"segments.experiences.flow:mutation_document({count})", flow.mutation_document(count),
                 ({**{f"h{n}": flow.HANDLES[n % 2 == 0] for n in range(count)},
                   **{f"p{n}": payload for n in range(count)}},)) for count in (1, flow.PER_REQUEST)]


# (file, the sent expression as ast.unparse writes it) -> the documents it can send; None for the
# sender itself, which forwards what its callers give it.
BUILT: dict[tuple[str, str], Callable[[], list[Case]] | None] = {
    ("segments/shops/graphql.py", "query"): None,
    # The pixel's mutations pass through one helper; the documents are its module's constants (above).
    ("segments/storefront/pixel.py", "document"): None,
    ("segments/mirror/reconcile.py", "resource.query"): _reconcile_pages,
    ("segments/tags/transport.py", "mutation_document([add for _, add, _ in ops])"): _tag_sync_batches,
    ("segments/shops/bulk_operations.py", "bulk_operations_document(len(operation_ids))"): _bulk_operation_polls,
    ("segments/experiences/flow.py", "mutation_document(len(due))"): _flow_trigger_batches,   # Flow
}


# -- collecting ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """A place in the app that hands a document to the sender."""
    path: str
    line: int
    module: str
    expression: str


def _app_files() -> Iterator[tuple[str, str, ast.Module]]:
    """(path relative to the repository, module name, syntax tree) of every app module."""
    for package in APP_PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            if path.startswith(NOT_APP):
                continue
            module = path[:-3].replace("/", ".").removesuffix(".__init__")
            yield path, module, ast.parse(file.read_text(), filename=path)


def sends_in(path: str, module: str, tree: ast.Module) -> Iterator[Send]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if not (isinstance(func, ast.Name) and func.id in SEND_FUNCTIONS
                or isinstance(func, ast.Attribute) and func.attr in SEND_METHODS):
            continue
        sent = next((k.value for k in node.keywords if k.arg == "query"), node.args[0] if node.args else None)
        yield Send(path, node.lineno, module, ast.unparse(sent) if sent is not None else "")


def _has_graphql_literal(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and LOOKS_LIKE_GRAPHQL.match(node.value):
            return True
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                and LOOKS_LIKE_GRAPHQL.match(str(node.values[0].value)):
            return True
    return False


def _module_names(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) and node.value is not None else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _strings(label: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield label, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(f"{label}[{key!r}]" if isinstance(key, str) else f"{label}[{key}]", item)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            yield from _strings(f"{label}[{n}]", item)


def _documents() -> tuple[dict[str, Case], set[tuple[str, str]], list[Send]]:
    """The module-level documents (label -> case), the (module, NAME) constants holding one, and
    every send in the app."""
    cases: dict[str, Case] = {}
    constants: set[tuple[str, str]] = set()
    sends: list[Send] = []
    for path, module_name, tree in _app_files():
        found = list(sends_in(path, module_name, tree))
        sends += found
        if not found and not _has_graphql_literal(tree):
            continue
        module = importlib.import_module(module_name)
        for name in _module_names(tree):
            for label, text in _strings(f"{module_name}:{name}", getattr(module, name, None)):
                if label in NOT_DOCUMENTS or as_document(text) is None:
                    continue
                variables = VARIABLES.get(label)
                cases[label] = Case(label, text, tuple(variables()) if variables else ())
                if label == f"{module_name}:{name}":
                    constants.add((module_name, name))
    return cases, constants, sends


def account(sends: list[Send], constants: set[tuple[str, str]],
            built: dict[tuple[str, str], Callable[[], list[Case]] | None]) -> tuple[list[Case], list[str]]:
    """The documents built at the sends (from `built`), and the sends nothing accounts for: neither
    a module-level document of their module nor registered; plus registrations no send uses."""
    cases: list[Case] = []
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for send in sends:
        if (send.module, send.expression) in constants:
            continue
        key = (send.path, send.expression)
        if key not in built:
            problems.append(f"{send.path}:{send.line} sends `{send.expression}`, which is neither a module-level "
                            "document nor registered in BUILT (tests/shopify/test_admin_schema.py)")
            continue
        if key not in used and built[key] is not None:
            cases += built[key]()
        used.add(key)
    problems += [f"BUILT registers {path} `{expression}`, which no longer sends anything"
                 for path, expression in sorted(built.keys() - used)]
    return cases, problems


@dataclass
class Collected:
    cases: list[Case]
    problems: list[str]          # sends nothing covers, stale registrations


def collect() -> Collected:
    """Every document the app can send, with its variables, and what could not be accounted for."""
    cases, constants, sends = _documents()
    built, problems = account(sends, constants, BUILT)
    cases.update((case.label, case) for case in built)
    problems += [f"VARIABLES registers {label}, which is no longer a document"
                 for label in sorted(VARIABLES.keys() - cases.keys())]
    problems += [f"NOT_DOCUMENTS lists {label}, which is no longer there"
                 for label in NOT_DOCUMENTS if _lookup(label) is None]
    return Collected(list(cases.values()), problems)


def _lookup(label: str) -> str | None:
    module_name, _, name = label.partition(":")
    value = getattr(importlib.import_module(module_name), name, None)
    return value if isinstance(value, str) else None


COLLECTED = collect()


@pytest.fixture(scope="module")
def shopify_schema() -> GraphQLSchema:
    return shopify_admin_schema(settings.SHOPIFY_API_VERSION)


def test_the_schema_is_shopifys_for_the_pinned_version(shopify_schema: GraphQLSchema) -> None:
    assert shopify_schema.query_type is not None and shopify_schema.query_type.name == "QueryRoot"
    assert shopify_schema.mutation_type is not None
    assert "bulkOperationRunMutation" in shopify_schema.mutation_type.fields
    assert len(shopify_schema.type_map) > 3000      # the whole Admin API, not a subset


def test_every_send_is_accounted_for() -> None:
    assert COLLECTED.problems == []


def test_the_documents_cover_every_service_that_talks_to_shopify() -> None:
    """A floor against a collector that quietly finds nothing."""
    modules = {case.label.split(":")[0] for case in COLLECTED.cases}
    assert {"segments.shops.install", "segments.shops.subscriptions", "segments.mirror.reconcile",
            "segments.mirror.backfill", "segments.tags.sync", "segments.tags.bulk",
            "segments.tags.metafield"} <= modules
    assert len(COLLECTED.cases) >= 20


@pytest.mark.parametrize("case", COLLECTED.cases, ids=lambda case: case.label)
def test_the_document_is_valid_for_shopify(shopify_schema: GraphQLSchema, case: Case) -> None:
    known = {c.label: c for c in COLLECTED.cases}
    assert problems_of(shopify_schema, case, known) == []


# -- the checks can fail ---------------------------------------------------------------------------
def test_an_invalid_document_is_reported(shopify_schema: GraphQLSchema) -> None:
    wrong_field = Case("planted", "query { shop { id name plan { displayName notAField } } }")
    assert problems_of(shopify_schema, wrong_field, {}) == [
        "Cannot query field 'notAField' on type 'ShopPlan'. (line 1)"]
    wrong_variable = Case("planted", "mutation($topic: WebhookSubscriptionTopic!) { webhookSubscriptionDelete("
                                     "id: $topic) { userErrors { message } } }", ({"topic": "ORDERS_CREATE"},))
    assert any("Variable '$topic' of type 'WebhookSubscriptionTopic!' used in position expecting type 'ID!'" in p
               for p in problems_of(shopify_schema, wrong_variable, {}))
    create = next(c for c in COLLECTED.cases if c.label == "segments.shops.subscriptions:CREATE")
    compliance = dataclasses.replace(create, variables=({"topic": "CUSTOMERS_REDACT", "uri": "https://a.example/w"},))
    [problem] = problems_of(shopify_schema, compliance, {})
    assert problem.startswith("variables #0: Variable '$topic' got invalid value 'CUSTOMERS_REDACT'; Value "
                              "'CUSTOMERS_REDACT' does not exist in 'WebhookSubscriptionTopic' enum.")
    unregistered = dataclasses.replace(create, variables=())
    assert problems_of(shopify_schema, unregistered, {}) == [
        "declares variables, but no values the app sends are registered (VARIABLES or BUILT)"]


def test_a_bad_bulk_query_inside_a_valid_mutation_is_reported(shopify_schema: GraphQLSchema) -> None:
    run = next(c for c in COLLECTED.cases if c.label == "segments.mirror.backfill_plan:BULK_RUN")
    nested = ("{ customers { edges { node { id orders { edges { node { id "
              "lineItems { edges { node { id } } } } } } } } } }")
    planted = dataclasses.replace(run, variables=({"query": "{ customers { edges { node { id email2 } } } }"},
                                                  {"query": nested}, {"query": "{ shop { id } }"}))
    found = problems_of(shopify_schema, planted, {})
    assert len(found) == 3
    assert "Cannot query field 'email2' on type 'Customer'." in found[0]
    assert "3 deep" in found[1] and "at least one connection" in found[2]


def test_a_send_that_is_not_registered_is_reported() -> None:
    source = ("from segments.shops.graphql import shop_graphql\n"
              "DETAILS = 'query { shop { id } }'\n"
              "def details(shop_id, field):\n"
              "    shop_graphql(shop_id=shop_id, query=DETAILS)\n"
              "    return shop_graphql(shop_id=shop_id, query=f'query {{ shop {{ {field} }} }}')\n")
    tree = ast.parse(source)
    sends = list(sends_in("segments/services/planted.py", "segments.services.planted", tree))
    constants = {("segments.services.planted", name) for name in _module_names(tree)}
    assert account(sends, constants, {}) == ([], [
        "segments/services/planted.py:5 sends `f'query {{ shop {{ {field} }} }}'`, which is neither a module-level "
        "document nor registered in BUILT (tests/shopify/test_admin_schema.py)"])
    stale = {("segments/services/gone.py", "build()"): None}
    assert account(sends[:1], constants, stale) == ([], [
        "BUILT registers segments/services/gone.py `build()`, which no longer sends anything"])
