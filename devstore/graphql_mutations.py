"""Mutation resolvers: tags, metafields, webhook subscriptions, staged uploads and bulk operations (web
pixels', Flow's, segments', discounts' and inventory items' live in their own modules and are registered
here)."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from graphql import GraphQLResolveInfo

from . import tags as tag_ops
from .bulk import staged_target
from .customer_segments import MUTATION_RESOLVERS as SEGMENT_MUTATIONS
from .discounts import MUTATION_RESOLVERS as DISCOUNT_MUTATIONS
from .flow import MUTATION_RESOLVERS as FLOW_MUTATIONS
from .graphql_connections import Obj, fetch
from .graphql_context import RequestContext, require
from .graphql_inventory import MUTATION_RESOLVERS as INVENTORY_MUTATIONS
from .graphql_metafields import definition_create, metafields_set
from .graphql_objects import bulk_operation_object, customer_object, order_object, product_object, webhook_object
from .state import gid, iso, parse_gid, utcnow
from .topics import ENUM_TO_REST, required_scope, scope_granted, scope_text
from .web_pixels import MUTATION_RESOLVERS as WEB_PIXEL_MUTATIONS

Resolver = Callable[..., Any]


def context(info: GraphQLResolveInfo) -> RequestContext:
    return info.context


def _user_errors(errors: list[tuple[list[str], str]]) -> list[dict[str, Any]]:
    return [{"field": path, "message": message} for path, message in errors]


# -- tags ----------------------------------------------------------------------------------------

_TAGGED_LOADERS: dict[str, tuple[str, Callable[[RequestContext, Any], Obj]]] = {
    "Customer": ("customers", customer_object),
    "Order": ("orders", order_object),
    "Product": ("products", product_object),
}


def _tags_mutation(adding: bool) -> Resolver:
    def resolve(_root: None, info: GraphQLResolveInfo, id: str, tags: list[str]) -> Obj:  # noqa: A002
        ctx = context(info)
        kind = tag_ops.resource_kind(id)
        if kind is not None:
            require(ctx, info, tag_ops.WRITE_SCOPES[kind])
        change = tag_ops.add_tags if adding else tag_ops.remove_tags
        result = change(ctx.store, ctx.shop, id, tags)
        node = None
        if not result.errors and result.kind is not None:
            table, build = _TAGGED_LOADERS[result.kind]
            row = fetch(ctx, table, result.id)
            node = build(ctx, row) if row else None
        return {"node": node, "userErrors": _user_errors(result.errors)}
    return resolve


# -- metafields ----------------------------------------------------------------------------------

def resolve_metafields_set(_root: None, info: GraphQLResolveInfo, metafields: list[dict[str, Any]]) -> Obj:
    written, errors = metafields_set(context(info), metafields)
    return {"metafields": written, "userErrors": errors}


def resolve_metafield_definition_create(_root: None, info: GraphQLResolveInfo, definition: dict[str, Any]) -> Obj:
    created, errors = definition_create(context(info), definition)
    return {"createdDefinition": created, "userErrors": errors}


# -- webhook subscriptions -----------------------------------------------------------------------

def _local_host(host: str) -> bool:
    """Hosts that can only be a developer's own machine or network, where plain http is tolerated."""
    if host in ("localhost", "host.docker.internal") or "." not in host or host.endswith(
            (".localhost", ".local", ".test", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


def uri_problem(uri: str) -> str | None:
    """Shopify takes https, `pubsub://project:topic` or an EventBridge ARN. devstore also lets local
    development servers receive over plain http, since the app under development rarely has TLS."""
    if uri.startswith("arn:aws:events:"):
        return None
    if uri.startswith("pubsub://"):
        project, _, topic = uri[len("pubsub://"):].partition(":")
        return None if project and topic else "Address is invalid"
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Address is invalid"
    if parts.scheme == "http" and not _local_host(parts.hostname):
        return "Address protocol http:// is not supported"
    return None


def resolve_webhook_create(_root: None, info: GraphQLResolveInfo, topic: str,
                           webhookSubscription: dict[str, Any]) -> Obj:  # noqa: N803 - GraphQL name
    ctx = context(info)

    def refuse(field: list[str], message: str) -> Obj:
        return {"webhookSubscription": None, "userErrors": [{"field": field, "message": message}]}

    # The compliance topics are not values of WebhookSubscriptionTopic (they are configured in the
    # app's TOML only), so graphql-core refuses them before this runs, as Shopify does.
    rest = ENUM_TO_REST.get(topic)
    if rest is None:
        return refuse(["topic"], f"Invalid topic specified: {topic}.")
    needed = required_scope(rest)
    if needed is not None and not scope_granted(set(ctx.scopes), needed):
        return refuse(["topic"], f"Invalid topic specified: {rest}. Your app requires the {scope_text(needed)} "
                                 "to subscribe to this topic.")
    uri = (webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl") or "").strip()
    if not uri:
        return refuse(["webhookSubscription", "uri"], "Address can't be blank")
    problem = uri_problem(uri)
    if problem:
        return refuse(["webhookSubscription", "uri"], problem)
    fmt = webhookSubscription.get("format") or "JSON"
    sub_id = ctx.store.next_id("WebhookSubscription")   # reserved before the write lock, as next_id requires
    stamp = iso(utcnow())
    with ctx.store.tx() as conn:
        taken = conn.execute("SELECT 1 FROM webhook_subscriptions WHERE shop = ? AND api_key = ? AND topic = ? "
                             "AND uri = ?", (ctx.shop, ctx.api_key, topic, uri)).fetchone()
        if taken:
            return refuse(["webhookSubscription", "uri"], "Address for this topic has already been taken")
        conn.execute("INSERT INTO webhook_subscriptions (id, shop, api_key, topic, uri, format, api_version, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (sub_id, ctx.shop, ctx.api_key, topic, uri, fmt, ctx.api_version, stamp, stamp))
        row = conn.execute("SELECT * FROM webhook_subscriptions WHERE id = ?", (sub_id,)).fetchone()
    return {"webhookSubscription": webhook_object(row), "userErrors": []}


def resolve_webhook_delete(_root: None, info: GraphQLResolveInfo, id: str) -> Obj:  # noqa: A002
    ctx = context(info)
    sub_id = parse_gid(id, "WebhookSubscription")
    with ctx.store.tx() as conn:
        deleted = sub_id is not None and conn.execute(
            "DELETE FROM webhook_subscriptions WHERE id = ? AND shop = ? AND api_key = ?",
            (sub_id, ctx.shop, ctx.api_key)).rowcount == 1
    if not deleted or sub_id is None:
        return {"deletedWebhookSubscriptionId": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}]}
    return {"deletedWebhookSubscriptionId": gid("WebhookSubscription", sub_id), "userErrors": []}


# -- staged uploads and bulk operations ----------------------------------------------------------

def resolve_staged_uploads_create(_root: None, info: GraphQLResolveInfo, input: list[dict[str, Any]]) -> Obj:  # noqa: A002
    ctx = context(info)
    errors = []
    for index, item in enumerate(input):
        if item.get("httpMethod", "PUT") != "POST":
            errors.append({"field": ["input", str(index), "httpMethod"],
                           "message": "devstore stages BULK_MUTATION_VARIABLES uploads with httpMethod: POST only"})
        if not item["filename"].strip():
            errors.append({"field": ["input", str(index), "filename"], "message": "Filename can't be blank"})
    if errors:
        return {"stagedTargets": None, "userErrors": errors}
    targets = [staged_target(ctx.store, ctx.config.public_url, ctx.shop, item["filename"], item["mimeType"])
               for item in input]
    return {"stagedTargets": targets, "userErrors": []}


def _bulk_payload(ctx: RequestContext, row: Any, errors: list[dict[str, Any]]) -> Obj:
    return {"bulkOperation": bulk_operation_object(ctx, row) if row is not None else None, "userErrors": errors}


def resolve_bulk_query(_root: None, info: GraphQLResolveInfo, query: str) -> Obj:
    ctx = context(info)
    row, errors = ctx.bulk.start_query(ctx, query)
    return _bulk_payload(ctx, row, errors)


def resolve_bulk_mutation(_root: None, info: GraphQLResolveInfo, mutation: str, stagedUploadPath: str,  # noqa: N803
                          clientIdentifier: str | None = None) -> Obj:  # noqa: N803 - GraphQL names
    ctx = context(info)
    row, errors = ctx.bulk.start_mutation(ctx, mutation, stagedUploadPath, clientIdentifier)
    return _bulk_payload(ctx, row, errors)


def resolve_bulk_cancel(_root: None, info: GraphQLResolveInfo, id: str) -> Obj:  # noqa: A002
    ctx = context(info)
    op_id = parse_gid(id, "BulkOperation")
    if op_id is None:
        return _bulk_payload(ctx, None, [{"field": ["id"], "code": "INVALID",
                                          "message": "Bulk operation does not exist"}])
    row, errors = ctx.bulk.cancel(ctx, op_id)
    return _bulk_payload(ctx, row, errors)


MUTATION_RESOLVERS: dict[str, Resolver] = {
    "tagsAdd": _tags_mutation(adding=True),
    "tagsRemove": _tags_mutation(adding=False),
    "metafieldsSet": resolve_metafields_set,
    "metafieldDefinitionCreate": resolve_metafield_definition_create,
    "webhookSubscriptionCreate": resolve_webhook_create,
    "webhookSubscriptionDelete": resolve_webhook_delete,
    "stagedUploadsCreate": resolve_staged_uploads_create,
    "bulkOperationRunQuery": resolve_bulk_query,
    "bulkOperationRunMutation": resolve_bulk_mutation,
    "bulkOperationCancel": resolve_bulk_cancel,
    **WEB_PIXEL_MUTATIONS,
    **FLOW_MUTATIONS,
    **SEGMENT_MUTATIONS,
    **DISCOUNT_MUTATIONS,
    **INVENTORY_MUTATIONS,
}
