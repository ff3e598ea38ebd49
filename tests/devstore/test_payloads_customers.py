"""devstore's webhook payloads for customers, products, the shop, bulk operations and compliance, with
Shopify's keys."""
from __future__ import annotations

import datetime as dt

import pytest

from devstore import compliance_mutations, mutations, payloads
from devstore.state import Event, gid, iso
from tests.devstore.test_payloads import (  # noqa: F401 - fixtures
    CUSTOMER_KEYS, NOV, PRODUCT_KEYS, SHOP, SHOP_KEYS, VARIANT_KEYS, build, captured, catalog, customer_id,
)


# -- customers -----------------------------------------------------------------------------------
def test_customer_payload_has_no_tags_and_no_consent(store, customer_id):
    body = build(store, "customers/create", "Customer", customer_id)
    assert set(body) == CUSTOMER_KEYS
    assert "tags" not in body and "email_marketing_consent" not in body and "sms_marketing_consent" not in body
    assert body["created_at"] == "2026-11-20T10:15:00-05:00"
    assert (body["email"], body["phone"], body["currency"]) == ("ada@example.com", "+15551234567", "USD")
    assert body["admin_graphql_api_id"] == gid("Customer", customer_id)


def test_customer_update_bumps_updated_at_and_sends_consent_topics_on_change(store, customer_id):
    events = captured(store)
    later = NOV + dt.timedelta(hours=1)
    mutations.customer_update(store, SHOP, customer_id, first_name="Augusta", sms_marketing_state="SUBSCRIBED",
                              now=later)
    assert [e.topic for e in events] == ["customers/update", "customers_marketing_consent/update"]
    body = build(store, "customers/update", "Customer", customer_id)
    assert (body["first_name"], body["updated_at"]) == ("Augusta", "2026-11-20T11:15:00-05:00")
    sms = build(store, "customers_marketing_consent/update", "Customer", customer_id)
    assert sms["sms_marketing_consent"]["state"] == "subscribed" and sms["phone"] == "+15551234567"
    email = build(store, "customers_email_marketing_consent/update", "Customer", customer_id)
    assert email == {"customer_id": customer_id, "email_address": "ada@example.com",
                     "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                                 "consent_updated_at": "2026-11-20T11:15:00-05:00"}}
    with pytest.raises(ValueError):
        mutations.customer_update(store, SHOP, customer_id, tags=["x"])


def test_customer_tag_events_follow_shopifys_sample(store, customer_id):
    body = build(store, "customer.tags_added", "Customer", customer_id,
                 {"tags": ["seg:vip", "wholesale"], "occurred_at": iso(NOV)})
    assert body == {"customerId": gid("Customer", customer_id), "tags": ["seg:vip", "wholesale"],
                    "occurredAt": "2026-11-20T15:15:00.000Z"}
    removed = build(store, "customer.tags_removed", "Customer", customer_id, {"tags": "seg:vip, old"})
    assert removed["tags"] == ["seg:vip", "old"]


def test_customer_delete(store, customer_id, catalog):
    other = mutations.customer_create(store, SHOP, email="bye@example.com")
    events = captured(store)
    mutations.customer_delete(store, SHOP, other)
    assert payloads.build(store, events[0]) == {"id": other, "tax_exemptions": [],
                                                "admin_graphql_api_id": gid("Customer", other)}
    mutations.order_create(store, SHOP, customer_id=customer_id, line_items=[{"variant_id": catalog[2]}])
    with pytest.raises(ValueError):
        mutations.customer_delete(store, SHOP, customer_id)


# -- products, shop, bulk operations, compliance -------------------------------------------------
def test_product_payloads(store, catalog):
    product_id = store.conn().execute("SELECT product_id FROM variants WHERE id = ?", (catalog[0],)).fetchone()[0]
    body = build(store, "products/create", "Product", product_id)
    assert set(body) == PRODUCT_KEYS
    assert (body["product_type"], body["vendor"], body["tags"]) == ("Shoes", "Acme", "outdoor, running")
    assert [set(v) for v in body["variants"]] == [VARIANT_KEYS, VARIANT_KEYS]
    assert [v["price"] for v in body["variants"]] == ["89.99", "89.99"]

    mutations.product_update(store, SHOP, product_id, tags=["sale"], product_type="Trail Shoes")
    updated = build(store, "products/update", "Product", product_id)
    assert (updated["tags"], updated["product_type"]) == ("sale", "Trail Shoes")
    events = captured(store)
    mutations.product_delete(store, SHOP, product_id)
    assert payloads.build(store, events[0]) == {"id": product_id}


def test_app_uninstalled_is_the_shop_resource(store):
    body = build(store, "app/uninstalled", "Shop", None, {"api_key": "k"})
    assert set(body) == SHOP_KEYS
    shop = store.shop(SHOP)
    assert (body["id"], body["myshopify_domain"], body["iana_timezone"]) == (shop["id"], SHOP, "America/New_York")
    assert body["plan_name"] == "shopify" and body["currency"] == "USD"


def test_bulk_operation_finished(store):
    with store.tx() as conn:
        conn.execute("INSERT INTO bulk_operations (id, shop, api_key, type, status, query, error_code, created_at, "
                     "completed_at) VALUES (4000000001, ?, 'k', 'QUERY', 'COMPLETED', '{}', NULL, ?, ?)",
                     (SHOP, iso(NOV), iso(NOV + dt.timedelta(minutes=2))))
    body = build(store, "bulk_operations/finish", "BulkOperation", 4000000001)
    assert body == {"admin_graphql_api_id": "gid://shopify/BulkOperation/4000000001",
                    "completed_at": "2026-11-20T10:17:00-05:00", "created_at": "2026-11-20T10:15:00-05:00",
                    "error_code": None, "status": "completed", "type": "query"}


def test_compliance_payloads(store, catalog, customer_id):
    order_id = mutations.order_create(store, SHOP, customer_id=customer_id, line_items=[{"variant_id": catalog[2]}])
    shop_id = store.shop(SHOP)["id"]
    events = captured(store)
    request_id = compliance_mutations.customers_data_request(store, SHOP, customer_id)
    compliance_mutations.customers_redact(store, SHOP, customer_id, [order_id])
    compliance_mutations.shop_redact(store, SHOP)
    data_request, redact, shop_redact = (payloads.build(store, e) for e in events)
    person = {"id": customer_id, "email": "ada@example.com", "phone": "+15551234567"}
    assert data_request == {"shop_id": shop_id, "shop_domain": SHOP, "customer": person,
                            "orders_requested": [order_id], "data_request": {"id": request_id}}
    assert redact == {"shop_id": shop_id, "shop_domain": SHOP, "customer": person, "orders_to_redact": [order_id]}
    assert shop_redact == {"shop_id": shop_id, "shop_domain": SHOP}


def test_unknown_resources_and_topics_build_nothing(store):
    assert payloads.build(store, Event(SHOP, "orders/create", "Order", 1)) is None
    assert payloads.build(store, Event(SHOP, "themes/publish", "Theme", 1)) is None
    assert payloads.build(store, Event("nope.myshopify.com", "shop/redact", "Shop", None)) is None
