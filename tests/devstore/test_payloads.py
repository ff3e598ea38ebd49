"""Payload shapes per topic, against the key sets of Shopify's sample payloads (webhooks reference, 2026-07)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from devstore import mutations, payloads, refund_mutations
from devstore.state import Event, gid

SHOP = "test-shop.myshopify.com"
UTC = dt.timezone.utc
NOV = dt.datetime(2026, 11, 20, 15, 15, tzinfo=UTC)   # 10:15 in New York (EST, -05:00)
JUL = dt.datetime(2026, 7, 4, 16, 0, tzinfo=UTC)      # 12:00 in New York (EDT, -04:00)

# Top-level keys of Shopify's sample payloads.
ORDER_KEYS = {
    "id", "admin_graphql_api_id", "app_id", "browser_ip", "buyer_accepts_marketing", "cancel_reason", "cancelled_at",
    "cart_token", "checkout_token", "client_details", "closed_at", "confirmation_number", "confirmed",
    "contact_email", "created_at", "currency", "current_shipping_price_set", "current_subtotal_price",
    "current_subtotal_price_set", "current_total_additional_fees_set", "current_total_discounts",
    "current_total_discounts_set", "current_total_duties_set", "current_total_price", "current_total_price_set",
    "current_total_tax", "current_total_tax_set", "customer_locale", "device_id", "discount_codes",
    "duties_included", "email", "estimated_taxes", "financial_status", "fulfillment_status", "landing_site",
    "landing_site_ref", "location_id", "merchant_business_entity_id", "merchant_of_record_app_id", "name", "note",
    "note_attributes", "number", "order_number", "order_status_url", "original_total_additional_fees_set",
    "original_total_duties_set", "payment_gateway_names", "phone", "po_number", "presentment_currency",
    "processed_at", "reference", "referring_site", "source_identifier", "source_name", "source_url",
    "subtotal_price", "subtotal_price_set", "tags", "tax_exempt", "tax_lines", "taxes_included", "test", "token",
    "total_cash_rounding_payment_adjustment_set", "total_cash_rounding_refund_adjustment_set", "total_discounts",
    "total_discounts_set", "total_line_items_price", "total_line_items_price_set", "total_outstanding",
    "total_price", "total_price_set", "total_shipping_price_set", "total_tax", "total_tax_set",
    "total_tip_received", "total_weight", "updated_at", "user_id", "billing_address", "customer",
    "discount_applications", "fulfillments", "line_items", "payment_terms", "refunds", "shipping_address",
    "shipping_lines", "returns", "line_item_groups"}
ORDER_LINE_KEYS = {
    "id", "admin_graphql_api_id", "attributed_staffs", "current_quantity", "fulfillable_quantity",
    "fulfillment_service", "fulfillment_status", "gift_card", "grams", "name", "price", "price_set",
    "product_exists", "product_id", "properties", "quantity", "requires_shipping", "sales_line_item_group_id", "sku",
    "taxable", "title", "total_discount", "total_discount_set", "variant_id", "variant_inventory_management",
    "variant_title", "vendor", "tax_lines", "duties", "discount_allocations"}
SHIPPING_LINE_KEYS = {
    "id", "carrier_identifier", "code", "current_discounted_price_set", "discounted_price", "discounted_price_set",
    "is_removed", "phone", "price", "price_set", "requested_fulfillment_service_id", "source", "title", "tax_lines",
    "discount_allocations"}
NESTED_CUSTOMER_KEYS = {
    "id", "created_at", "updated_at", "first_name", "last_name", "state", "note", "verified_email",
    "multipass_identifier", "tax_exempt", "email", "phone", "currency", "tax_exemptions", "admin_graphql_api_id",
    "default_address"}
CUSTOMER_KEYS = NESTED_CUSTOMER_KEYS | {"addresses"}
REFUND_KEYS = {
    "id", "order_id", "created_at", "note", "user_id", "processed_at", "duties", "total_duties_set", "return",
    "refund_shipping_lines", "restock", "admin_graphql_api_id", "order_adjustments", "refund_line_items",
    "transactions"}
REFUND_LINE_KEYS = {"id", "quantity", "line_item_id", "location_id", "restock_type", "subtotal", "total_tax",
                    "subtotal_set", "total_tax_set", "line_item"}
REFUND_NESTED_LINE_KEYS = {
    "id", "variant_id", "title", "quantity", "sku", "variant_title", "vendor", "fulfillment_service", "product_id",
    "requires_shipping", "taxable", "gift_card", "name", "variant_inventory_management", "properties",
    "product_exists", "fulfillable_quantity", "grams", "price", "total_discount", "fulfillment_status", "price_set",
    "total_discount_set", "discount_allocations", "duties", "admin_graphql_api_id", "tax_lines"}
TRANSACTION_KEYS = {
    "id", "order_id", "kind", "gateway", "status", "message", "created_at", "test", "authorization", "location_id",
    "user_id", "parent_id", "processed_at", "device_id", "error_code", "source_name", "receipt", "amount",
    "currency", "payment_id", "total_unsettled_set", "manual_payment_gateway", "amount_rounding",
    "admin_graphql_api_id"}
CHECKOUT_KEYS = {
    "token", "cart_token", "email", "gateway", "buyer_accepts_marketing", "created_at", "updated_at", "landing_site",
    "note", "note_attributes", "referring_site", "shipping_lines", "taxes_included", "total_weight", "currency",
    "completed_at", "closed_at", "user_id", "location_id", "source_identifier", "source_url", "device_id", "phone",
    "customer_locale", "line_items", "name", "source", "abandoned_checkout_url", "discount_codes", "tax_lines",
    "source_name", "presentment_currency", "buyer_accepts_sms_marketing", "sms_marketing_phone", "total_discounts",
    "total_line_items_price", "total_price", "total_tax", "subtotal_price", "total_duties", "reservation_token",
    "billing_address", "shipping_address", "customer"}
CHECKOUT_LINE_KEYS = {
    "applied_discounts", "discount_allocations", "key", "destination_location_id", "fulfillment_service",
    "gift_card", "grams", "origin_location_id", "presentment_title", "presentment_variant_title", "product_id",
    "properties", "quantity", "requires_shipping", "sku", "tax_lines", "taxable", "title", "variant_id",
    "variant_title", "variant_price", "vendor", "user_id", "unit_price_measurement", "rank", "compare_at_price",
    "line_price", "price"}
CHECKOUT_DELETE_KEYS = {
    "id", "presentment_currency", "buyer_accepts_sms_marketing", "sms_marketing_phone", "total_discounts",
    "total_line_items_price", "total_price", "total_tax", "subtotal_price", "cart_token", "total_duties",
    "reservation_token"}
CART_KEYS = {"id", "token", "line_items", "note", "updated_at", "created_at"}
CART_LINE_KEYS = {
    "id", "properties", "quantity", "variant_id", "key", "discounted_price", "discounts", "gift_card", "grams",
    "line_price", "original_line_price", "original_price", "price", "product_id", "sku", "taxable", "title",
    "total_discount", "vendor", "discounted_price_set", "line_price_set", "original_line_price_set", "price_set",
    "total_discount_set", "parent_relationship"}
PRODUCT_KEYS = {
    "admin_graphql_api_id", "body_html", "created_at", "handle", "id", "product_type", "published_at",
    "template_suffix", "title", "updated_at", "vendor", "status", "published_scope", "tags", "variants", "options",
    "images", "image", "media", "variant_gids", "has_variants_that_requires_components", "category"}
VARIANT_KEYS = {
    "admin_graphql_api_id", "barcode", "compare_at_price", "created_at", "id", "inventory_policy", "position", "price",
    "product_id", "sku", "taxable", "title", "updated_at", "option1", "option2", "option3", "image_id",
    "inventory_item_id", "inventory_quantity", "old_inventory_quantity"}
SHOP_KEYS = {
    "id", "name", "email", "domain", "province", "country", "address1", "zip", "city", "source", "phone", "latitude",
    "longitude", "primary_locale", "address2", "created_at", "updated_at", "country_code", "country_name",
    "currency", "customer_email", "timezone", "iana_timezone", "shop_owner", "money_format",
    "money_with_currency_format", "weight_unit", "province_code", "taxes_included", "auto_configure_tax_inclusivity",
    "tax_shipping", "county_taxes", "plan_display_name", "plan_name", "has_discounts", "has_gift_cards",
    "myshopify_domain", "google_apps_domain", "google_apps_login_enabled", "money_in_emails_format",
    "money_with_currency_in_emails_format", "eligible_for_payments", "requires_extra_payments_agreement",
    "password_enabled", "has_storefront", "finances", "primary_location_id", "checkout_api_supported",
    "multi_location_enabled", "setup_required", "pre_launch_enabled", "enabled_presentment_currencies",
    "marketing_sms_consent_enabled_at_checkout", "transactional_sms_disabled"}
MONEY_SET_KEYS = {"shop_money", "presentment_money"}
LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
MONEY = re.compile(r"-?\d+\.\d\d")


def build(store, topic: str, kind: str, id_: int | None, extra: dict | None = None) -> dict:
    payload = payloads.build(store, Event(SHOP, topic, kind, id_, extra))
    assert payload is not None
    json.dumps(payload)  # must serialise as sent
    return payload


@pytest.fixture
def catalog(store) -> list[int]:
    """Variant ids of two products."""
    shoe = mutations.product_create(store, SHOP, title="Trail Shoe", product_type="Shoes", vendor="Acme",
                                    tags=["outdoor", "running"], variants=[
                                        {"title": "42", "sku": "TS-42", "price_cents": 8999},
                                        {"title": "43", "sku": "TS-43", "price_cents": 8999}], now=NOV)
    sock = mutations.product_create(store, SHOP, title="Wool Sock", product_type="Socks", vendor="Knit Co",
                                    variants=[{"title": "M", "sku": "WS-M", "price_cents": 1250}], now=NOV)
    return [r[0] for r in store.conn().execute(
        "SELECT id FROM variants WHERE product_id IN (?, ?) ORDER BY id", (shoe, sock))]


@pytest.fixture
def customer_id(store) -> int:
    return mutations.customer_create(store, SHOP, first_name="Ada", last_name="Lovelace", email="ada@example.com",
                                     phone="+15551234567", email_marketing_state="SUBSCRIBED", now=NOV)


def captured(store) -> list[Event]:
    events: list[Event] = []
    store.subscribe(events.append)
    return events


# -- orders --------------------------------------------------------------------------------------
def test_order_payload_has_shopifys_keys_money_strings_and_local_times(store, catalog, customer_id):
    order_id = mutations.order_create(
        store, SHOP, customer_id=customer_id, line_items=[{"variant_id": catalog[0], "quantity": 2},
                                                          {"variant_id": catalog[2], "quantity": 1}],
        discount_codes=[{"code": "SAVE10", "amount_cents": 1925, "type": "percentage", "value": "10.0"}],
        shipping="express", device="mobile", browser_ip="203.0.113.9", cart_token="cart-1",
        checkout_token="chk-1", now=NOV)

    body = build(store, "orders/create", "Order", order_id)
    assert set(body) == ORDER_KEYS
    assert body["admin_graphql_api_id"] == gid("Order", order_id)
    assert body["created_at"] == "2026-11-20T10:15:00-05:00"
    assert body["name"] == "#1001" and body["order_number"] == 1001 and body["number"] == 1
    assert body["total_line_items_price"] == "192.48"       # 2 x 89.99 + 12.50
    assert body["total_discounts"] == "19.25"
    assert body["subtotal_price"] == "173.23"
    assert body["total_price"] == "188.22"                  # + 14.99 express shipping
    assert body["total_price_set"] == {"shop_money": {"amount": "188.22", "currency_code": "USD"},
                                       "presentment_money": {"amount": "188.22", "currency_code": "USD"}}
    assert body["discount_codes"] == [{"code": "SAVE10", "amount": "19.25", "type": "percentage"}]
    assert body["client_details"]["browser_ip"] == "203.0.113.9"
    assert "iPhone" in body["client_details"]["user_agent"]
    assert (body["source_name"], body["cart_token"], body["checkout_token"]) == ("web", "cart-1", "chk-1")
    assert (body["cancelled_at"], body["test"], body["refunds"], body["financial_status"]) == (None, False, [],
                                                                                              "paid")
    assert body["buyer_accepts_marketing"] is True
    [shipping] = body["shipping_lines"]
    assert set(shipping) == SHIPPING_LINE_KEYS
    assert (shipping["code"], shipping["title"], shipping["price"]) == ("express", "Express Shipping", "14.99")
    assert [set(line) for line in body["line_items"]] == [ORDER_LINE_KEYS, ORDER_LINE_KEYS]
    first = body["line_items"][0]
    assert (first["sku"], first["vendor"], first["quantity"], first["price"]) == ("TS-42", "Acme", 2, "89.99")
    assert sum(float(line["total_discount"]) for line in body["line_items"]) == pytest.approx(19.25)
    assert set(body["customer"]) == NESTED_CUSTOMER_KEYS
    assert body["customer"]["id"] == customer_id
    for key in ("total_price", "subtotal_price", "total_tax", "current_total_price"):
        assert MONEY.fullmatch(body[key])
    for key in [k for k in body if k.endswith("_set") and body[k] is not None]:
        assert set(body[key]) == MONEY_SET_KEYS


def test_times_follow_the_shops_offset_through_daylight_saving(store, catalog):
    order_id = mutations.order_create(store, SHOP, line_items=[{"variant_id": catalog[0]}], email="g@example.com",
                                      now=JUL)
    body = build(store, "orders/updated", "Order", order_id)
    assert body["created_at"] == "2026-07-04T12:00:00-04:00"
    assert all(LOCAL_TIME.fullmatch(body[k]) for k in ("created_at", "updated_at", "processed_at"))


def test_guest_and_pos_orders(store, catalog):
    guest = build(store, "orders/create", "Order", mutations.order_create(
        store, SHOP, line_items=[{"variant_id": catalog[2]}], email="guest@example.com", shipping=None))
    assert (guest["customer"], guest["email"], guest["shipping_lines"]) == (None, "guest@example.com", [])
    pos = build(store, "orders/create", "Order", mutations.order_create(
        store, SHOP, line_items=[{"variant_id": catalog[2]}], email="p@example.com", shipping=None, device="pos",
        source_name="pos"))
    assert (pos["source_name"], pos["client_details"]) == ("pos", None)


def test_order_create_sends_create_and_paid_as_one_action_and_completes_the_checkout(store, catalog):
    checkout_id = mutations.checkout_create(store, SHOP, line_items=[{"variant_id": catalog[0]}],
                                            email="c@example.com", token="tok-1")
    events = captured(store)
    mutations.order_create(store, SHOP, line_items=[{"variant_id": catalog[0]}], email="c@example.com",
                           checkout_token="tok-1")
    assert [e.topic for e in events] == ["orders/create", "orders/paid", "checkouts/update"]
    assert len({e.extra["event_id"] for e in events}) == 1
    assert build(store, "checkouts/update", "Checkout", checkout_id)["completed_at"] is not None

    events.clear()
    mutations.order_create(store, SHOP, line_items=[{"variant_id": catalog[0]}], email="c@example.com",
                           financial_status="pending")
    assert [e.topic for e in events] == ["orders/create"]


def test_refund_payload_and_the_order_after_it(store, catalog, customer_id):
    order_id = mutations.order_create(store, SHOP, customer_id=customer_id, shipping="standard",
                                      line_items=[{"variant_id": catalog[0], "quantity": 2}])
    line_id = build(store, "orders/create", "Order", order_id)["line_items"][0]["id"]
    events = captured(store)
    refund_id = refund_mutations.refund_create(store, SHOP, order_id, line_items=[{"line_item_id": line_id,
                                                                                   "quantity": 1}], note="Too small")
    assert [e.topic for e in events] == ["refunds/create", "orders/updated"]

    refund = build(store, "refunds/create", "Refund", refund_id)
    assert set(refund) == REFUND_KEYS
    assert (refund["order_id"], refund["note"]) == (order_id, "Too small")
    [item] = refund["refund_line_items"]
    assert set(item) == REFUND_LINE_KEYS and set(item["line_item"]) == REFUND_NESTED_LINE_KEYS
    assert (item["line_item_id"], item["quantity"], item["subtotal"]) == (line_id, 1, 89.99)
    assert item["subtotal_set"]["shop_money"]["amount"] == "89.99"
    [transaction] = refund["transactions"]
    assert set(transaction) == TRANSACTION_KEYS
    assert (transaction["kind"], transaction["amount"]) == ("refund", "89.99")

    order = build(store, "orders/updated", "Order", order_id)
    assert order["financial_status"] == "partially_refunded"
    assert order["current_total_price"] == "95.98"          # 179.98 + 5.99 - 89.99
    assert order["line_items"][0]["current_quantity"] == 1
    assert [r["id"] for r in order["refunds"]] == [refund_id]
    assert refund_mutations.refund_create(store, SHOP, order_id, line_items=[{"line_item_id": line_id,
                                                                              "quantity": 5}]) is not None
    assert refund_mutations.refund_create(store, SHOP, order_id, line_items=[{"line_item_id": line_id}]) is None


def test_cancelling_a_paid_order_refunds_it(store, catalog):
    order_id = mutations.order_create(store, SHOP, line_items=[{"variant_id": catalog[1]}], email="x@example.com")
    events = captured(store)
    refund_mutations.order_cancel(store, SHOP, order_id, reason="inventory", now=NOV)
    assert [e.topic for e in events] == ["refunds/create", "orders/cancelled", "orders/updated"]

    body = build(store, "orders/cancelled", "Order", order_id)
    assert (body["cancelled_at"], body["cancel_reason"]) == ("2026-11-20T10:15:00-05:00", "inventory")
    assert (body["financial_status"], body["current_total_price"]) == ("refunded", "0.00")
    assert body["refunds"][0]["transactions"][0]["amount"] == body["total_price"]
    with pytest.raises(ValueError):
        refund_mutations.order_cancel(store, SHOP, order_id)


# -- checkouts and carts -------------------------------------------------------------------------
def test_checkout_payload(store, catalog, customer_id):
    checkout_id = mutations.checkout_create(store, SHOP, line_items=[{"variant_id": catalog[0], "quantity": 2}],
                                            customer_id=customer_id, cart_token="cart-9", token="chk-9", now=NOV)
    body = build(store, "checkouts/create", "Checkout", checkout_id)
    assert set(body) == CHECKOUT_KEYS  # no id: Shopify's checkouts/create|update samples have none
    assert (body["token"], body["cart_token"], body["email"]) == ("chk-9", "cart-9", "ada@example.com")
    assert body["abandoned_checkout_url"].startswith(f"https://{SHOP}/") and "/checkouts/chk-9/recover?key=" in \
        body["abandoned_checkout_url"]
    assert (body["completed_at"], body["total_price"], body["created_at"]) == (None, "179.98",
                                                                              "2026-11-20T10:15:00-05:00")
    assert set(body["customer"]) == NESTED_CUSTOMER_KEYS
    [line] = body["line_items"]
    assert set(line) == CHECKOUT_LINE_KEYS
    assert (line["sku"], line["vendor"], line["line_price"]) == ("TS-42", "Acme", "179.98")

    mutations.checkout_update(store, SHOP, checkout_id, line_items=[{"variant_id": catalog[2]}])
    assert build(store, "checkouts/update", "Checkout", checkout_id)["total_price"] == "12.50"


def test_checkout_delete_carries_the_deleted_checkouts_totals(store, catalog):
    checkout_id = mutations.checkout_create(store, SHOP, line_items=[{"variant_id": catalog[2]}],
                                            email="g@example.com", cart_token="cart-3")
    events = captured(store)
    mutations.checkout_delete(store, SHOP, checkout_id)
    [event] = events
    body = payloads.build(store, event)
    assert set(body) == CHECKOUT_DELETE_KEYS
    assert (body["id"], body["cart_token"], body["total_price"]) == (checkout_id, "cart-3", "12.50")


def test_cart_payload_is_anonymous(store, catalog):
    cart_id = mutations.cart_create(store, SHOP, line_items=[{"variant_id": catalog[1], "quantity": 3}],
                                    token="cart-tok", now=NOV)
    body = build(store, "carts/create", "Cart", cart_id)
    assert set(body) == CART_KEYS
    assert body["id"] == body["token"] == "cart-tok"
    assert "customer" not in body and "email" not in body
    assert body["created_at"] == "2026-11-20T15:15:00.000Z"  # carts use UTC milliseconds, as in Shopify's sample
    [line] = body["line_items"]
    assert set(line) == CART_LINE_KEYS
    assert (line["quantity"], line["line_price"], line["sku"]) == (3, "269.97", "TS-43")
