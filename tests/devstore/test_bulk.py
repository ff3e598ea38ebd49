"""Bulk operations: query JSONL with __parentId, mutations over staged uploads, validation, limits, failures."""
from __future__ import annotations

import json
from typing import Any

import pytest

from devstore import bulk
from devstore.graphql_api import AdminAPI
from devstore.state import DevStore, Event, gid, iso, parse_gid, utcnow

from .test_graphql import (
    ALL_SCOPES,
    API_KEY,
    CUSTOMER_IDS,
    OLD_ORDER,
    OTHER_ORDER,
    RECENT_ORDER,
    SHOP,
    FakeClock,
    collect_events,
    data,
    seeded_api,
    stored_tags,
)

RUN_QUERY = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
  bulkOperation { id status } userErrors { field message code } } }"""
RUN_MUTATION = """mutation($m: String!, $path: String!) {
  bulkOperationRunMutation(mutation: $m, stagedUploadPath: $path, clientIdentifier: "shopseg-tag-sync") {
    bulkOperation { id status type } userErrors { field message code } } }"""
OPERATION = """query($id: ID!) { bulkOperation(id: $id) { id status errorCode type query createdAt completedAt
  objectCount rootObjectCount fileSize url partialDataUrl } }"""
CUSTOMERS_WITH_ORDERS = "{ customers { edges { node { id tags orders { edges { node { id name } } } } } } }"
TAG_MUTATION = ("mutation call($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) "
                "{ node { id } userErrors { field message } } }")


@pytest.fixture
def api(store: DevStore, devstore_config: Any) -> AdminAPI:
    return seeded_api(store, devstore_config, FakeClock())


@pytest.fixture
def events(store: DevStore) -> list[Event]:
    return collect_events(store)


def run_query(api: AdminAPI, query: str, **kwargs: Any) -> dict[str, Any]:
    return data(api, RUN_QUERY, {"q": query}, **kwargs)["bulkOperationRunQuery"]


def finish(api: AdminAPI, operation_gid: str, **kwargs: Any) -> dict[str, Any]:
    assert api.bulk.wait(parse_gid(operation_gid, "BulkOperation"), timeout=30)
    return data(api, OPERATION, {"id": operation_gid}, **kwargs)["bulkOperation"]


def jsonl(store: DevStore, operation: dict[str, Any], partial: bool = False) -> list[dict[str, Any]]:
    raw = bulk.bulk_result_bytes(store, parse_gid(operation["id"], "BulkOperation"), partial=partial)
    assert raw is not None
    return [json.loads(line) for line in raw.decode().splitlines()]


def stage(api: AdminAPI, store: DevStore, content: bytes) -> str:
    result = data(api, """mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES,
        filename: "vars.jsonl", mimeType: "text/jsonl", httpMethod: POST}]) {
        stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }""")
    target = result["stagedUploadsCreate"]["stagedTargets"][0]
    key = next(p["value"] for p in target["parameters"] if p["name"] == "key")
    assert bulk.staged_upload_receive(store, key, content)
    return key


# -- bulk queries --------------------------------------------------------------------------------

def test_bulk_query_writes_children_after_parents(api: AdminAPI, store: DevStore, events: list[Event]) -> None:
    started = run_query(api, CUSTOMERS_WITH_ORDERS)
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    operation = finish(api, started["bulkOperation"]["id"])
    assert operation["status"] == "COMPLETED" and operation["errorCode"] is None and operation["type"] == "QUERY"
    assert operation["objectCount"] == "7" and operation["rootObjectCount"] == "5"
    assert operation["url"] == f"http://127.0.0.1:8765/bulk-results/{parse_gid(operation['id'], 'BulkOperation')}.jsonl"
    assert operation["partialDataUrl"] is None and operation["completedAt"] is not None
    lines = jsonl(store, operation)
    assert int(operation["fileSize"]) == sum(len(json.dumps(line, separators=(",", ":"))) + 1 for line in lines)
    first, second = gid("Customer", CUSTOMER_IDS[0]), gid("Customer", CUSTOMER_IDS[1])
    assert lines[:4] == [
        {"id": first, "tags": ["vip", "Merchant Tag"]},
        {"id": gid("Order", RECENT_ORDER), "name": "#1001", "__parentId": first},
        {"id": second, "tags": []},
        {"id": gid("Order", OTHER_ORDER), "name": "#1003", "__parentId": second},
    ]
    assert [line["id"] for line in lines[4:]] == [gid("Customer", c) for c in CUSTOMER_IDS[2:]]
    assert events[-1] == Event(SHOP, "bulk_operations/finish", "BulkOperation", parse_gid(operation["id"],
                                                                                          "BulkOperation"))


def test_bulk_query_ignores_pagination_and_pages_the_root(api: AdminAPI, store: DevStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "ROOT_PAGE_SIZE", 2)
    query = ("{ customers(first: 1, sortKey: UPDATED_AT, reverse: true) "
             "{ nodes { id orders(first: 1) { nodes { id } } } } }")
    operation = finish(api, run_query(api, query, scopes=ALL_SCOPES | {"read_all_orders"})["bulkOperation"]["id"])
    lines = jsonl(store, operation)
    roots = [line["id"] for line in lines if "__parentId" not in line]
    assert roots == [gid("Customer", c) for c in reversed(CUSTOMER_IDS)]
    children = [line["id"] for line in lines if line.get("__parentId") == gid("Customer", CUSTOMER_IDS[0])]
    assert sorted(children) == sorted([gid("Order", RECENT_ORDER), gid("Order", OLD_ORDER)])


def test_bulk_query_with_a_filter_and_inline_objects(api: AdminAPI, store: DevStore) -> None:
    query = ('{ orders(query: "financial_status:paid") { edges { node { id totalPriceSet { shopMoney { amount } } '
             "customer { id } lineItems { edges { node { quantity product { productType } } } } } } } }")
    lines = jsonl(store, finish(api, run_query(api, query)["bulkOperation"]["id"]))
    assert lines == [
        {"id": gid("Order", OTHER_ORDER), "totalPriceSet": {"shopMoney": {"amount": "27.99"}},
         "customer": {"id": gid("Customer", CUSTOMER_IDS[1])}},
        {"quantity": 2, "product": {"productType": "Mugs"}, "__parentId": gid("Order", OTHER_ORDER)},
    ]


def test_empty_result_has_no_url(api: AdminAPI) -> None:
    operation = finish(api, run_query(api, '{ customers(query: "email:nobody@example.com") { edges { node { id } } } }')
                       ["bulkOperation"]["id"])
    assert operation["status"] == "COMPLETED" and operation["objectCount"] == "0" and operation["url"] is None


@pytest.mark.parametrize(("query", "message"), [
    ("{ customers { edges { node { id orders { edges { node { id lineItems { edges { node { id } } } } } } } } } }",
     "nesting depth"),
    ("{ products { edges { node { id variants { edges { node { id } } } } } } }".replace(
        "variants { edges { node { id } } }",
        "a: variants { edges { node { id } } } b: variants { edges { node { id } } } "
        "c: variants { edges { node { id } } } d: variants { edges { node { id } } } "
        "e: variants { edges { node { id } } }"), "more than 5 connections"),
    ('{ node(id: "gid://shopify/Customer/1") { id } }', "top level `node`"),
    ("{ shop { name } }", "at least one connection"),
    ("{ customers { edges { node { tags orders { edges { node { id } } } } } } }", "`id`"),
    ("{ customers { edges { node { id } } } ", "Invalid bulk query"),
    ("{ customers { edges { node { colour } } } }", "Cannot query field 'colour'"),
    ("mutation { tagsAdd(id: \"x\", tags: [\"a\"]) { userErrors { message } } }", "one query operation"),
])
def test_bulk_query_validation(api: AdminAPI, query: str, message: str) -> None:
    result = run_query(api, query)
    assert result["bulkOperation"] is None
    error = result["userErrors"][0]
    assert error["code"] == "INVALID" and error["field"] == ["query"] and message in error["message"]


def test_bulk_query_without_scope_fails_with_access_denied(api: AdminAPI) -> None:
    started = run_query(api, "{ customers { edges { node { id } } } }", scopes=frozenset({"read_orders"}))
    operation = finish(api, started["bulkOperation"]["id"])
    assert operation["status"] == "FAILED" and operation["errorCode"] == "ACCESS_DENIED"
    assert operation["url"] is None and operation["partialDataUrl"] is None


def test_failure_keeps_partial_data(api: AdminAPI, store: DevStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "ROOT_PAGE_SIZE", 2)
    calls: list[int] = []
    run = bulk.execute_bulk_page

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return run(*args, **kwargs)

    monkeypatch.setattr(bulk, "execute_bulk_page", flaky)
    operation = finish(api, run_query(api, "{ customers { edges { node { id } } } }")["bulkOperation"]["id"])
    assert operation["status"] == "FAILED" and operation["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert operation["url"] is None and operation["partialDataUrl"].endswith(".jsonl?partial=1")
    assert [line["id"] for line in jsonl(store, operation, partial=True)] == [gid("Customer", c)
                                                                              for c in CUSTOMER_IDS[:2]]


def test_concurrency_limit_is_five_per_shop_and_app(api: AdminAPI, store: DevStore) -> None:
    with store.tx() as conn:
        for index in range(5):
            conn.execute("INSERT INTO bulk_operations (id, shop, api_key, type, status, query, created_at) "
                         "VALUES (?, ?, ?, 'QUERY', 'RUNNING', '{}', ?)", (index + 1, SHOP, API_KEY, iso(utcnow())))
    refused = run_query(api, "{ customers { edges { node { id } } } }")
    assert refused["bulkOperation"] is None and refused["userErrors"][0]["code"] == "LIMIT_REACHED"
    other_app = run_query(api, "{ customers { edges { node { id } } } }", api_key="another-app")
    assert other_app["userErrors"] == []
    finish(api, other_app["bulkOperation"]["id"], api_key="another-app")


def test_current_bulk_operation_and_node(api: AdminAPI) -> None:
    started = run_query(api, "{ products { edges { node { id } } } }")
    operation_id = started["bulkOperation"]["id"]
    finish(api, operation_id)
    current = data(api, "{ currentBulkOperation { id status } mutation: currentBulkOperation(type: MUTATION) { id } }")
    assert current == {"currentBulkOperation": {"id": operation_id, "status": "COMPLETED"}, "mutation": None}
    node = data(api, "query($id: ID!) { node(id: $id) { ... on BulkOperation { query } } }", {"id": operation_id})
    assert node["node"]["query"] == "{ products { edges { node { id } } } }"
    assert data(api, OPERATION, {"id": operation_id}, api_key="another-app")["bulkOperation"] is None


def test_cancel(api: AdminAPI, store: DevStore) -> None:
    with store.tx() as conn:
        conn.execute("INSERT INTO bulk_operations (id, shop, api_key, type, status, query, created_at) "
                     "VALUES (77, ?, ?, 'QUERY', 'CREATED', '{}', ?)", (SHOP, API_KEY, iso(utcnow())))
    cancel = "mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }"
    result = data(api, cancel, {"id": gid("BulkOperation", 77)})["bulkOperationCancel"]
    assert result == {"bulkOperation": {"status": "CANCELING"}, "userErrors": []}
    again = data(api, cancel, {"id": gid("BulkOperation", 77)})["bulkOperationCancel"]
    assert again["userErrors"][0]["message"] == "A bulk operation cannot be canceled when it is canceling"


def test_orphaned_operations_fail_on_restart(api: AdminAPI, store: DevStore, events: list[Event]) -> None:
    with store.tx() as conn:
        conn.execute("INSERT INTO bulk_operations (id, shop, api_key, type, status, query, created_at) "
                     "VALUES (88, ?, ?, 'QUERY', 'RUNNING', '{}', ?)", (SHOP, API_KEY, iso(utcnow())))
    AdminAPI(store, api.config)
    operation = data(api, OPERATION, {"id": gid("BulkOperation", 88)})["bulkOperation"]
    assert operation["status"] == "FAILED" and operation["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert events == [Event(SHOP, "bulk_operations/finish", "BulkOperation", 88)]


# -- staged uploads and bulk mutations -----------------------------------------------------------

def test_staged_upload_target(api: AdminAPI, store: DevStore) -> None:
    result = data(api, """mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES,
        filename: "../vars.jsonl", mimeType: "text/jsonl", httpMethod: POST}]) {
        stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }""")
    target = result["stagedUploadsCreate"]["stagedTargets"][0]
    assert target["url"] == "http://127.0.0.1:8765/staged-uploads" and target["resourceUrl"] is None
    params = {p["name"]: p["value"] for p in target["parameters"]}
    assert params["key"].startswith(f"tmp/{SHOP}/bulk/") and params["key"].endswith("/vars.jsonl")
    assert params["Content-Type"] == "text/jsonl" and params["success_action_status"] == "201"
    assert params["acl"] == "private"
    assert bulk.staged_upload_receive(store, params["key"], b"{}\n")
    assert not bulk.staged_upload_receive(store, "tmp/unknown/key", b"{}\n")
    put = data(api, """mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES,
        filename: "v.jsonl", mimeType: "text/jsonl"}]) { stagedTargets { url } userErrors { field } } }""")
    assert put["stagedUploadsCreate"]["userErrors"] == [{"field": ["input", "0", "httpMethod"]}]


def test_bulk_mutation_runs_each_line(api: AdminAPI, store: DevStore, events: list[Event]) -> None:
    lines = [{"id": gid("Customer", CUSTOMER_IDS[1]), "tags": ["seg:vip"]},
             {"id": gid("Customer", 1), "tags": ["seg:vip"]},
             {"id": gid("Customer", CUSTOMER_IDS[2]), "tags": "seg:vip, seg:new"}]
    content = b"\n".join(json.dumps(line).encode() for line in lines[:2]) + b"\n\n" + json.dumps(lines[2]).encode()
    key = stage(api, store, content)
    started = data(api, RUN_MUTATION, {"m": TAG_MUTATION, "path": key})["bulkOperationRunMutation"]
    assert started["userErrors"] == [] and started["bulkOperation"]["type"] == "MUTATION"
    operation = finish(api, started["bulkOperation"]["id"])
    assert operation["status"] == "COMPLETED" and operation["objectCount"] == "3"
    assert operation["query"] == TAG_MUTATION
    results = jsonl(store, operation)
    assert results == [
        {"data": {"tagsAdd": {"node": {"id": gid("Customer", CUSTOMER_IDS[1])}, "userErrors": []}}, "__lineNumber": 0},
        {"data": {"tagsAdd": {"node": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}},
         "__lineNumber": 1},
        {"data": {"tagsAdd": {"node": {"id": gid("Customer", CUSTOMER_IDS[2])}, "userErrors": []}}, "__lineNumber": 3},
    ]
    assert stored_tags(store, CUSTOMER_IDS[2]) == ["seg:vip", "seg:new"]
    topics = [e.topic for e in events]
    assert topics.count("customer.tags_added") == 2 and topics[-1] == "bulk_operations/finish"
    current = data(api, "{ currentBulkOperation(type: MUTATION) { id } }")["currentBulkOperation"]
    assert current["id"] == operation["id"]


def test_bulk_mutation_line_errors_are_reported(api: AdminAPI, store: DevStore) -> None:
    key = stage(api, store, json.dumps({"id": gid("Customer", CUSTOMER_IDS[0])}).encode())
    operation = finish(api, data(api, RUN_MUTATION, {"m": TAG_MUTATION, "path": key})
                       ["bulkOperationRunMutation"]["bulkOperation"]["id"])
    [line] = jsonl(store, operation)
    assert line["data"] is None and "$tags" in line["errors"][0]["message"] and line["__lineNumber"] == 0


@pytest.mark.parametrize(("mutation", "content", "code"), [
    (TAG_MUTATION, None, "NO_SUCH_FILE"),
    (TAG_MUTATION, b"not json\n", "INVALID_STAGED_UPLOAD_FILE"),
    (TAG_MUTATION, b"[1, 2]\n", "INVALID_STAGED_UPLOAD_FILE"),
    ("{ shop { name } }", b"{}\n", "INVALID_MUTATION"),
    ("mutation { tagsAdd(id: \"x\" tags: [\"a\"]) { nodes } }", b"{}\n", "INVALID_MUTATION"),
    ("mutation { bulkOperationRunQuery(query: \"{}\") { userErrors { message } } }", b"{}\n", "INVALID_MUTATION"),
])
def test_bulk_mutation_refusals(api: AdminAPI, store: DevStore, mutation: str, content: bytes | None,
                                code: str) -> None:
    path = stage(api, store, content) if content is not None else f"tmp/{SHOP}/bulk/missing/vars.jsonl"
    result = data(api, RUN_MUTATION, {"m": mutation, "path": path})["bulkOperationRunMutation"]
    assert result["bulkOperation"] is None and result["userErrors"][0]["code"] == code


def test_uploads_are_private_to_their_shop(api: AdminAPI, store: DevStore) -> None:
    key = stage(api, store, b"{}\n")
    store.shop_create("other-shop.myshopify.com")
    status, _, body = api.execute(shop="other-shop.myshopify.com", api_key=API_KEY, scopes=set(ALL_SCOPES),
                                  api_version="2026-10",
                                  body=json.dumps({"query": RUN_MUTATION, "variables": {"m": TAG_MUTATION,
                                                                                         "path": key}}).encode())
    assert body["data"]["bulkOperationRunMutation"]["userErrors"][0]["code"] == "NO_SUCH_FILE"


def test_a_connection_under_an_inline_object_still_becomes_its_own_lines(api: AdminAPI, store: DevStore) -> None:
    # inline objects with no connection below are written as they are; one with a connection below is split
    query = ('{ orders(query: "financial_status:paid") { edges { node { id totalPriceSet { shopMoney { amount } } '
             "customer { id orders { edges { node { id } } } } } } } }")
    lines = jsonl(store, finish(api, run_query(api, query)["bulkOperation"]["id"]))
    assert lines[0] == {"id": gid("Order", OTHER_ORDER), "totalPriceSet": {"shopMoney": {"amount": "27.99"}},
                        "customer": {"id": gid("Customer", CUSTOMER_IDS[1])}}
    assert lines[1:] and all(set(line) == {"id", "__parentId"} for line in lines[1:])
    assert {line["id"] for line in lines[1:]} == {gid("Order", OTHER_ORDER)}
    assert {line["__parentId"] for line in lines[1:]} == {gid("Order", OTHER_ORDER)}   # the nearest node's id
