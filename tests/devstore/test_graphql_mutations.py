"""devstore's Admin GraphQL: access scopes, the mutations the app calls (tags, webhook subscriptions,
metafields), request errors, faults and response headers, as Shopify documents them."""
from __future__ import annotations

import json

import pytest

from devstore.graphql_api import AdminAPI
from devstore.state import DevStore, Event, gid
from tests.devstore.test_graphql import (  # noqa: F401 - fixtures (api needs clock)
    ALL_SCOPES, CUSTOMER_IDS, RECENT_ORDER, SHOP, TAGS_ADD, TAGS_REMOVE, api, call, clock, data, events, gql,
    stored_tags,
)


def test_reading_customers_needs_a_customer_scope(api: AdminAPI) -> None:
    body = gql(api, "{ customers(first: 1) { nodes { id } } }", scopes=frozenset({"read_orders"}))
    error = body["errors"][0]
    assert error["message"] == "Access denied for customers field. Required access: `read_customers` access scope."
    assert error["extensions"]["code"] == "ACCESS_DENIED" and error["path"] == ["customers"]
    assert body["data"] is None
    assert "errors" not in gql(api, "{ customers(first: 1) { nodes { id } } }", scopes=frozenset({"write_customers"}))


def test_orders_and_checkouts_need_read_orders(api: AdminAPI) -> None:
    for query in ("{ orders(first: 1) { nodes { id } } }", "{ abandonedCheckouts(first: 1) { nodes { id } } }"):
        body = gql(api, query, scopes=frozenset({"read_customers"}))
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    body = gql(api, f'{{ order(id: "{gid("Order", RECENT_ORDER)}") {{ id customer {{ id }} }} }}',
               scopes=frozenset({"read_orders"}))
    assert body["data"]["order"] == {"id": gid("Order", RECENT_ORDER), "customer": None}
    assert body["errors"][0]["path"] == ["order", "customer"]


def test_tags_add_is_a_set_union_with_events(api: AdminAPI, store: DevStore, events: list[Event]) -> None:
    cid = CUSTOMER_IDS[0]
    result = data(api, TAGS_ADD, {"id": gid("Customer", cid), "tags": [" seg:vip ", "VIP", "seg:new", "seg:VIP"]})
    assert result["tagsAdd"] == {"node": {"id": gid("Customer", cid)}, "userErrors": []}
    assert stored_tags(store, cid) == ["vip", "Merchant Tag", "seg:vip", "seg:new"]
    assert events == [Event(SHOP, "customers/update", "Customer", cid),
                      Event(SHOP, "customer.tags_added", "Customer", cid, {"tags": ["seg:vip", "seg:new"]})]
    updated = store.conn().execute("SELECT updated_at FROM customers WHERE id = ?", (cid,)).fetchone()[0]
    assert updated > "2026-09-01T12:00:00Z"


def test_tags_as_a_comma_separated_string(api: AdminAPI, store: DevStore) -> None:
    cid = CUSTOMER_IDS[1]
    data(api, f'mutation {{ tagsAdd(id: "{gid("Customer", cid)}", tags: "a, b ,c") {{ userErrors {{ message }} }} }}')
    assert stored_tags(store, cid) == ["a", "b", "c"]


def test_no_change_means_no_events(api: AdminAPI, events: list[Event]) -> None:
    data(api, TAGS_ADD, {"id": gid("Customer", CUSTOMER_IDS[0]), "tags": ["VIP"]})
    data(api, TAGS_REMOVE, {"id": gid("Customer", CUSTOMER_IDS[0]), "tags": ["not-there"]})
    assert events == []


def test_tags_remove_is_case_insensitive(api: AdminAPI, store: DevStore, events: list[Event]) -> None:
    cid = CUSTOMER_IDS[0]
    result = data(api, TAGS_REMOVE, {"id": gid("Customer", cid), "tags": "merchant tag, nope"})
    assert result["tagsRemove"]["userErrors"] == []
    assert stored_tags(store, cid) == ["vip"]
    assert events[-1] == Event(SHOP, "customer.tags_removed", "Customer", cid, {"tags": ["Merchant Tag"]})


def test_tag_limits_and_bad_ids(api: AdminAPI, store: DevStore, events: list[Event]) -> None:
    cid = gid("Customer", CUSTOMER_IDS[2])
    too_long = data(api, TAGS_ADD, {"id": cid, "tags": ["x" * 256]})["tagsAdd"]
    assert too_long["node"] is None and too_long["userErrors"][0]["field"] == ["tags"]
    data(api, TAGS_ADD, {"id": cid, "tags": [f"t{i}" for i in range(240)]})
    too_many = data(api, TAGS_ADD, {"id": cid, "tags": [f"u{i}" for i in range(11)]})["tagsAdd"]
    assert "250" in too_many["userErrors"][0]["message"]
    assert len(stored_tags(store, CUSTOMER_IDS[2])) == 240
    missing = data(api, TAGS_ADD, {"id": gid("Customer", 1), "tags": ["a"]})["tagsAdd"]
    assert missing["userErrors"] == [{"field": ["id"], "message": "Customer does not exist"}]
    malformed = data(api, TAGS_ADD, {"id": "7000000101", "tags": ["a"]})["tagsAdd"]
    assert malformed["userErrors"][0]["field"] == ["id"]
    assert len(events) == 2   # only the successful 240-tag add


def test_tags_add_needs_write_customers(api: AdminAPI, events: list[Event]) -> None:
    body = gql(api, TAGS_ADD, {"id": gid("Customer", CUSTOMER_IDS[0]), "tags": ["a"]},
               scopes=frozenset({"read_customers"}))
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert "`write_customers`" in body["errors"][0]["message"]
    assert body["data"] == {"tagsAdd": None} and events == []


CREATE_WEBHOOK = """mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri format apiVersion { handle } endpoint { __typename
      ... on WebhookHttpEndpoint { callbackUrl } } }
    userErrors { field message } } }"""


def test_webhook_subscription_lifecycle(api: AdminAPI) -> None:
    created = data(api, CREATE_WEBHOOK, {"topic": "ORDERS_CREATE", "uri": "https://app.example/webhooks"})
    sub = created["webhookSubscriptionCreate"]["webhookSubscription"]
    assert sub["topic"] == "ORDERS_CREATE" and sub["apiVersion"] == {"handle": "2026-10"}
    assert sub["endpoint"] == {"__typename": "WebhookHttpEndpoint", "callbackUrl": "https://app.example/webhooks"}
    data(api, CREATE_WEBHOOK, {"topic": "CUSTOMER_TAGS_ADDED", "uri": "http://127.0.0.1:8000/webhooks"})
    again = data(api, CREATE_WEBHOOK, {"topic": "ORDERS_CREATE", "uri": "https://app.example/webhooks"})
    assert again["webhookSubscriptionCreate"]["userErrors"][0]["message"] == \
        "Address for this topic has already been taken"
    listed = data(api, "{ webhookSubscriptions(first: 10, topics: [ORDERS_CREATE]) { nodes { id topic } } }")
    assert listed["webhookSubscriptions"]["nodes"] == [{"id": sub["id"], "topic": "ORDERS_CREATE"}]
    others = data(api, "{ webhookSubscriptions(first: 10) { nodes { id } } }", api_key="another-app")
    assert others["webhookSubscriptions"]["nodes"] == []
    deleted = data(api, "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId "
                        "userErrors { message } } }", {"id": sub["id"]})
    assert deleted["webhookSubscriptionDelete"] == {"deletedWebhookSubscriptionId": sub["id"], "userErrors": []}
    gone = data(api, "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { userErrors { field } } }",
                {"id": sub["id"]})
    assert gone["webhookSubscriptionDelete"]["userErrors"] == [{"field": ["id"]}]


@pytest.mark.parametrize(("topic", "uri", "scopes", "field"), [
    ("ORDERS_CREATE", "https://app.example/w", frozenset({"read_customers"}), ["topic"]),
    ("CHECKOUTS_CREATE", "https://app.example/w", frozenset({"read_checkouts"}), ["topic"]),
    ("ORDERS_CREATE", "ftp://app.example/w", ALL_SCOPES, ["webhookSubscription", "uri"]),
    ("ORDERS_CREATE", "http://app.example.com/w", ALL_SCOPES, ["webhookSubscription", "uri"]),
])
def test_webhook_subscription_refusals(api: AdminAPI, topic: str, uri: str, scopes: frozenset[str],
                                       field: list[str]) -> None:
    result = data(api, CREATE_WEBHOOK, {"topic": topic, "uri": uri}, scopes=scopes)
    payload = result["webhookSubscriptionCreate"]
    assert payload["webhookSubscription"] is None and payload["userErrors"][0]["field"] == field
    if field == ["topic"]:
        assert payload["userErrors"][0]["message"].startswith("Invalid topic specified")


@pytest.mark.parametrize("topic", ["ORDERS_EXPLODED", "CUSTOMERS_REDACT", "SHOP_REDACT", "CUSTOMERS_DATA_REQUEST"])
def test_unknown_topic_is_a_graphql_error(api: AdminAPI, topic: str) -> None:
    """The compliance topics are no values of Shopify's WebhookSubscriptionTopic (they are set in the
    app's TOML only): asking for one is a variable error, as for a topic that does not exist."""
    body = gql(api, CREATE_WEBHOOK, {"topic": topic, "uri": "https://app.example/w"})
    assert topic in body["errors"][0]["message"] and "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "variableInvalid"


def test_metafields_set_and_read(api: AdminAPI) -> None:
    owner = gid("Customer", CUSTOMER_IDS[0])
    result = data(api, """mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) {
        metafields { id namespace key type value jsonValue } userErrors { field message code elementIndex } } }""",
                  {"m": [{"ownerId": owner, "namespace": "shopseg", "key": "segments", "type": "json",
                          "value": '["vip"]'}]})
    assert result["metafieldsSet"]["userErrors"] == []
    assert result["metafieldsSet"]["metafields"][0]["jsonValue"] == ["vip"]
    read = data(api, f'{{ customer(id: "{owner}") {{ metafield(namespace: "shopseg", key: "segments") {{ value }} '
                     'metafields(first: 5) { nodes { key } } } }')
    assert read["customer"]["metafield"] == {"value": '["vip"]'}
    assert read["customer"]["metafields"]["nodes"] == [{"key": "segments"}]
    bad = data(api, """mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) {
        metafields { id } userErrors { field code elementIndex } } }""",
               {"m": [{"ownerId": owner, "namespace": "shopseg", "key": "count", "type": "number_integer",
                       "value": "1"},
                      {"ownerId": owner, "namespace": "shopseg", "key": "n", "type": "number_integer", "value": "x"}]})
    assert bad["metafieldsSet"]["metafields"] is None
    assert bad["metafieldsSet"]["userErrors"][0]["elementIndex"] == 1
    # Atomic: the valid first input was not written either.
    again = data(api, f'{{ customer(id: "{owner}") {{ metafield(namespace: "shopseg", key: "count") {{ value }} }} }}')
    assert again["customer"]["metafield"] is None


def test_metafield_definition_create(api: AdminAPI) -> None:
    mutation = """mutation($d: MetafieldDefinitionInput!) { metafieldDefinitionCreate(definition: $d) {
        createdDefinition { id namespace key type { name } ownerType } userErrors { field code } } }"""
    definition = {"name": "Segments", "namespace": "shopseg", "key": "segments", "type": "json",
                  "ownerType": "CUSTOMER"}
    created = data(api, mutation, {"d": definition})["metafieldDefinitionCreate"]
    assert created["createdDefinition"]["type"] == {"name": "json"} and created["userErrors"] == []
    taken = data(api, mutation, {"d": definition})["metafieldDefinitionCreate"]
    assert taken["userErrors"][0]["code"] == "TAKEN"


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"query": 5}', b'{"query": "  "}', b"[]"])
def test_malformed_body_is_400(api: AdminAPI, raw: bytes) -> None:
    status, _, body = call(api, "", raw=raw)
    assert status == 400 and body == {"errors": {"query": "Required parameter missing or invalid"}}


def test_syntax_and_validation_errors(api: AdminAPI) -> None:
    body = gql(api, "{ shop { name ")
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 15}]
    assert "data" not in body and "cost" in body["extensions"]
    body = gql(api, "{ shop { colour } }")
    assert body["errors"][0]["extensions"]["code"] == "undefinedField"
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 10}]


def test_operation_name_selects_the_operation(api: AdminAPI) -> None:
    query = "query A { shop { name } } query B { shop { email } }"
    assert gql(api, query)["errors"][0]["message"] == "An operation name is required"
    status, _, body = call(api, "", raw=json.dumps({"query": query, "operationName": "B"}).encode())
    assert body["data"] == {"shop": {"email": "owner@test-shop.example"}}


def test_error5xx_fault_counts_down(api: AdminAPI, store: DevStore) -> None:
    store.fault_set(SHOP, "error5xx", {"status": 503, "count": 2})
    for _ in range(2):
        status, _, body = call(api, "{ shop { name } }")
        assert status == 503 and isinstance(body, bytes)
    assert store.fault(SHOP, "error5xx") is None
    assert call(api, "{ shop { name } }")[0] == 200


def test_shop_wide_fault_applies_to_every_shop(api: AdminAPI, store: DevStore) -> None:
    store.fault_set("*", "error5xx", {"status": 502, "count": 1})
    assert call(api, "{ shop { name } }")[0] == 502
    assert call(api, "{ shop { name } }")[0] == 200


def test_latency_fault_sleeps(api: AdminAPI, store: DevStore) -> None:
    slept: list[float] = []
    api.sleep = slept.append
    store.fault_set(SHOP, "latency", {"ms": 250})
    assert call(api, "{ shop { name } }")[0] == 200
    assert slept == [0.25]


def test_throttle_fault_forces_throttled(api: AdminAPI, store: DevStore) -> None:
    store.fault_set(SHOP, "throttle", {"available": 0})
    body = gql(api, "{ shop { name } }")
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
    store.fault_set(SHOP, "throttle", None)
    assert "errors" not in gql(api, "{ shop { name } }")


def test_response_headers(api: AdminAPI) -> None:
    _, headers, _ = call(api, "{ shop { name } }")
    assert headers["X-Shopify-API-Version"] == "2026-10" and headers["X-Request-Id"]
