"""Shopify Flow's side of an app's triggers: `flowTriggerReceive(handle, payload)` starts the workflows
that begin with the app's trigger. devstore keeps what it received (`flow_triggers`, read with
`GET /_control/shops/<shop>/flow-triggers`) instead of running workflows.

What devstore holds a call to, as Shopify does: the handle is one of the app's deployed `flow_trigger`
extensions (here, the repository's extensions/*/shopify.extension.toml); the payload is an object
whose keys are the trigger's fields (a `customer_reference` field is `customer_id`, a customer of the
shop, and needs read_customers); every field the trigger declares is present. Anything else is a
userError and starts nothing. The messages are devstore's wording.
"""
from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLResolveInfo

from .graphql_context import RequestContext, access_denied
from .state import DevStore, iso, utcnow

EXTENSIONS = Path(__file__).resolve().parent.parent / "extensions"
REFERENCES = {"customer_reference": ("customer_id", "read_customers")}


@cache
def triggers() -> dict[str, list[str]]:
    """Each deployed trigger's handle -> its payload keys."""
    found = {}
    for path in EXTENSIONS.glob("*/shopify.extension.toml"):
        config = tomllib.loads(path.read_text())
        for ext in config.get("extensions", []):
            if ext.get("type") == "flow_trigger":    # its fields: the file's [settings] (the CLI's template)
                fields = ext.get("settings", config.get("settings", {})).get("fields", [])
                found[ext["handle"]] = [REFERENCES[f["type"]][0] if f["type"] in REFERENCES else f["key"]
                                        for f in fields]
    return found


def _error(field: list[str] | None, message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


def resolve_flow_trigger_receive(_root: None, info: GraphQLResolveInfo, handle: str | None = None,
                                 payload: Any = None, body: str | None = None) -> dict[str, Any]:
    ctx: RequestContext = info.context
    if handle is None and body is not None:     # the deprecated form: {"trigger_id", "properties"}
        return {"userErrors": [_error(["body"], "Use `handle` and `payload`.")]}
    keys = triggers().get(handle or "")
    if keys is None:
        return {"userErrors": [_error(["handle"], f"No Flow trigger with handle {handle!r} for this app.")]}
    if not isinstance(payload, dict):
        return {"userErrors": [_error(["payload"], "The payload must be a JSON object.")]}
    unknown, missing = sorted(set(payload) - set(keys)), [k for k in keys if k not in payload]
    if unknown or missing:
        return {"userErrors": [_error(["payload"], f"Fields not in the trigger: {unknown}; missing: {missing}.")]}
    if "customer_id" in keys:
        if not ctx.granted("read_customers"):
            raise access_denied(info, "read_customers")
        customer = payload["customer_id"]
        if not (isinstance(customer, int) and ctx.store.conn().execute(
                "SELECT 1 FROM customers WHERE shop = ? AND id = ?", (ctx.shop, customer)).fetchone()):
            return {"userErrors": [_error(["payload", "customer_id"], "Customer not found.")]}
    with ctx.store.tx() as conn:
        conn.execute("INSERT INTO flow_triggers (shop, api_key, handle, payload, received_at) VALUES (?, ?, ?, ?, ?)",
                     (ctx.shop, ctx.api_key, handle, json.dumps(payload), iso(utcnow())))
    return {"userErrors": []}


def received(store: DevStore, shop: str, limit: int = 500) -> list[dict[str, Any]]:
    rows = store.conn().execute("SELECT handle, payload, received_at FROM flow_triggers WHERE shop = ? "
                                "ORDER BY id DESC LIMIT ?", (shop, limit)).fetchall()
    return [{"handle": r["handle"], "payload": json.loads(r["payload"]), "received_at": r["received_at"]}
            for r in rows]


MUTATION_RESOLVERS = {"flowTriggerReceive": resolve_flow_trigger_receive}
