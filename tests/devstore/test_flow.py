"""devstore's flowTriggerReceive: a call for one of the app's deployed triggers, with exactly its
fields and a customer of the shop, is received; anything else is a userError and nothing starts."""
from __future__ import annotations

import pytest

from devstore.config import DevstoreConfig
from devstore.flow import received, triggers
from devstore.graphql_api import AdminAPI
from devstore.state import DevStore
from tests.devstore.test_graphql import SHOP, FakeClock, data, gql, seeded_api

RECEIVE = """mutation($handle: String, $payload: JSON) {
  flowTriggerReceive(handle: $handle, payload: $payload) { userErrors { field message } } }"""


@pytest.fixture
def api(store: DevStore, devstore_config: DevstoreConfig) -> AdminAPI:
    return seeded_api(store, devstore_config, FakeClock())


@pytest.fixture
def customer_id(store: DevStore) -> int:
    return store.conn().execute("SELECT id FROM customers WHERE shop = ? ORDER BY id LIMIT 1", (SHOP,)).fetchone()[0]


def receive(api: AdminAPI, handle: str, payload: object, **kwargs) -> list[dict]:
    return data(api, RECEIVE, {"handle": handle, "payload": payload}, **kwargs)["flowTriggerReceive"]["userErrors"]


def test_the_apps_triggers_are_its_flow_trigger_extensions():
    assert triggers() == {"customer-entered-segment": ["customer_id", "Segment name", "Segment tag"],
                          "customer-left-segment": ["customer_id", "Segment name", "Segment tag"]}


def test_a_good_call_is_received(api: AdminAPI, store: DevStore, customer_id: int):
    payload = {"customer_id": customer_id, "Segment name": "VIP", "Segment tag": "seg:vip"}
    assert receive(api, "customer-entered-segment", payload) == []
    assert [(r["handle"], r["payload"]) for r in received(store, SHOP)] == [("customer-entered-segment", payload)]


@pytest.mark.parametrize("handle, payload, field", [
    ("no-such-trigger", {}, ["handle"]),
    ("customer-entered-segment", "not an object", ["payload"]),
    ("customer-entered-segment", {"customer_id": 1, "Segment name": "VIP"}, ["payload"]),            # a field missing
    ("customer-entered-segment", {"customer_id": 1, "Segment name": "V", "Segment tag": "t", "x": 1}, ["payload"]),
    ("customer-entered-segment", {"customer_id": 424242, "Segment name": "V", "Segment tag": "t"},
     ["payload", "customer_id"]),
], ids=["unknown-handle", "not-an-object", "missing-field", "unknown-field", "unknown-customer"])
def test_anything_else_is_a_user_error_and_starts_nothing(api: AdminAPI, store: DevStore, handle, payload, field):
    errors = receive(api, handle, payload)
    assert len(errors) == 1 and errors[0]["field"] == field and errors[0]["message"]
    assert received(store, SHOP) == []


def test_a_customer_reference_needs_read_customers(api: AdminAPI, store: DevStore, customer_id: int):
    body = gql(api, RECEIVE, {"handle": "customer-left-segment", "payload": {
        "customer_id": customer_id, "Segment name": "VIP", "Segment tag": "seg:vip"}}, scopes=frozenset({"read_orders"}))
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED" and received(store, SHOP) == []
