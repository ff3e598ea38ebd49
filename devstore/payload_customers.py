"""Customer webhook payloads: the Customer resource as the customer topics send it (and as orders
and checkouts nest it), the bodies of `customers/delete` and the tag-change topics, and the email and
SMS consent topics. Since 2025-01 the resource carries neither tags nor consents; their changes
travel as those topics of their own, built here from the same customer row.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from .payload_context import Payload, ShopContext, customer_address, utc_millis
from .state import DevStore, gid


def customer_resource(ctx: ShopContext, row: sqlite3.Row, *, nested: bool = False) -> Payload:
    """The Customer as webhooks show it since 2025-01: no tags, no consents, no order statistics."""
    body: Payload = {
        "id": row["id"],
        "created_at": ctx.time(row["created_at"]),
        "updated_at": ctx.time(row["updated_at"]),
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "state": row["state"],
        "note": row["note"],
        "verified_email": bool(row["verified_email"]),
        "multipass_identifier": None,
        "tax_exempt": False,
        "email": row["email"],
        "phone": row["phone"],
        "currency": ctx.currency,
    }
    address = customer_address(row)
    if not nested:  # the customer topics list addresses; a customer nested in an order does not
        body["addresses"] = [address]
    body["tax_exemptions"] = []
    body["admin_graphql_api_id"] = gid("Customer", row["id"])
    body["default_address"] = address
    return body


def customer_row(store: DevStore, shop: str, customer_id: int | None) -> sqlite3.Row | None:
    if customer_id is None:
        return None
    return store.conn().execute("SELECT * FROM customers WHERE shop = ? AND id = ?",
                                (shop, customer_id)).fetchone()


def customer(store: DevStore, ctx: ShopContext, customer_id: int) -> Payload | None:
    row = customer_row(store, ctx.domain, customer_id)
    return customer_resource(ctx, row) if row else None


def customer_deleted(customer_id: int) -> Payload:
    return {"id": customer_id, "tax_exemptions": [], "admin_graphql_api_id": gid("Customer", customer_id)}


def customer_tags_changed(customer_id: int, tags: Iterable[str], occurred_at: str) -> Payload:
    """`customer.tags_added` / `_removed`: GraphQL-style keys, the changed tags only."""
    return {"customerId": gid("Customer", customer_id), "tags": list(tags), "occurredAt": utc_millis(occurred_at)}


def _consent_time(ctx: ShopContext, row: sqlite3.Row, state: str) -> str | None:
    """When the consent was given or withdrawn: devstore keeps no separate time, so the customer's
    last change; none for a consent never given (`not_subscribed`), as in Shopify's samples."""
    return None if state == "not_subscribed" else ctx.time(row["updated_at"])


def email_consent(store: DevStore, ctx: ShopContext, customer_id: int) -> Payload | None:
    row = customer_row(store, ctx.domain, customer_id)
    if row is None:
        return None
    state = row["email_marketing_state"].lower()
    return {"customer_id": row["id"], "email_address": row["email"],
            "email_marketing_consent": {"state": state,
                                        "opt_in_level": "single_opt_in" if state == "subscribed" else None,
                                        "consent_updated_at": _consent_time(ctx, row, state)}}


def sms_consent(store: DevStore, ctx: ShopContext, customer_id: int) -> Payload | None:
    row = customer_row(store, ctx.domain, customer_id)
    if row is None:
        return None
    state = row["sms_marketing_state"].lower()
    return {"id": row["id"], "phone": row["phone"],
            "sms_marketing_consent": {"state": state,
                                      "opt_in_level": "single_opt_in" if state == "subscribed" else None,
                                      "consent_updated_at": _consent_time(ctx, row, state),
                                      "consent_collected_from": "other"}}
