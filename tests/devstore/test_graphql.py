"""devstore's GraphQL Admin API: shapes, filters, pagination, scopes, tags, webhooks, metafields, errors, faults."""
from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from devstore.graphql_api import AdminAPI
from devstore.state import DevStore, Event, gid, iso, utcnow

SHOP = "test-shop.myshopify.com"
API_KEY = "test-api-key"
ALL_SCOPES = frozenset({"read_customers", "write_customers", "read_orders", "read_products"})
CUSTOMER_IDS = [7_000_000_101, 7_000_000_102, 7_000_000_103, 7_000_000_104, 7_000_000_105]
RECENT_ORDER, OLD_ORDER, OTHER_ORDER = 5_000_000_201, 5_000_000_202, 5_000_000_203
PRODUCT_ID, VARIANT_ID = 8_000_000_301, 44_000_000_401
OPEN_CHECKOUT, DONE_CHECKOUT = 30_000_000_501, 30_000_000_502


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def days_ago(days: float) -> str:
    return iso(utcnow() - dt.timedelta(days=days))


def seed(store: DevStore) -> None:
    """A small shop: five customers, a product, three orders (one 90 days old), two checkouts."""
    with store.tx() as conn:
        for index, cid in enumerate(CUSTOMER_IDS):
            conn.execute(
                "INSERT INTO customers (id, shop, first_name, last_name, email, phone, email_marketing_state, "
                "sms_marketing_state, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, SHOP, f"First{index}", "Last", f"c{index}@example.com",
                 "+15550000000" if index == 0 else None, "SUBSCRIBED" if index == 0 else "NOT_SUBSCRIBED",
                 "SUBSCRIBED" if index == 0 else "NOT_SUBSCRIBED",
                 json.dumps(["vip", "Merchant Tag"] if index == 0 else []),
                 f"2026-01-0{index + 1}T00:00:00Z", f"2026-09-0{index + 1}T12:00:00Z"))
        conn.execute("INSERT INTO products (id, shop, title, handle, product_type, vendor, tags, status, created_at, "
                     "updated_at) VALUES (?, ?, 'Blue Mug', 'blue-mug', 'Mugs', 'Acme', '[\"kitchen\"]', 'active', "
                     "'2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z')", (PRODUCT_ID, SHOP))
        conn.execute("INSERT INTO variants (id, product_id, shop, title, sku, price_cents) VALUES "
                     "(?, ?, ?, 'Default Title', 'MUG-1', 1250)", (VARIANT_ID, PRODUCT_ID, SHOP))
        for oid, customer, created, number in ((RECENT_ORDER, CUSTOMER_IDS[0], days_ago(5), 1001),
                                               (OLD_ORDER, CUSTOMER_IDS[0], days_ago(90), 1002),
                                               (OTHER_ORDER, CUSTOMER_IDS[1], days_ago(2), 1003)):
            conn.execute(
                "INSERT INTO orders (id, shop, number, name, customer_id, email, created_at, processed_at, updated_at, "
                "financial_status, currency, subtotal_cents, discount_cents, shipping_cents, tax_cents, total_cents, "
                "refunded_cents, discount_codes, source_name, browser_ip, shipping_title, shipping_code, tags) "
                "VALUES (?, ?, ?, ?, ?, 'c0@example.com', ?, ?, ?, ?, 'USD', 2500, 500, 599, 200, 2799, ?, ?, 'web', "
                "'203.0.113.9', 'Express Shipping', 'express', '[]')",
                (oid, SHOP, number, f"#{number}", customer, created, created, created,
                 "partially_refunded" if oid == RECENT_ORDER else "paid", 1000 if oid == RECENT_ORDER else 0,
                 json.dumps([{"code": "SAVE5", "amount_cents": 500, "type": "fixed_amount"}])))
            conn.execute("INSERT INTO line_items (id, order_id, shop, product_id, variant_id, title, vendor, "
                         "product_type, sku, quantity, price_cents, discount_cents) VALUES "
                         "(?, ?, ?, ?, ?, 'Blue Mug', 'Acme', 'Mugs', 'MUG-1', 2, 1250, 500)",
                         (oid + 10_000_000_000, oid, SHOP, PRODUCT_ID, VARIANT_ID))
        conn.execute("INSERT INTO refunds (id, order_id, shop, created_at, note, amount_cents) VALUES "
                     "(900000001, ?, ?, ?, 'damaged', 1000)", (RECENT_ORDER, SHOP, days_ago(4)))
        for checkout_id, completed in ((OPEN_CHECKOUT, None), (DONE_CHECKOUT, days_ago(1))):
            conn.execute(
                "INSERT INTO checkouts (id, shop, token, customer_id, email, created_at, updated_at, completed_at, "
                "currency, subtotal_cents, total_cents, line_items) VALUES (?, ?, ?, ?, 'c1@example.com', ?, ?, ?, "
                "'USD', 2500, 3099, ?)",
                (checkout_id, SHOP, f"tok{checkout_id}", CUSTOMER_IDS[1], days_ago(3), days_ago(3), completed,
                 json.dumps([{"product_id": PRODUCT_ID, "variant_id": VARIANT_ID, "title": "Blue Mug",
                              "quantity": 2, "price_cents": 1250}])))


def seeded_api(store: DevStore, config: Any, clock: FakeClock) -> AdminAPI:
    seed(store)
    return AdminAPI(store, config, clock=clock)


def collect_events(store: DevStore) -> list[Event]:
    collected: list[Event] = []
    store.subscribe(collected.append)
    return collected


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(store: DevStore, devstore_config: Any, clock: FakeClock) -> AdminAPI:
    return seeded_api(store, devstore_config, clock)


@pytest.fixture
def events(store: DevStore) -> list[Event]:
    return collect_events(store)


def call(api: AdminAPI, query: str, variables: dict | None = None, *, scopes: frozenset[str] = ALL_SCOPES,
         api_key: str = API_KEY, raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    body = raw if raw is not None else json.dumps({"query": query, "variables": variables or {}}).encode()
    return api.execute(shop=SHOP, api_key=api_key, scopes=set(scopes), api_version="2026-10", body=body)


def gql(api: AdminAPI, query: str, variables: dict | None = None, **kwargs: Any) -> dict:
    status, _, body = call(api, query, variables, **kwargs)
    assert status == 200
    return body


def data(api: AdminAPI, query: str, variables: dict | None = None, **kwargs: Any) -> dict:
    body = gql(api, query, variables, **kwargs)
    assert "errors" not in body, body["errors"]
    return body["data"]


# -- shop, installation, node --------------------------------------------------------------------

def test_shop_and_installation(api: AdminAPI) -> None:
    result = data(api, "{ shop { id name email myshopifyDomain currencyCode ianaTimezone "
                       "plan { displayName partnerDevelopment shopifyPlus } } "
                       "currentAppInstallation { id accessScopes { handle } } }")
    shop = result["shop"]
    assert shop["id"].startswith("gid://shopify/Shop/")
    assert shop["myshopifyDomain"] == SHOP and shop["currencyCode"] == "USD"
    assert shop["plan"] == {"displayName": "Shopify", "partnerDevelopment": False, "shopifyPlus": False}
    handles = {s["handle"] for s in result["currentAppInstallation"]["accessScopes"]}
    assert handles == set(ALL_SCOPES)


# Used by the mutation, bulk and cost tests too.
TAGS_ADD = ("mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) "
            "{ node { id } userErrors { field message } } }")


TAGS_REMOVE = ("mutation($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) "
               "{ node { id } userErrors { field message } } }")


def stored_tags(store: DevStore, customer_id: int) -> list[str]:
    return json.loads(store.conn().execute("SELECT tags FROM customers WHERE id = ?", (customer_id,)).fetchone()[0])


def test_the_fields_api_2026_10_deprecates_are_marked_and_their_replacements_answered(api: AdminAPI) -> None:
    deprecated = {(t, name) for t in ("ShopPlan", "CustomerPhoneNumber")
                  for name, field in api.schema.get_type(t).fields.items() if field.deprecation_reason}
    assert deprecated == {("ShopPlan", "displayName"), ("CustomerPhoneNumber", "marketingState")}
    result = data(api, f'{{ shop {{ plan {{ publicDisplayName }} }} customer(id: "{gid("Customer", CUSTOMER_IDS[0])}") '
                       '{ defaultPhoneNumber { smsMarketingConsent { state } } } }')
    assert result["shop"]["plan"] == {"publicDisplayName": "Shopify"}
    assert result["customer"]["defaultPhoneNumber"] == {"smsMarketingConsent": {"state": "SUBSCRIBED"}}
    with api.store.tx() as conn:
        conn.execute("UPDATE customers SET sms_marketing_state = 'NOT_SUBSCRIBED' WHERE id = ?", (CUSTOMER_IDS[0],))
    never = data(api, f'{{ customer(id: "{gid("Customer", CUSTOMER_IDS[0])}") '
                      '{ defaultPhoneNumber { smsMarketingConsent { state } } } }')["customer"]
    assert never["defaultPhoneNumber"] == {"smsMarketingConsent": {"state": "NEVER_SUBSCRIBED"}}


def test_node_and_nodes(api: AdminAPI) -> None:
    result = data(api, f'{{ node(id: "{gid("Customer", CUSTOMER_IDS[0])}") {{ id }} }}')
    assert result["node"]["id"] == gid("Customer", CUSTOMER_IDS[0])
    result = data(api, "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Order { name } } }",
                  {"ids": [gid("Order", RECENT_ORDER), gid("Customer", 1), gid("Product", PRODUCT_ID)]})
    assert result["nodes"][0] == {"__typename": "Order", "id": gid("Order", RECENT_ORDER), "name": "#1001"}
    assert result["nodes"][1] is None
    assert result["nodes"][2]["__typename"] == "Product"


def test_malformed_global_id_is_an_error(api: AdminAPI) -> None:
    body = gql(api, '{ customer(id: "7000000101") { id } }')
    assert body["errors"][0]["message"] == "Invalid global id '7000000101'"
    assert body["data"] == {"customer": None}


# -- customers -----------------------------------------------------------------------------------

CUSTOMER_FIELDS = """
  id legacyResourceId firstName lastName displayName email phone state tags note numberOfOrders
  amountSpent { amount currencyCode } createdAt updatedAt verifiedEmail
  defaultEmailAddress { emailAddress marketingState } defaultPhoneNumber { phoneNumber marketingState }
  emailMarketingConsent { marketingState } smsMarketingConsent { marketingState }
  lastOrder { id createdAt }
  orders(first: 5) { nodes { id name } }
"""


def test_customer_fields(api: AdminAPI) -> None:
    query = f'{{ customer(id: "{gid("Customer", CUSTOMER_IDS[0])}") {{ {CUSTOMER_FIELDS} }} }}'
    customer = data(api, query)["customer"]
    assert customer["displayName"] == "First0 Last"
    assert customer["numberOfOrders"] == "2"   # UnsignedInt64 is a JSON string; all orders count
    assert customer["amountSpent"] == {"amount": "45.98", "currencyCode": "USD"}   # 2 x 27.99 less a 10.00 refund
    assert customer["tags"] == ["vip", "Merchant Tag"]
    assert customer["state"] == "ENABLED" and customer["verifiedEmail"] is True
    assert customer["defaultEmailAddress"] == {"emailAddress": "c0@example.com", "marketingState": "SUBSCRIBED"}
    assert customer["defaultPhoneNumber"] == {"phoneNumber": "+15550000000", "marketingState": "SUBSCRIBED"}
    assert customer["emailMarketingConsent"] == {"marketingState": "SUBSCRIBED"}
    assert customer["lastOrder"]["id"] == gid("Order", RECENT_ORDER)
    # The 90-day-old order is outside the 60 days readable without read_all_orders.
    assert [o["id"] for o in customer["orders"]["nodes"]] == [gid("Order", RECENT_ORDER)]
    other = data(api, f'{{ customer(id: "{gid("Customer", CUSTOMER_IDS[2])}") {{ defaultPhoneNumber {{ phoneNumber }} '
                      'smsMarketingConsent { marketingState } lastOrder { id } } }')["customer"]
    assert other == {"defaultPhoneNumber": None, "smsMarketingConsent": None, "lastOrder": None}


def test_pagination_forward_and_back(api: AdminAPI) -> None:
    page_query = """query($first: Int, $after: String, $last: Int, $before: String) {
      customers(first: $first, after: $after, last: $last, before: $before) {
        edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    seen: list[str] = []
    after = None
    for _ in range(3):
        page = data(api, page_query, {"first": 2, "after": after})["customers"]
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == [gid("Customer", c) for c in CUSTOMER_IDS]
    cursor = page["edges"][0]["cursor"]
    assert "Customer" not in cursor and base64.urlsafe_b64decode(cursor + "==")   # opaque base64
    back = data(api, page_query, {"last": 2, "before": cursor})["customers"]
    assert [e["node"]["id"] for e in back["edges"]] == [gid("Customer", c) for c in CUSTOMER_IDS[2:4]]
    assert back["pageInfo"] == {**back["pageInfo"], "hasNextPage": True, "hasPreviousPage": True}


def test_sort_keys_and_reverse(api: AdminAPI) -> None:
    result = data(api, "{ customers(first: 5, sortKey: UPDATED_AT, reverse: true) { nodes { id updatedAt } } }")
    stamps = [n["updatedAt"] for n in result["customers"]["nodes"]]
    assert stamps == sorted(stamps, reverse=True)
    page = data(api, "{ customers(first: 2, sortKey: UPDATED_AT) { pageInfo { endCursor } } }")
    cursor = page["customers"]["pageInfo"]["endCursor"]
    rest = data(api, "query($c: String) { customers(first: 5, after: $c, sortKey: UPDATED_AT) { nodes { id } } }",
                {"c": cursor})
    assert [n["id"] for n in rest["customers"]["nodes"]] == [gid("Customer", c) for c in CUSTOMER_IDS[2:]]
    mixed = gql(api, "query($c: String) { customers(first: 5, after: $c) { nodes { id } } }", {"c": cursor})
    assert mixed["errors"][0]["message"] == "Invalid cursor for current pagination sort."


@pytest.mark.parametrize(("query", "expected"), [
    ("updated_at:>'2026-09-03T12:00:00Z'", CUSTOMER_IDS[3:]),
    ("updated_at:>='2026-09-03T12:00:00Z'", CUSTOMER_IDS[2:]),
    ('updated_at:<"2026-09-02T12:00:00Z"', CUSTOMER_IDS[:1]),
    ("updated_at:2026-09-02", CUSTOMER_IDS[1:2]),
    ("created_at:>=2026-01-04", CUSTOMER_IDS[3:]),
    (f"id:>{CUSTOMER_IDS[2]}", CUSTOMER_IDS[3:]),
    ("email:C1@example.com", CUSTOMER_IDS[1:2]),
    ("tag:VIP", CUSTOMER_IDS[:1]),
    ("tag:'Merchant Tag'", CUSTOMER_IDS[:1]),
    ("-tag:vip AND updated_at:<2026-09-03", CUSTOMER_IDS[1:2]),
    ("email:c1@example.com OR email:c2@example.com", CUSTOMER_IDS[1:3]),
    ("First3", CUSTOMER_IDS[3:4]),
    ("orders_count:>1", CUSTOMER_IDS[:1]),
])
def test_customer_search_filters(api: AdminAPI, query: str, expected: list[int]) -> None:
    result = data(api, "query($q: String) { customers(first: 10, query: $q) { nodes { id } } }", {"q": query})
    assert [n["id"] for n in result["customers"]["nodes"]] == [gid("Customer", c) for c in expected]


def test_unknown_search_field_is_ignored_with_a_warning(api: AdminAPI) -> None:
    body = gql(api, '{ customers(first: 10, query: "colour:blue") { nodes { id } } }')
    assert len(body["data"]["customers"]["nodes"]) == 5
    warning = body["extensions"]["search"][0]
    assert warning["path"] == ["customers"] and warning["warnings"][0]["field"] == "colour"


# -- orders, products, checkouts -----------------------------------------------------------------

ORDER_FIELDS = """
  id name createdAt processedAt updatedAt cancelledAt cancelReason test email customer { id }
  displayFinancialStatus displayFulfillmentStatus
  totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
  subtotalPriceSet { shopMoney { amount } } currentTotalPriceSet { shopMoney { amount } }
  totalDiscountsSet { shopMoney { amount } } totalRefundedSet { shopMoney { amount } }
  totalShippingPriceSet { shopMoney { amount } }
  discountCodes discountCode sourceName clientIp tags
  lineItems(first: 5) { nodes { id title quantity sku vendor variant { id price } product { id productType vendor }
    originalUnitPriceSet { shopMoney { amount } } discountedTotalSet { shopMoney { amount } }
    totalDiscountSet { shopMoney { amount } } } }
  shippingLines(first: 5) { nodes { title code originalPriceSet { shopMoney { amount } } } }
  refunds { id createdAt totalRefundedSet { shopMoney { amount } } }
"""


def test_order_fields(api: AdminAPI) -> None:
    order = data(api, f'{{ order(id: "{gid("Order", RECENT_ORDER)}") {{ {ORDER_FIELDS} }} }}')["order"]
    assert order["name"] == "#1001" and order["customer"] == {"id": gid("Customer", CUSTOMER_IDS[0])}
    assert order["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert order["displayFulfillmentStatus"] == "UNFULFILLED"
    assert order["totalPriceSet"] == {"shopMoney": {"amount": "27.99", "currencyCode": "USD"},
                                      "presentmentMoney": {"amount": "27.99", "currencyCode": "USD"}}
    assert order["currentTotalPriceSet"]["shopMoney"]["amount"] == "17.99"
    assert order["totalRefundedSet"]["shopMoney"]["amount"] == "10.00"
    assert order["totalShippingPriceSet"]["shopMoney"]["amount"] == "5.99"
    assert order["discountCodes"] == ["SAVE5"] and order["discountCode"] == "SAVE5"
    assert order["clientIp"] == "203.0.113.9" and order["sourceName"] == "web"
    line = order["lineItems"]["nodes"][0]
    assert line["variant"] == {"id": gid("ProductVariant", VARIANT_ID), "price": "12.50"}
    assert line["product"] == {"id": gid("Product", PRODUCT_ID), "productType": "Mugs", "vendor": "Acme"}
    assert line["discountedTotalSet"]["shopMoney"]["amount"] == "20.00"
    assert order["shippingLines"]["nodes"] == [{"title": "Express Shipping", "code": "express",
                                                "originalPriceSet": {"shopMoney": {"amount": "5.99"}}}]
    assert order["refunds"][0]["totalRefundedSet"]["shopMoney"]["amount"] == "10.00"


def test_orders_older_than_60_days_need_read_all_orders(api: AdminAPI) -> None:
    query = "{ orders(first: 10) { nodes { id } } }"
    recent = [n["id"] for n in data(api, query)["orders"]["nodes"]]
    assert gid("Order", OLD_ORDER) not in recent and len(recent) == 2
    assert data(api, f'{{ order(id: "{gid("Order", OLD_ORDER)}") {{ id }} }}')["order"] is None
    everything = data(api, query, scopes=ALL_SCOPES | {"read_all_orders"})
    assert gid("Order", OLD_ORDER) in [n["id"] for n in everything["orders"]["nodes"]]


def test_order_filters_and_sort(api: AdminAPI) -> None:
    since = days_ago(3)
    result = data(api, "query($q: String) { orders(first: 10, query: $q, sortKey: CREATED_AT, reverse: true) "
                       "{ nodes { id } } }", {"q": f"created_at:>'{since}'"})
    assert [n["id"] for n in result["orders"]["nodes"]] == [gid("Order", OTHER_ORDER)]
    result = data(api, "query($q: String) { orders(first: 10, query: $q) { nodes { id } } }",
                  {"q": f"updated_at:>='{days_ago(6)}' AND financial_status:paid"})
    assert [n["id"] for n in result["orders"]["nodes"]] == [gid("Order", OTHER_ORDER)]


def test_orders_sort_by_processed_at_unless_told_otherwise(api: AdminAPI) -> None:
    """Shopify's defaults: QueryRoot.orders sorts by PROCESSED_AT, a customer's orders by ID."""
    scopes = ALL_SCOPES | {"read_all_orders"}
    by_processed_at = [gid("Order", o) for o in (OLD_ORDER, RECENT_ORDER, OTHER_ORDER)]
    listed = data(api, "{ orders(first: 10) { nodes { id } } }", scopes=scopes)["orders"]["nodes"]
    assert [n["id"] for n in listed] == by_processed_at
    paged, after = [], None
    while True:
        page = data(api, "query($after: String) { orders(first: 1, after: $after) { nodes { id } "
                         "pageInfo { hasNextPage endCursor } } }", {"after": after}, scopes=scopes)["orders"]
        paged += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert paged == by_processed_at
    by_id = data(api, "{ orders(first: 10, sortKey: ID) { nodes { id } } }", scopes=scopes)["orders"]["nodes"]
    assert [n["id"] for n in by_id] == [gid("Order", o) for o in (RECENT_ORDER, OLD_ORDER, OTHER_ORDER)]
    customer = data(api, f'{{ customer(id: "{gid("Customer", CUSTOMER_IDS[0])}") {{ orders(first: 5) '
                         '{ nodes { id } } } }', scopes=scopes)["customer"]
    assert [n["id"] for n in customer["orders"]["nodes"]] == [gid("Order", o) for o in (RECENT_ORDER, OLD_ORDER)]


def test_products_and_variants(api: AdminAPI) -> None:
    result = data(api, "{ products(first: 5, query: \"product_type:Mugs\") { nodes { id title handle productType "
                       "vendor tags status createdAt updatedAt "
                       "variants(first: 5) { nodes { id title sku price } } } } }")
    product = result["products"]["nodes"][0]
    assert product["status"] == "ACTIVE" and product["tags"] == ["kitchen"]
    assert product["variants"]["nodes"] == [{"id": gid("ProductVariant", VARIANT_ID), "title": "Default Title",
                                             "sku": "MUG-1", "price": "12.50"}]


def test_abandoned_checkouts_are_the_uncompleted_ones(api: AdminAPI) -> None:
    result = data(api, "{ abandonedCheckouts(first: 10) { nodes { id name abandonedCheckoutUrl completedAt "
                       "customer { id } totalPriceSet { shopMoney { amount } } "
                       "subtotalPriceSet { shopMoney { amount } } "
                       "lineItems(first: 5) { nodes { title quantity variant { id } } } } } }")
    nodes = result["abandonedCheckouts"]["nodes"]
    assert [n["id"] for n in nodes] == [gid("AbandonedCheckout", OPEN_CHECKOUT)]
    assert nodes[0]["completedAt"] is None and nodes[0]["totalPriceSet"]["shopMoney"]["amount"] == "30.99"
    assert nodes[0]["lineItems"]["nodes"] == [{"title": "Blue Mug", "quantity": 2,
                                               "variant": {"id": gid("ProductVariant", VARIANT_ID)}}]
    assert nodes[0]["abandonedCheckoutUrl"].startswith(f"https://{SHOP}/")
