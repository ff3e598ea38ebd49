"""devstore's segment-limited code discounts over real HTTP: an app creates a code discount limited to a
native segment; at checkout a member gets the discount on a real order (its discountCodes, its
totals), and anyone else gets 422 and no order."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.devstore.test_segments import (  # noqa: F401 - shop_fixture: the `shop` fixture
    SEGMENT_CREATE, SEGMENT_DELETE, Shop, install, segment, shop_fixture,
)

NODE = """id codeDiscount { __typename
  ... on DiscountCodeBasic { title status startsAt endsAt usageLimit appliesOncePerCustomer asyncUsageCount
    codes(first: 1) { nodes { code } } codesCount { count precision }
    combinesWith { orderDiscounts productDiscounts shippingDiscounts }
    context { __typename ... on DiscountCustomerSegments { segments { id name } }
              ... on DiscountBuyerSelectionAll { all } }
    customerGets { items { ... on AllDiscountItems { allItems } }
                   value { __typename ... on DiscountPercentage { percentage }
                           ... on DiscountAmount { amount { amount currencyCode } appliesOnEachItem } } }
    minimumRequirement { ... on DiscountMinimumSubtotal { greaterThanOrEqualToSubtotal { amount } } } }
  ... on DiscountCodeFreeShipping { title status codes(first: 1) { nodes { code } }
    destinationSelection { ... on DiscountCountryAll { allCountries } }
    minimumRequirement { ... on DiscountMinimumSubtotal { greaterThanOrEqualToSubtotal { amount } } } } }"""
ERRORS = "userErrors { field code message extraInfo }"
BASIC_CREATE = (f"mutation($d: DiscountCodeBasicInput!) {{ discountCodeBasicCreate(basicCodeDiscount: $d) "
                f"{{ codeDiscountNode {{ {NODE} }} {ERRORS} }} }}")
BASIC_UPDATE = (f"mutation($id: ID!, $d: DiscountCodeBasicInput!) {{ "
                f"discountCodeBasicUpdate(id: $id, basicCodeDiscount: $d) "
                f"{{ codeDiscountNode {{ {NODE} }} {ERRORS} }} }}")
SHIPPING_CREATE = (f"mutation($d: DiscountCodeFreeShippingInput!) {{ discountCodeFreeShippingCreate("
                   f"freeShippingCodeDiscount: $d) {{ codeDiscountNode {{ {NODE} }} {ERRORS} }} }}")
DEACTIVATE = f"mutation($id: ID!) {{ discountCodeDeactivate(id: $id) {{ codeDiscountNode {{ {NODE} }} {ERRORS} }} }}"
DELETE = f"mutation($id: ID!) {{ discountCodeDelete(id: $id) {{ deletedCodeDiscountId {ERRORS} }} }}"
BY_CODE = f"query($code: String!) {{ codeDiscountNodeByCode(code: $code) {{ {NODE} }} }}"
ORDER = """query($id: ID!) { order(id: $id) { discountCodes totalDiscountsSet { shopMoney { amount } }
  totalShippingPriceSet { shopMoney { amount } }
  totalPriceSet { shopMoney { amount } } } }"""


def discount(shop: Shop, **fields: Any) -> dict:
    """A code discount: VIP10, 10% off everything, for everyone unless `context` says otherwise."""
    payload = shop.data(BASIC_CREATE, {"d": {
        "title": "VIP 10%", "code": "VIP10", "startsAt": "2026-01-01T00:00:00Z",
        "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}}, **fields}})["discountCodeBasicCreate"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["codeDiscountNode"]


def vip_discount(shop: Shop, **fields: Any) -> dict:
    return discount(shop, context={"customerSegments": {"add": [segment(shop)]}}, **fields)


def placed(shop: Shop, response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    order = shop.data(ORDER, {"id": f"gid://shopify/Order/{response.json()['orderId']}"})["order"]
    return {"codes": order["discountCodes"], "discount": order["totalDiscountsSet"]["shopMoney"]["amount"],
            "shipping": order["totalShippingPriceSet"]["shopMoney"]["amount"],
            "total": order["totalPriceSet"]["shopMoney"]["amount"]}


def refused(shop: Shop, response: httpx.Response, orders_before: int) -> str:
    assert response.status_code == 422, response.text
    assert shop.orders() == orders_before            # no order placed
    return response.json()["error"]


# -- discounts -----------------------------------------------------------------------------------

def test_a_code_discount_is_limited_to_a_segment(shop: Shop):
    segment_id = segment(shop)
    node = discount(shop, context={"customerSegments": {"add": [segment_id]}}, appliesOncePerCustomer=True,
                    combinesWith={"shippingDiscounts": True}, minimumRequirement={
                        "subtotal": {"greaterThanOrEqualToSubtotal": "20.00"}})
    assert node["id"].startswith("gid://shopify/DiscountCodeNode/")
    assert node["codeDiscount"] == {
        "__typename": "DiscountCodeBasic", "title": "VIP 10%", "status": "ACTIVE", "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": None, "usageLimit": None, "appliesOncePerCustomer": True, "asyncUsageCount": 0,
        "codes": {"nodes": [{"code": "VIP10"}]}, "codesCount": {"count": 1, "precision": "EXACT"},
        "combinesWith": {"orderDiscounts": False, "productDiscounts": False, "shippingDiscounts": True},
        "context": {"__typename": "DiscountCustomerSegments", "segments": [{"id": segment_id, "name": "VIP"}]},
        "customerGets": {"items": {"allItems": True}, "value": {"__typename": "DiscountPercentage", "percentage": 0.1}},
        "minimumRequirement": {"greaterThanOrEqualToSubtotal": {"amount": "20.00"}}}
    # Found by its code in any case, and as a node.
    assert shop.data(BY_CODE, {"code": "vip10"})["codeDiscountNodeByCode"]["id"] == node["id"]
    assert shop.data("query($id: ID!) { node(id: $id) { id } }", {"id": node["id"]})["node"] == {"id": node["id"]}
    [listed] = shop.control("discounts")["discounts"]
    assert listed == {
        "id": node["id"], "kind": "BASIC", "title": "VIP 10%", "codes": ["VIP10"], "status": "ACTIVE",
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": None, "segment_ids": [segment_id],
        "value": {"percentage": 0.1}, "minimum_subtotal": "20.00", "applies_once_per_customer": True,
        "usage_limit": None, "combines_with": {"orderDiscounts": False, "productDiscounts": False,
                                               "shippingDiscounts": True}, "redemptions": 0}


def test_the_deprecated_customer_selection_still_limits_a_discount(shop: Shop):
    segment_id = segment(shop)
    node = discount(shop, customerSelection={"customerSegments": {"add": [segment_id]}})
    assert node["codeDiscount"]["context"]["segments"] == [{"id": segment_id, "name": "VIP"}]
    everyone = discount(shop, code="ALL10", customerSelection={"all": True})
    assert everyone["codeDiscount"]["context"] == {"__typename": "DiscountBuyerSelectionAll", "all": "ALL"}


def test_a_member_redeems_the_code_at_checkout(shop: Shop):
    vip_discount(shop)
    order = placed(shop, shop.checkout(customer=shop.vip, code=" vip10 "))
    assert order == {"codes": ["VIP10"], "discount": "2.50", "shipping": "5.99", "total": "28.49"}   # 2 x 12.50
    assert shop.control("discounts")["discounts"][0]["redemptions"] == 1
    assert shop.data(BY_CODE, {"code": "VIP10"})["codeDiscountNodeByCode"]["codeDiscount"]["asyncUsageCount"] == 1


def test_a_non_member_and_a_guest_are_refused_and_no_order_is_placed(shop: Shop):
    vip_discount(shop)
    before = shop.orders()
    assert "isn't available" in refused(shop, shop.checkout(customer=shop.other, code="VIP10"), before)
    assert "Sign in" in refused(shop, shop.checkout(customer=None, code="VIP10"), before)
    assert refused(shop, shop.checkout(customer=shop.vip, code="NOPE"), before) == "Enter a valid discount code"
    assert shop.control("discounts")["discounts"][0]["redemptions"] == 0
    # Without a code, the same shoppers check out as before.
    assert placed(shop, shop.checkout(customer=None))["codes"] == []


def test_a_deactivated_ended_or_scheduled_discount_is_refused(shop: Shop):
    node = vip_discount(shop)
    deactivated = shop.data(DEACTIVATE, {"id": node["id"]})["discountCodeDeactivate"]
    assert deactivated["userErrors"] == [] and deactivated["codeDiscountNode"]["codeDiscount"]["status"] == "EXPIRED"
    assert deactivated["codeDiscountNode"]["codeDiscount"]["endsAt"] is not None
    before = shop.orders()
    assert refused(shop, shop.checkout(customer=shop.vip, code="VIP10"), before) == "This discount code has expired"
    ended = discount(shop, code="OLD", startsAt="2025-01-01T00:00:00Z", endsAt="2025-02-01T00:00:00Z")
    assert ended["codeDiscount"]["status"] == "EXPIRED"
    assert refused(shop, shop.checkout(customer=shop.vip, code="OLD"), before) == "This discount code has expired"
    later = discount(shop, code="SOON", startsAt="2099-01-01T00:00:00Z")
    assert later["codeDiscount"]["status"] == "SCHEDULED"
    assert "isn't active yet" in refused(shop, shop.checkout(customer=shop.vip, code="SOON"), before)


def test_an_update_changes_the_value_and_keeps_the_rest(shop: Shop):
    node = vip_discount(shop)
    updated = shop.data(BASIC_UPDATE, {"id": node["id"], "d": {"customerGets": {"value": {"discountAmount": {
        "amount": "4.00", "appliesOnEachItem": True}}}}})["discountCodeBasicUpdate"]
    assert updated["userErrors"] == []
    code = updated["codeDiscountNode"]["codeDiscount"]
    assert code["customerGets"]["value"] == {"__typename": "DiscountAmount", "amount": {
        "amount": "4.00", "currencyCode": "USD"}, "appliesOnEachItem": True}
    assert code["title"] == "VIP 10%" and code["context"]["__typename"] == "DiscountCustomerSegments"
    order = placed(shop, shop.checkout(customer=shop.vip, code="VIP10", quantity=3))     # 4.00 off each of 3
    assert (order["discount"], order["total"]) == ("12.00", "31.49")
    everyone = shop.data(BASIC_UPDATE, {"id": node["id"], "d": {"context": {"all": "ALL"}}})["discountCodeBasicUpdate"]
    assert everyone["codeDiscountNode"]["codeDiscount"]["context"] == {"__typename": "DiscountBuyerSelectionAll",
                                                                        "all": "ALL"}
    assert placed(shop, shop.checkout(customer=None, code="VIP10"))["codes"] == ["VIP10"]


def test_codes_are_unique_per_shop_in_any_case(shop: Shop):
    first = discount(shop)
    taken = {"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
             "message": "Code must be unique. Please try a different code.", "extraInfo": None}
    again = shop.data(BASIC_CREATE, {"d": {"title": "Again", "code": "vip10", "customerGets": {
        "value": {"percentage": 0.2}, "items": {"all": True}}}})["discountCodeBasicCreate"]
    assert again == {"codeDiscountNode": None, "userErrors": [taken]}
    other = discount(shop, code="OTHER")
    renamed = shop.data(BASIC_UPDATE, {"id": other["id"], "d": {"code": "Vip10"}})["discountCodeBasicUpdate"]
    assert renamed == {"codeDiscountNode": None, "userErrors": [taken]}
    assert [d["id"] for d in shop.control("discounts")["discounts"]] == [first["id"], other["id"]]


@pytest.mark.parametrize("fields, field, code", [
    ({"customerGets": {"value": {"percentage": 1.5}, "items": {"all": True}}},
     ["customerGets", "value", "percentage"], "VALUE_OUTSIDE_RANGE"),
    ({"customerGets": {"value": {"discountAmount": {"amount": "0"}}, "items": {"all": True}}},
     ["customerGets", "value", "discountAmount", "amount"], "GREATER_THAN"),
    ({"endsAt": "2025-12-31T00:00:00Z"}, ["endsAt"], "END_DATE_BEFORE_START_DATE"),
    ({"title": " "}, ["title"], "BLANK"),
    ({"context": {"customerSegments": {"add": ["gid://shopify/Segment/1"]}}},
     ["context", "customerSegments", "add"], "INVALID"),
    ({"context": {"all": "ALL", "customerSegments": {"add": []}}}, ["context"], "TOO_MANY_ARGUMENTS"),
    ({"usageLimit": 0}, ["usageLimit"], "GREATER_THAN"),
])
def test_an_invalid_discount_is_a_user_error_and_creates_nothing(shop: Shop, fields: dict, field: list, code: str):
    payload = shop.data(BASIC_CREATE, {"d": {
        "title": "T", "code": "BAD", "startsAt": "2026-01-01T00:00:00Z",
        "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}}, **fields}})["discountCodeBasicCreate"]
    assert payload["codeDiscountNode"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["basicCodeDiscount", *field], code)]
    assert shop.control("discounts")["discounts"] == []


def test_a_deleted_discount_is_gone(shop: Shop):
    node = vip_discount(shop)
    assert shop.data(DELETE, {"id": node["id"]})["discountCodeDelete"] == {
        "deletedCodeDiscountId": node["id"], "userErrors": []}
    assert shop.data(BY_CODE, {"code": "VIP10"})["codeDiscountNodeByCode"] is None
    assert shop.control("discounts")["discounts"] == []
    assert refused(shop, shop.checkout(customer=shop.vip, code="VIP10"), shop.orders()) == "Enter a valid discount code"
    again = shop.data(DELETE, {"id": node["id"]})["discountCodeDelete"]
    assert again["deletedCodeDiscountId"] is None and again["userErrors"][0]["field"] == ["id"]


def test_free_shipping_above_a_minimum(shop: Shop):
    created = shop.data(SHIPPING_CREATE, {"d": {
        "title": "Free shipping over 30", "code": "SHIPFREE", "startsAt": "2026-01-01T00:00:00Z",
        "context": {"all": "ALL"}, "destination": {"all": True},
        "minimumRequirement": {"subtotal": {"greaterThanOrEqualToSubtotal": 30}}}})["discountCodeFreeShippingCreate"]
    assert created["userErrors"] == []
    assert created["codeDiscountNode"]["codeDiscount"] == {
        "__typename": "DiscountCodeFreeShipping", "title": "Free shipping over 30", "status": "ACTIVE",
        "codes": {"nodes": [{"code": "SHIPFREE"}]}, "destinationSelection": {"allCountries": True},
        "minimumRequirement": {"greaterThanOrEqualToSubtotal": {"amount": "30.00"}}}
    before = shop.orders()
    assert refused(shop, shop.checkout(customer=None, code="SHIPFREE", quantity=2), before) == (
        "Spend 30.00 or more to use this discount code")
    order = placed(shop, shop.checkout(customer=None, code="SHIPFREE", quantity=3))
    assert order == {"codes": ["SHIPFREE"], "discount": "0.00", "shipping": "0.00", "total": "37.50"}
    assert shop.control("discounts")["discounts"][0]["value"] == {"free_shipping": True}


def test_once_per_customer_and_the_usage_limit_are_kept(shop: Shop):
    vip_discount(shop, appliesOncePerCustomer=True)
    discount(shop, code="TWICE", usageLimit=2)
    placed(shop, shop.checkout(customer=shop.vip, code="VIP10"))
    before = shop.orders()
    assert "already used" in refused(shop, shop.checkout(customer=shop.vip, code="VIP10"), before)
    placed(shop, shop.checkout(customer=shop.vip, code="TWICE"))
    placed(shop, shop.checkout(customer=None, code="TWICE"))
    assert "usage limit" in refused(shop, shop.checkout(customer=shop.other, code="TWICE"), shop.orders())


def test_scopes_are_required(shop: Shop, settings):
    segment_id = segment(shop)
    node = discount(shop)
    readonly = install(shop.devstore, shop.domain, "read_customers,read_orders", settings)

    def denied(query: str, variables: dict, scope: str) -> None:
        body = shop.call(query, variables, token=readonly)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "ACCESS_DENIED" and f"`{scope}`" in error["message"], body

    denied(SEGMENT_CREATE, {"name": "New", "query": "customer_tags CONTAINS 'a'"}, "write_customers")
    denied(SEGMENT_DELETE, {"id": segment_id}, "write_customers")
    denied(BASIC_CREATE, {"d": {"title": "T", "code": "NEW"}}, "write_discounts")
    denied(DEACTIVATE, {"id": node["id"]}, "write_discounts")
    denied(DELETE, {"id": node["id"]}, "write_discounts")
    denied(BY_CODE, {"code": "VIP10"}, "read_discounts")
    # read_customers still reads segments
    assert shop.call("query($id: ID!) { segment(id: $id) { name } }", {"id": segment_id}, token=readonly)[
        "data"]["segment"] == {"name": "VIP"}
    assert len(shop.control("segments")["segments"]) == 1
    assert [(d["codes"], d["status"]) for d in shop.control("discounts")["discounts"]] == [(["VIP10"], "ACTIVE")]
