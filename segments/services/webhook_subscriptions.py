"""Webhook subscriptions per shop, reconciled with what Shopify holds (never duplicated).

The compliance topics are not here: Shopify only accepts them from the app's configuration
(TOML / Partner Dashboard), and devstore delivers them to the same endpoint.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from segments.models import Shop
from segments.services.shop_graphql import ShopSender, with_shop_sender
from shopseg.shopify.errors import ShopifyQueryError

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/shopify"

# Topic -> the scope it needs (write_X implies read_X).
WEBHOOK_TOPICS: dict[str, str | None] = {
    "APP_UNINSTALLED": None,
    "APP_SCOPES_UPDATE": None,
    "BULK_OPERATIONS_FINISH": None,
    "SHOP_UPDATE": None,
    "ORDERS_CREATE": "read_orders",
    "ORDERS_UPDATED": "read_orders",
    "ORDERS_PAID": "read_orders",
    "ORDERS_CANCELLED": "read_orders",
    "REFUNDS_CREATE": "read_orders",
    "CHECKOUTS_CREATE": "read_orders",
    "CHECKOUTS_UPDATE": "read_orders",
    "CHECKOUTS_DELETE": "read_orders",
    "CARTS_CREATE": "read_orders",
    "CARTS_UPDATE": "read_orders",
    "CUSTOMERS_CREATE": "read_customers",
    "CUSTOMERS_UPDATE": "read_customers",
    "CUSTOMERS_DELETE": "read_customers",
    "CUSTOMERS_MERGE": "read_customers",
    "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE": "read_customers",
    "CUSTOMERS_MARKETING_CONSENT_UPDATE": "read_customers",
    "CUSTOMER_TAGS_ADDED": "read_customers",
    "CUSTOMER_TAGS_REMOVED": "read_customers",
    "PRODUCTS_CREATE": "read_products",
    "PRODUCTS_UPDATE": "read_products",
    "PRODUCTS_DELETE": "read_products",
}

LIST = """
query Subscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CREATE = """
mutation Create($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""
DELETE = """
mutation Delete($id: ID!) {
  webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } }
}
"""


@dataclass(frozen=True)
class ReconcileResult:
    created: tuple[str, ...]
    deleted: tuple[str, ...]
    kept: tuple[str, ...]


def webhook_uri() -> str:
    return f"{settings.SHOPSEG_APP_URL.rstrip('/')}{WEBHOOK_PATH}"


def desired_topics(shop: Shop) -> set[str]:
    return {topic for topic, scope in WEBHOOK_TOPICS.items() if scope is None or shop.has_scope(scope)}


def _existing(sender: ShopSender) -> list[dict]:
    nodes, after = [], None
    while True:
        page = sender.call(LIST, {"after": after}).data["webhookSubscriptions"]
        nodes.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def webhook_subscriptions_reconcile(*, shop_id: int) -> ReconcileResult:
    """Create what is missing, delete our own stale ones (wrong URI, duplicates, unwanted topics)."""
    shop = Shop.objects.get(pk=shop_id)
    wanted, uri = desired_topics(shop), webhook_uri()

    def reconcile(sender: ShopSender) -> ReconcileResult:
        kept: dict[str, str] = {}
        stale: list[str] = []
        for sub in _existing(sender):
            if sub["topic"] in wanted and sub["uri"] == uri and sub["topic"] not in kept:
                kept[sub["topic"]] = sub["id"]
            else:  # the list holds only this app's subscriptions, so anything else is ours and stale
                stale.append(sub["id"])
        for sub_id in stale:
            sender.call(DELETE, {"id": sub_id})
        created = []
        for topic in sorted(wanted - kept.keys()):
            result = sender.call(CREATE, {"topic": topic, "uri": uri}).data["webhookSubscriptionCreate"]
            if result["userErrors"]:
                raise ShopifyQueryError(result["userErrors"])
            created.append(topic)
        return ReconcileResult(created=tuple(created), deleted=tuple(stale), kept=tuple(sorted(kept)))

    result = with_shop_sender(shop_id=shop_id, call=reconcile)
    log.info("webhooks for shop %s: %d created, %d deleted, %d kept", shop.domain, len(result.created),
             len(result.deleted), len(result.kept))
    return result
