"""devstore's native customer segments over real HTTP: `segmentCreate` / `segmentUpdate` /
`segmentDelete` and `segment(id)`, with membership read live from the customers' tags; a query devstore
cannot evaluate is a userError. The app's shop, install and HTTP helpers here serve test_discounts.py too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstore import mutations
from tests.conftest import Devstore

SCOPES = "read_customers,write_customers,read_orders,read_discounts,write_discounts"
MUG_CENTS = 1250

SEGMENT_CREATE = """mutation($name: String!, $query: String!) { segmentCreate(name: $name, query: $query) {
  segment { id name query creationDate lastEditDate } userErrors { field message } } }"""
SEGMENT_UPDATE = """mutation($id: ID!, $name: String, $query: String) {
  segmentUpdate(id: $id, name: $name, query: $query) {
  segment { id name query } userErrors { field message } } }"""
SEGMENT_DELETE = "mutation($id: ID!) { segmentDelete(id: $id) { deletedSegmentId userErrors { field message } } }"


@dataclass
class Shop:
    devstore: Devstore
    domain: str
    token: str
    vip: int            # a customer tagged seg:vip
    other: int          # a customer without it
    variant: int        # a mug at 12.50

    @property
    def url(self) -> str:
        return f"{self.devstore.url}/shops/{self.domain}"

    def call(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        response = self.devstore.http.post(f"{self.url}/admin/api/2026-10/graphql.json",
                                           json={"query": query, "variables": variables or {}},
                                           headers={"X-Shopify-Access-Token": token or self.token})
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.call(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def control(self, what: str) -> Any:
        return self.devstore.control("GET", f"/shops/{self.domain}/{what}")

    def orders(self) -> int:
        return self.control("stats")["orders"]

    def checkout(self, *, customer: int | None, code: str | None = None, quantity: int = 2) -> httpx.Response:
        """A shopper (signed in as `customer`, or a guest) pays for `quantity` mugs with `code`."""
        with httpx.Client(base_url=f"{self.url}/store", timeout=30) as shopper:
            if customer is not None:
                assert shopper.get("/account/login", params={"customer": customer}).status_code == 302
            body: dict[str, Any] = {"lines": [{"variantId": str(self.variant), "quantity": quantity}]}
            if code is not None:
                body["discountCode"] = code
            return shopper.post("/checkout/complete", json=body)


def install(devstore: Devstore, domain: str, scopes: str, settings) -> str:
    """The app's OAuth install on the shop (devstore approves it): its offline access token."""
    authorize = devstore.http.get(f"{devstore.url}/shops/{domain}/admin/oauth/authorize", params={
        "client_id": settings.SHOPIFY_API_KEY, "scope": scopes, "redirect_uri": "http://testserver/auth/callback",
        "state": "nonce"})
    assert authorize.status_code == 302, authorize.text
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    granted = devstore.http.post(f"{devstore.url}/shops/{domain}/admin/oauth/access_token", json={
        "client_id": settings.SHOPIFY_API_KEY, "client_secret": settings.SHOPIFY_API_SECRET, "code": code})
    assert granted.status_code == 200, granted.text
    return granted.json()["access_token"]


@pytest.fixture(name="shop")
def shop_fixture(devstore: Devstore, settings) -> Shop:
    domain = devstore.create_shop()
    store = devstore.store
    vip = mutations.customer_create(store, domain, first_name="Vera", email="vera@example.com", tags=["seg:vip", "x"])
    other = mutations.customer_create(store, domain, first_name="Otto", email="otto@example.com", tags=["x"])
    product = mutations.product_create(store, domain, title="Blue Mug", product_type="Mugs", vendor="Acme",
                                       variants=[{"price_cents": MUG_CENTS, "sku": "MUG"}])
    variant = store.conn().execute("SELECT id FROM variants WHERE product_id = ?", (product,)).fetchone()[0]
    return Shop(devstore, domain, install(devstore, domain, SCOPES, settings), vip, other, variant)


def segment(shop: Shop, name: str = "VIP", query: str = "customer_tags CONTAINS 'seg:vip'") -> str:
    created = shop.data(SEGMENT_CREATE, {"name": name, "query": query})["segmentCreate"]
    assert created["userErrors"] == []
    return created["segment"]["id"]


# -- segments ------------------------------------------------------------------------------------

def test_a_segment_is_created_and_its_membership_is_live(shop: Shop):
    created = shop.data(SEGMENT_CREATE, {"name": "VIP", "query": "customer_tags CONTAINS 'seg:vip'"})["segmentCreate"]
    assert created["userErrors"] == []
    found = created["segment"]
    assert found["id"].startswith("gid://shopify/Segment/") and found["name"] == "VIP"
    assert found["query"] == "customer_tags CONTAINS 'seg:vip'" and found["creationDate"] == found["lastEditDate"]
    assert shop.data("query($id: ID!) { segment(id: $id) { id name } }", {"id": found["id"]})["segment"] == {
        "id": found["id"], "name": "VIP"}
    listed = shop.control("segments")["segments"]
    assert [(s["id"], s["query"], s["member_count"]) for s in listed] == [(found["id"], found["query"], 1)]
    # Otto gets the tag in another case: tags compare case-insensitively, and membership follows at once.
    shop.data("mutation($id: ID!) { tagsAdd(id: $id, tags: [\"SEG:VIP\"]) { userErrors { message } } }",
              {"id": f"gid://shopify/Customer/{shop.other}"})
    assert shop.control("segments")["segments"][0]["member_count"] == 2


def test_tag_conditions_combine_with_and_or_not_and_parentheses(shop: Shop):
    mutations.customer_create(shop.devstore.store, shop.domain, email="g@example.com", tags=["gold"])
    queries = {"customer_tags CONTAINS 'x' AND customer_tags NOT CONTAINS 'seg:vip'": 1,        # Otto
               "customer_tags CONTAINS 'gold' OR customer_tags CONTAINS 'seg:vip'": 2,
               "customer_tags NOT CONTAINS 'x'": 1,
               "(customer_tags CONTAINS 'gold' OR customer_tags CONTAINS 'x') "
               "and customer_tags not contains 'seg:vip'": 2,
               "customer_tags CONTAINS 'x' AND customer_tags CONTAINS 'gold' OR customer_tags CONTAINS 'seg:vip'": 1}
    for index, query in enumerate(queries):
        segment(shop, f"S{index}", query)
    assert {s["query"]: s["member_count"] for s in shop.control("segments")["segments"]} == queries


@pytest.mark.parametrize("query", [
    "number_of_orders > 5", "customer_tags = 'vip'", "customer_tags CONTAINS vip", "customer_tags CONTAINS 'vip' AND",
    "customer_tags CONTAINS 'vip' customer_tags CONTAINS 'b'", "(customer_tags CONTAINS 'vip'",
    "customer_tags CONTAINS ''",
])
def test_a_query_devstore_cannot_evaluate_is_a_user_error_and_creates_nothing(shop: Shop, query: str):
    payload = shop.data(SEGMENT_CREATE, {"name": "Bad", "query": query})["segmentCreate"]
    assert payload["segment"] is None
    assert len(payload["userErrors"]) == 1 and payload["userErrors"][0]["field"] == ["query"]
    assert payload["userErrors"][0]["message"].startswith("Query not supported")
    assert shop.control("segments")["segments"] == []


@pytest.mark.parametrize("name, query, error", [
    ("  ", "customer_tags CONTAINS 'a'", {"field": ["name"], "message": "Name can't be blank"}),
    ("Blank", " ", {"field": ["query"], "message": "Query can't be blank"}),
    ("N" * 256, "customer_tags CONTAINS 'a'",
     {"field": ["name"], "message": "Name is too long (maximum is 255 characters)"}),
])
def test_a_blank_or_overlong_name_or_query_is_refused(shop: Shop, name: str, query: str, error: dict):
    assert shop.data(SEGMENT_CREATE, {"name": name, "query": query})["segmentCreate"] == {
        "segment": None, "userErrors": [error]}
    assert shop.control("segments")["segments"] == []


def test_segment_names_are_unique_per_shop(shop: Shop):
    first = segment(shop, "VIP")
    again = shop.data(SEGMENT_CREATE, {"name": "VIP", "query": "customer_tags CONTAINS 'b'"})["segmentCreate"]
    assert again == {"segment": None, "userErrors": [{"field": ["name"], "message": "Name has already been taken"}]}
    second = segment(shop, "Other", "customer_tags CONTAINS 'b'")
    renamed = shop.data(SEGMENT_UPDATE, {"id": second, "name": "VIP"})["segmentUpdate"]
    assert renamed["segment"] is None and renamed["userErrors"][0]["field"] == ["name"]
    assert [s["id"] for s in shop.control("segments")["segments"]] == [first, second]


def test_a_segment_is_updated_and_deleted(shop: Shop):
    segment_id = segment(shop)
    updated = shop.data(SEGMENT_UPDATE, {"id": segment_id, "query": "customer_tags CONTAINS 'x'"})["segmentUpdate"]
    assert updated == {"segment": {"id": segment_id, "name": "VIP", "query": "customer_tags CONTAINS 'x'"},
                       "userErrors": []}
    assert shop.control("segments")["segments"][0]["member_count"] == 2
    bad = shop.data(SEGMENT_UPDATE, {"id": segment_id, "query": "amount_spent > 10"})["segmentUpdate"]
    assert bad["segment"] is None and bad["userErrors"][0]["field"] == ["query"]
    assert shop.data(SEGMENT_DELETE, {"id": segment_id})["segmentDelete"] == {
        "deletedSegmentId": segment_id, "userErrors": []}
    assert shop.data("query($id: ID!) { segment(id: $id) { id } }", {"id": segment_id})["segment"] is None
    gone = {"field": ["id"], "message": "Segment does not exist"}
    assert shop.data(SEGMENT_DELETE, {"id": segment_id})["segmentDelete"]["userErrors"] == [gone]
    assert shop.data(SEGMENT_UPDATE, {"id": segment_id, "name": "Again"})["segmentUpdate"]["userErrors"] == [gone]
