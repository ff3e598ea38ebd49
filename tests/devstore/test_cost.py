"""Calculated query cost, MAX_COST_EXCEEDED, argument limits, and the leaky bucket with an injected clock."""
from __future__ import annotations

import threading
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values

from devstore.bucket import BucketRegistry, LeakyBucket, plan_limits
from devstore.config import DevstoreConfig
from devstore.cost import actual_cost, analyze
from devstore.graphql_api import AdminAPI, build_admin_schema
from devstore.graphql_context import RequestContext
from devstore.state import DevStore, gid, utcnow

from .test_graphql import ALL_SCOPES, CUSTOMER_IDS, SHOP, TAGS_ADD, FakeClock, gql, seeded_api

SCHEMA = build_admin_schema()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(store: DevStore, devstore_config: Any, clock: FakeClock) -> AdminAPI:
    return seeded_api(store, devstore_config, clock)


def requested(query: str, variables: dict[str, Any] | None = None) -> tuple[int, list[str]]:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    coerced = get_variable_values(SCHEMA, operation.variable_definitions or (), variables or {})
    assert isinstance(coerced, dict)
    analysis = analyze(SCHEMA, document, operation, coerced)
    return analysis.requested, [e.message for e in analysis.errors]


def actual(query: str, result: dict[str, Any]) -> int:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return actual_cost(SCHEMA, document, operation, {}, result)


# -- requested cost ------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "cost"), [
    ("{ shop { id name email } }", 1),                                          # object 1, scalars 0
    ("{ shop { name plan { displayName } } }", 2),                              # nested object
    ("{ customers(first: 10) { edges { cursor node { id } } pageInfo { hasNextPage } } }", 12),   # 2 + 10 x 1
    ("{ customers(first: 10) { nodes { id amountSpent { amount } } } }", 22),   # 2 + 10 x (1 + 1)
    ("{ customers(last: 5) { nodes { id } } }", 7),
    ("{ customers(first: 10) { nodes { id orders(first: 5) { nodes { id } } } } }", 82),   # 2 + 10 x (1 + 2 + 5)
    ("{ a: shop { name } b: shop { name } }", 2),                               # aliases count separately
    ("{ customers(first: 2) { edges { node { id } } nodes { id tags } } }", 4),  # edges and nodes: one node set
    ("{ __typename shop { __typename } }", 1),
])
def test_requested_cost(query: str, cost: int) -> None:
    assert requested(query) == (cost, [])


def test_abstract_types_cost_their_most_expensive_selection() -> None:
    query = """query($id: ID!) { node(id: $id) { id
        ... on Customer { lastOrder { id } orders(first: 3) { nodes { id } } }
        ... on Order { customer { id } } } }"""
    # Customer: 1 + lastOrder 1 + orders (2 + 3) = 7; Order: 1 + customer 1 = 2; the max wins.
    assert requested(query, {"id": "gid://shopify/Customer/1"}) == (7, [])


def test_fragments_variables_and_skip() -> None:
    query = """query($n: Int!, $skip: Boolean!) { customers(first: $n) { nodes { ...C } }
        shop @skip(if: $skip) { name } }
        fragment C on Customer { id orders(first: 2) { nodes { id } } }"""
    assert requested(query, {"n": 4, "skip": True}) == (2 + 4 * (1 + 2 + 2), [])
    assert requested(query, {"n": 4, "skip": False})[0] == 2 + 4 * 5 + 1


def test_mutations_cost_ten_each() -> None:
    assert requested('mutation { tagsAdd(id: "gid://shopify/Customer/1", tags: ["a"]) { node { id } '
                     "userErrors { field message } } }") == (10, [])
    assert requested('mutation { a: tagsAdd(id: "x", tags: ["a"]) { node { id } } '
                     'b: tagsRemove(id: "x", tags: ["a"]) { node { id } } }')[0] == 20


def test_page_size_limits() -> None:
    cost, errors = requested("{ customers(first: 251) { nodes { id } } }")
    assert cost == 2 + 250 and errors == ["first cannot exceed 250. To query larger amounts of data with fewer "
                                          "limits, bulk operations should be used instead."]
    assert requested("{ customers { nodes { id } } }")[1] == ["you must provide one of first or last"]
    tags = [f"t{i}" for i in range(251)]
    assert requested('mutation($t: [String!]!) { tagsAdd(id: "x", tags: $t) { node { id } } }', {"t": tags})[1] == [
        "The input array size of 251 is greater than the maximum allowed of 250."]


# -- actual cost ---------------------------------------------------------------------------------

def test_actual_cost_counts_returned_nodes() -> None:
    query = "{ customers(first: 10) { nodes { id orders(first: 5) { nodes { id } } } } }"
    result = {"customers": {"nodes": [{"id": "a", "orders": {"nodes": [{"id": "o1"}, {"id": "o2"}]}},
                                      {"id": "b", "orders": {"nodes": []}}]}}
    # 2 + (1 + 2 + 2) + (1 + 2 + 0)
    assert actual(query, result) == 10
    assert actual("{ customer(id: \"x\") { id lastOrder { id } } }", {"customer": None}) == 1
    assert actual("{ customers(first: 10) { edges { node { id } } } }",
                  {"customers": {"edges": [{"node": {"id": "a"}}]}}) == 3


# -- through the endpoint ------------------------------------------------------------------------

def test_every_response_reports_cost_and_refunds_the_unused_part(api: AdminAPI) -> None:
    body = gql(api, "{ customers(first: 50) { nodes { id } } }")
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 52
    assert cost["actualQueryCost"] == 2 + len(CUSTOMER_IDS)
    # Charged 52 up front, refunded 52 - 7: what remains is the bucket less the actual cost.
    assert cost["throttleStatus"] == {"maximumAvailable": 2000.0, "currentlyAvailable": 2000 - 7,
                                      "restoreRate": 100.0}


def test_max_cost_exceeded(api: AdminAPI) -> None:
    body = gql(api, "{ customers(first: 250) { nodes { id orders(first: 10) { nodes { id } } } } }")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["message"].startswith("Query cost is 3252, which exceeds the single query max cost limit (1000).")
    assert error["extensions"]["cost"] == 3252 and error["extensions"]["maxCost"] == 1000
    assert body["extensions"]["cost"]["requestedQueryCost"] == 3252
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000   # nothing charged
    assert "data" not in body


def test_page_size_errors_are_not_executed(api: AdminAPI) -> None:
    body = gql(api, "{ customers(first: 300) { nodes { id } } }")
    assert body["errors"][0]["message"].startswith("first cannot exceed 250")
    assert "data" not in body
    # A missing page size is priced as 250 but reported as what it is, not as MAX_COST_EXCEEDED.
    body = gql(api, "{ customers(first: 10) { nodes { id orders { nodes { id } } } } }")
    assert [e["message"] for e in body["errors"]] == ["you must provide one of first or last"]


# -- the bucket ----------------------------------------------------------------------------------

def test_plan_limits() -> None:
    assert plan_limits("basic") == (100.0, 2000.0)
    assert plan_limits("shopify") == (100.0, 2000.0)
    assert plan_limits("advanced") == (200.0, 4000.0)
    assert plan_limits("plus") == (1000.0, 20000.0)
    assert plan_limits("enterprise") == (2000.0, 40000.0)
    assert plan_limits("plus", 0.5) == (500.0, 10000.0)


def test_bucket_restores_over_time() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(2000, 100, clock)
    assert bucket.try_take(1500)[0]
    ok, status = bucket.try_take(600)
    assert not ok and status.currently_available == 500
    clock.now += 1.0
    ok, status = bucket.try_take(600)
    assert ok and status.currently_available == 0
    clock.now += 100
    assert bucket.status().currently_available == 2000   # never above the bucket size


def test_bucket_is_thread_safe() -> None:
    bucket = LeakyBucket(1000, 0, FakeClock())
    taken: list[bool] = []

    def worker() -> None:
        for _ in range(100):
            taken.append(bucket.try_take(1)[0])

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == 1000 and bucket.status().currently_available == 0


def test_buckets_are_per_shop_and_app() -> None:
    registry = BucketRegistry(FakeClock())
    first = registry.bucket(SHOP, "app-a", capacity=2000, restore_rate=100)
    first.try_take(2000)
    assert registry.bucket(SHOP, "app-b", capacity=2000, restore_rate=100).status().currently_available == 2000
    assert registry.bucket("other.myshopify.com", "app-a", capacity=2000,
                           restore_rate=100).status().currently_available == 2000
    assert registry.bucket(SHOP, "app-a", capacity=2000, restore_rate=100) is first


def test_throttled_then_restored(store: DevStore, api: AdminAPI, clock: FakeClock) -> None:
    small = AdminAPI(store, DevstoreConfig(restore_multiplier=0.1), clock=clock)   # 10 points/s, bucket 200
    for _ in range(19):   # mutations cost 10, requested and actual
        assert "errors" not in gql(small, TAGS_ADD, {"id": gid("Customer", CUSTOMER_IDS[0]), "tags": ["x"]})
    query = "{ customers(first: 10) { nodes { id } } }"   # requests 12 with 10 available, though it would use 7
    body = gql(small, query)
    assert body == {
        "errors": [{"message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": 12, "actualQueryCost": None,
                                "throttleStatus": {"maximumAvailable": 200.0, "currentlyAvailable": 10,
                                                   "restoreRate": 10.0}}},
    }
    clock.now += 0.19
    assert gql(small, query)["errors"][0]["extensions"]["code"] == "THROTTLED"
    clock.now += 0.02   # Shopify's advice: wait (requested - available) / restoreRate
    cost = gql(small, query)["extensions"]["cost"]
    assert cost["actualQueryCost"] == 7 and cost["throttleStatus"]["currentlyAvailable"] == 5


def test_restore_multiplier_and_plan(store: DevStore, clock: FakeClock) -> None:
    store.conn().execute("UPDATE shops SET plan = 'plus' WHERE domain = ?", (SHOP,))
    api = AdminAPI(store, DevstoreConfig(restore_multiplier=2.0), clock=clock)
    status = gql(api, "{ shop { name } }")["extensions"]["cost"]["throttleStatus"]
    assert status == {"maximumAvailable": 40000.0, "currentlyAvailable": 39999, "restoreRate": 2000.0}


def test_a_bucket_sized_for_the_shop_and_its_throttled_answers_counted(api: AdminAPI) -> None:
    """Tests size a shop's bucket apart from its plan (Shopify publishes no sizes) and read how many
    THROTTLED answers the shop's apps got."""
    api.bucket_sizes[SHOP] = (10.0, 20.0)          # restore 10 points/s, bucket 20: two mutations
    variables = {"id": gid("Customer", CUSTOMER_IDS[0]), "tags": ["x"]}
    for _ in range(2):
        assert "errors" not in gql(api, TAGS_ADD, variables)
    body = gql(api, TAGS_ADD, variables)
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["throttleStatus"] == {"maximumAvailable": 20.0, "currentlyAvailable": 0,
                                                            "restoreRate": 10.0}
    assert api.throttled == {SHOP: 1}


def test_documents_run_directly_bypass_the_bucket(api: AdminAPI) -> None:
    """Bulk mutation lines run through `run_document`: the per-request bucket is not charged."""
    before = gql(api, "{ shop { name } }")["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    document = parse(f'mutation {{ tagsAdd(id: "{gid("Customer", CUSTOMER_IDS[0])}", tags: ["x"]) '
                     "{ userErrors { message } } }")
    ctx = RequestContext(store=api.store, config=api.config, shop=SHOP, shop_row=api.store.shop(SHOP),
                         api_key="k", scopes=ALL_SCOPES, api_version="2026-10", now=utcnow(), bulk=api.bulk)
    for _ in range(50):
        assert not api.run_document(document, {}, ctx).errors
    after = gql(api, "{ shop { name } }")["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    assert after == before - 1
