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


# -- scopes --------------------------------------------------------------------------------------

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


# -- tags ----------------------------------------------------------------------------------------

TAGS_ADD = ("mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) "
            "{ node { id } userErrors { field message } } }")
TAGS_REMOVE = ("mutation($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) "
               "{ node { id } userErrors { field message } } }")


def stored_tags(store: DevStore, customer_id: int) -> list[str]:
    return json.loads(store.conn().execute("SELECT tags FROM customers WHERE id = ?", (customer_id,)).fetchone()[0])


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


# -- webhook subscriptions -----------------------------------------------------------------------

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


# -- metafields ----------------------------------------------------------------------------------

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


# -- malformed requests --------------------------------------------------------------------------

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


# -- fault injection -----------------------------------------------------------------------------

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
