"""Webhook subscriptions per shop, reconciled with what Shopify holds (never duplicated).

The compliance topics are not here: Shopify only accepts them from the app's configuration
(TOML / Partner Dashboard), and devstore delivers them to the same endpoint.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from segments.shops.graphql import ShopSender, with_shop_sender
from segments.shops.models import Shop
from shopseg.shopify.errors import ShopifyQueryError

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/shopify"

# GraphQL topic -> the scope it needs (write_X implies read_X). The webhooks app registers the topics
# it handles at start-up (webhooks.apps, from webhooks.handlers.TOPICS): one list, so no topic is
# subscribed without a handler, or handled without a subscription.
WEBHOOK_TOPICS: dict[str, str | None] = {}


def webhook_topics_register(topics: dict[str, str | None]) -> None:
    """Set the topics every shop is subscribed to (GraphQL topic -> scope, None for none)."""
    WEBHOOK_TOPICS.clear()
    WEBHOOK_TOPICS.update(topics)

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
