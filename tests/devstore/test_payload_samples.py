"""Every webhook body devstore sends, against Shopify's published sample for its topic
(tests/webhooks/samples, or tests/devstore/samples for topics the app does not handle yet): the same
keys, recursively, and values of the same JSON type.

A value may be null where the sample's is null, or where Shopify documents the field as optional
(NULLABLE says why, path by path). A list is checked element by element against the sample's
first element; where the sample's list is empty, against the sample named in ELEMENT_SAMPLES, and
otherwise not at all (Shopify shows no element to compare with).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from devstore import compliance_mutations, inventory, mutations, payloads, refund_mutations
from devstore.state import Event, iso

SHOP = "test-shop.myshopify.com"
NOV = dt.datetime(2026, 11, 20, 15, 15, tzinfo=dt.timezone.utc)
SAMPLES = Path(__file__).resolve().parents[1] / "webhooks" / "samples"
DEVSTORE_SAMPLES = Path(__file__).resolve().parent / "samples"     # topics the app does not handle yet

# Topics devstore sends whose sample is not stored. shop/update's body is the Shop resource, which
# the stored app/uninstalled sample shows, so it is checked against that one.
SAMPLE_OF = {"shop/update": "app/uninstalled"}
NO_SAMPLE = {"orders/delete", "app/scopes_update"}
# Lists that are empty in a sample, checked against another sample's resource.
ELEMENT_SAMPLES = {("orders", "$.refunds[]"): "refunds/create"}
# Paths (per resource: the topic before its "/") where Shopify sends null although its sample has a value.
ADDRESS_NULLABLE = {
    "company": "optional; null in the sample's customer default_address",
    "phone": "optional at checkout and in a customer's address book",
    "first_name": "optional (Shopify requires only the last name)",
}
def _addresses(*paths: str) -> dict[str, str]:
    return {f"{path}.{key}": why for path in paths for key, why in ADDRESS_NULLABLE.items()}


NULLABLE: dict[str, dict[str, str]] = {
    "orders": {
        "$.cancelled_at": "null unless the order is cancelled", "$.cancel_reason": "null unless cancelled",
        "$.customer": "null for a guest checkout",
        **_addresses("$.billing_address", "$.shipping_address", "$.customer.default_address"),
        "$.refunds[].note": "optional", "$.refunds[].user_id": "null unless a staff member refunded",
        "$.refunds[].transactions[].message": "optional",
    },
    "checkouts": {
        "$.customer": "null until the shopper logs in or is known",
        **_addresses("$.billing_address", "$.shipping_address", "$.customer.default_address"),
    },
    "customers": {"$.note": "optional", **_addresses("$.default_address", "$.addresses[]")},
    "refunds": {"$.note": "optional", "$.user_id": "null unless a staff member refunded",
                "$.transactions[].message": "optional"},
    "products": {"$.variants[].compare_at_price": "null unless the variant is on sale"},
}


def sample(topic: str):
    name = f"{topic.replace('/', '__')}.json"
    return json.loads((SAMPLES / name if (SAMPLES / name).exists() else DEVSTORE_SAMPLES / name).read_text())


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}[type(value)]


def mismatches(reference, body, *, resource: str, path: str = "$") -> list[str]:
    """How `body` differs from `reference` in keys and types, as "path: what" lines."""
    want, got = json_type(reference), json_type(body)
    if want == "null":
        return []                       # the sample shows no value to compare with
    if got == "null":
        return [] if path in NULLABLE.get(resource, {}) else [f"{path}: null, the sample has {want}"]
    if want != got:
        return [f"{path}: {got}, the sample has {want}"]
    found: list[str] = []
    if want == "an object":
        found += [f"{path}.{key}: missing" for key in reference.keys() - body.keys()]
        found += [f"{path}.{key}: not in the sample" for key in body.keys() - reference.keys()]
        for key in reference.keys() & body.keys():
            found += mismatches(reference[key], body[key], resource=resource, path=f"{path}.{key}")
    elif want == "an array":
        element = reference[0] if reference else None
        if element is None and (resource, f"{path}[]") in ELEMENT_SAMPLES:
            element = sample(ELEMENT_SAMPLES[resource, f"{path}[]"])
        if element is not None:
            for item in body:
                found += mismatches(element, item, resource=resource, path=f"{path}[]")
    return sorted(set(found))


@pytest.fixture(scope="module")
def sent(tmp_path_factory) -> dict[str, list[dict]]:
    """Topic -> every body devstore built for it while a store lived through each kind of change
    (built when emitted, as the webhook sender does; a delete's body is taken before its row goes)."""
    from devstore.state import DevStore

    store = DevStore(tmp_path_factory.mktemp("samples") / "devstore.db")
    store.shop_create(SHOP)
    bodies: dict[str, list[dict]] = {}

    def record(event: Event) -> None:
        body = payloads.build(store, event)
        assert body is not None, event
        json.dumps(body)
        bodies.setdefault(event.topic, []).append(body)

    store.subscribe(record)
    shoe = mutations.product_create(store, SHOP, title="Trail Shoe", product_type="Shoes", vendor="Acme",
                                    tags=["outdoor"], variants=[{"title": "42", "sku": "TS-42", "price_cents": 8999},
                                                                {"title": "43", "sku": "TS-43", "price_cents": 8999}],
                                    now=NOV)
    mutations.product_update(store, SHOP, shoe, tags=["sale"])
    sock = mutations.product_create(store, SHOP, title="Wool Sock", product_type="Socks", vendor="Knit",
                                    variants=[{"title": "M", "sku": "WS-M", "price_cents": 1250}], now=NOV)
    variant = store.conn().execute("SELECT id FROM variants WHERE product_id = ?", (shoe,)).fetchone()[0]
    inventory.variant_cost_set(store, SHOP, variant, 4150)       # the merchant enters a cost, then clears it
    inventory.variant_cost_set(store, SHOP, variant, None)

    ada = mutations.customer_create(store, SHOP, first_name="Ada", last_name="Lovelace", email="ada@example.com",
                                    phone="+15551234567", email_marketing_state="SUBSCRIBED", now=NOV)
    bob = mutations.customer_create(store, SHOP, first_name="Bob", last_name="Biller", email="bob@example.com",
                                    now=NOV)
    mutations.customer_update(store, SHOP, ada, sms_marketing_state="SUBSCRIBED", note="Likes wool")
    mutations.customer_update(store, SHOP, ada, email_marketing_state="UNSUBSCRIBED")
    mutations.customer_update(store, SHOP, bob, email_marketing_state="SUBSCRIBED")
    mutations.customer_update(store, SHOP, bob, email_marketing_state="NOT_SUBSCRIBED")   # no consent time
    gone = mutations.customer_create(store, SHOP, first_name="Gus", last_name="Gone", email="gus@example.com")
    mutations.customer_delete(store, SHOP, gone)

    paid = mutations.order_create(store, SHOP, customer_id=ada, line_items=[{"variant_id": variant, "quantity": 2}],
                                  discount_codes=[{"code": "SAVE10", "amount_cents": 1800, "type": "percentage"}],
                                  shipping="express", cart_token="cart-1", checkout_token="chk-1", now=NOV)
    line = payloads.build(store, Event(SHOP, "orders/create", "Order", paid))["line_items"][0]["id"]
    refund_mutations.refund_create(store, SHOP, paid, line_items=[{"line_item_id": line, "quantity": 1}],
                                   note="Too small")
    guest = mutations.order_create(store, SHOP, line_items=[{"variant_id": variant}], email="guest@example.com",
                                   shipping=None)
    refund_mutations.order_cancel(store, SHOP, guest, reason="inventory")
    mutations.order_create(store, SHOP, line_items=[{"variant_id": variant}], email="pos@example.com", shipping=None,
                           device="pos", source_name="pos")

    known = mutations.checkout_create(store, SHOP, line_items=[{"variant_id": variant}], customer_id=bob,
                                      cart_token="cart-2", token="chk-2")
    mutations.checkout_update(store, SHOP, known, line_items=[{"variant_id": variant, "quantity": 3}])
    anonymous = mutations.checkout_create(store, SHOP, line_items=[{"variant_id": variant}], email="anon@example.com")
    mutations.checkout_delete(store, SHOP, anonymous)
    mutations.order_create(store, SHOP, customer_id=bob, line_items=[{"variant_id": variant}],
                           checkout_token="chk-2", cart_token="cart-2")       # completes the checkout

    cart = mutations.cart_create(store, SHOP, line_items=[{"variant_id": variant}], token="cart-3")
    mutations.cart_update(store, SHOP, cart, line_items=[{"variant_id": variant, "quantity": 2}])
    mutations.product_delete(store, SHOP, sock)

    with store.tx() as conn:
        conn.execute("INSERT INTO bulk_operations (id, shop, api_key, type, status, query, error_code, created_at, "
                     "completed_at) VALUES (4000000001, ?, 'k', 'QUERY', 'COMPLETED', '{}', NULL, ?, ?)",
                     (SHOP, iso(NOV), iso(NOV + dt.timedelta(minutes=2))))
    for event in (Event(SHOP, "bulk_operations/finish", "BulkOperation", 4000000001),
                  Event(SHOP, "customer.tags_added", "Customer", ada, {"tags": ["seg:vip", "wholesale"]}),
                  Event(SHOP, "customer.tags_removed", "Customer", ada, {"tags": "seg:vip"}),
                  Event(SHOP, "shop/update", "Shop", None, {}),
                  Event(SHOP, "app/uninstalled", "Shop", None, {"api_key": "k"}),
                  Event(SHOP, "app/scopes_update", "AppInstallation", 1,
                        {"previous": ["read_orders"], "current": ["read_orders", "read_customers"]}),
                  Event(SHOP, "orders/delete", "Order", guest)):
        record(event)
    compliance_mutations.customers_data_request(store, SHOP, ada)
    compliance_mutations.customers_redact(store, SHOP, ada, [paid])
    compliance_mutations.shop_redact(store, SHOP)
    store.close()
    return bodies


def stored_samples() -> set[str]:
    return {p.stem.replace("__", "/") for folder in (SAMPLES, DEVSTORE_SAMPLES) for p in folder.glob("*.json")}


def test_every_topic_devstore_sends_is_sent_here_and_has_a_sample_or_is_named_as_missing(sent):
    topics = set(payloads.BUILDERS)
    assert set(sent) == topics
    assert topics - stored_samples() - set(SAMPLE_OF) == NO_SAMPLE


@pytest.mark.parametrize("topic", sorted(set(payloads.BUILDERS) - NO_SAMPLE))
def test_devstore_body_follows_shopifys_sample_key_for_key(sent, topic):
    reference = sample(SAMPLE_OF.get(topic, topic))
    resource = topic.split("/")[0]
    for body in sent[topic]:
        assert mismatches(reference, body, resource=resource) == []


def test_checkouts_are_named_by_token_and_deleted_by_id_and_cart_token(sent):
    for topic in ("checkouts/create", "checkouts/update"):
        assert all("id" not in body and body["token"] and body["cart_token"] for body in sent[topic])
    [deleted] = sent["checkouts/delete"]
    assert "token" not in deleted and deleted["id"] and deleted["cart_token"]


def test_consent_bodies_carry_a_null_time_for_a_consent_never_given(sent):
    email = [body["email_marketing_consent"] for body in sent["customers_email_marketing_consent/update"]]
    assert {"state": "not_subscribed", "opt_in_level": None, "consent_updated_at": None} in email
    assert any(c["state"] == "unsubscribed" and c["consent_updated_at"] for c in email)
    sms = [body["sms_marketing_consent"] for body in sent["customers_marketing_consent/update"]]
    assert sms and all(c["consent_updated_at"] for c in sms if c["state"] != "not_subscribed")


def test_addresses_are_objects(sent):
    for topic in ("orders/create", "checkouts/create", "checkouts/update"):
        for body in sent[topic]:
            assert isinstance(body["billing_address"], dict) and isinstance(body["shipping_address"], dict)
    for body in sent["customers/create"] + sent["customers/update"]:
        assert isinstance(body["default_address"], dict) and body["addresses"] == [body["default_address"]]


def test_the_comparison_finds_what_differs():
    reference = {"id": 1, "when": None, "lines": [{"price": "1.00"}], "total": {"amount": "1.00"}}
    body = {"id": "1", "when": 5, "lines": [{"price": None, "qty": 1}], "total": None, "extra": True}
    assert mismatches(reference, body, resource="orders") == [
        "$.extra: not in the sample", "$.id: a string, the sample has a number",
        "$.lines[].price: null, the sample has a string", "$.lines[].qty: not in the sample",
        "$.total: null, the sample has an object"]
    # a list empty in the sample is compared with the resource ELEMENT_SAMPLES names
    assert "$.refunds[].order_id: missing" in mismatches({"refunds": []}, {"refunds": [{"id": 1}]}, resource="orders")
    assert mismatches({"cancelled_at": "2021-12-31T19:00:00-05:00"}, {"cancelled_at": None}, resource="orders") == []
    assert mismatches({"cancelled_at": "2021-12-31T19:00:00-05:00"}, {"cancelled_at": None}, resource="carts") == [
        "$.cancelled_at: null, the sample has a string"]
