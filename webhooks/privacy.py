"""The raw deliveries' part in privacy compliance, registered with segments.privacy (which never
imports webhooks): which deliveries are about a customer, their section of a data-request export,
their erasure for customers/redact and shop/redact, and the payload retention.

A blanked delivery keeps its metadata row (webhook id for dedupe, topic, times): it is the delivery
log. Those not processed yet are marked ignored, so the data they carried is never applied after
an erasure.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q, QuerySet

from segments.mirror.models import ComplianceKind
from segments.privacy.compliance import (
    ShopErasure, register_customer_eraser, register_pending_eraser, register_retention_purge, register_shop_eraser,
)
from segments.privacy.selectors import CustomerKeys, register_export_section
from segments.shops.models import Shop
from webhooks.models import EventStatus, WebhookEvent

log = logging.getLogger(__name__)

COMPLIANCE_TOPICS = frozenset(ComplianceKind.values)
DEFAULT_PAYLOAD_RETENTION_DAYS = 30     # for deliveries to shops we do not know (never installed, or redacted)
ERASED_BEFORE_PROCESSING = "payload erased by a privacy request before it was processed"
# A delivery's payload blanked, with the customer id read from it (WebhookEvent.customer_key).
BLANKED = {"payload": {}, "customer_key": None}


def customer_webhook_events(*, keys: CustomerKeys) -> QuerySet[WebhookEvent]:
    """Stored deliveries whose payload is, or names, this customer (already blanked payloads never match).

    Shopify names a customer by `id` in customers/* and the consent topics, `customer.id` in orders
    and checkouts, `customer_id` in email consent, a GID in customer.tags_* and, as the kept or the
    deleted account, in customers/merge (whose errors name the person too); guest activity by email;
    refunds only by their order; carts only by token. Accounts merged into the customer count as
    theirs.
    """
    ids = sorted(keys.shopify_ids)
    gids = [f"gid://shopify/Customer/{i}" for i in ids]
    q = (Q(customer_key__in=ids) | Q(payload__customer__id__in=ids) | Q(payload__customer_id__in=ids)
         | Q(payload__customerId__in=gids)
         | Q(topic__startswith="customers", payload__id__in=ids)
         | Q(topic="customers/merge", payload__admin_graphql_api_customer_kept_id__in=gids)
         | Q(topic="customers/merge", payload__admin_graphql_api_customer_deleted_id__in=gids))
    for email in sorted(keys.emails):
        q |= Q(payload__email__iexact=email) | Q(payload__contact_email__iexact=email)
        q |= Q(payload__email_address__iexact=email)
    if keys.order_shopify_ids:
        orders = sorted(keys.order_shopify_ids)
        q |= Q(topic__startswith="orders/", payload__id__in=orders) | Q(topic="refunds/create",
                                                                        payload__order_id__in=orders)
    if keys.cart_tokens:
        tokens = sorted(keys.cart_tokens)
        q |= Q(payload__cart_token__in=tokens) | Q(topic__startswith="carts/", payload__token__in=tokens)
    return WebhookEvent.objects.filter(shop_domain=keys.shop_domain).filter(q)


def customer_webhook_deliveries(*, keys: CustomerKeys) -> list[dict]:
    """The export's section: every stored delivery about the customer, oldest first."""
    return [{"webhook_id": e.webhook_id, "topic": e.topic, "received_at": e.received_at,
             "triggered_at": e.triggered_at, "status": e.status, "payload": e.payload}
            for e in customer_webhook_events(keys=keys).order_by("received_at", "pk")]


def _set_aside_pending_deliveries(*, keys: CustomerKeys) -> dict[str, int]:
    """customers/redact, first in line: deliveries about the customer not applied yet never will be.
    Updating an event another worker is applying waits for it, so the mirror rows it writes exist
    (and its payload is there to blank) by the time the rest of the erasure runs."""
    unapplied = customer_webhook_events(keys=keys).filter(status=EventStatus.PENDING).update(
        status=EventStatus.IGNORED, last_error=ERASED_BEFORE_PROCESSING, **BLANKED)
    return {"webhook_payloads": unapplied}


def _erase_customer_webhook_payloads(*, keys: CustomerKeys) -> dict[str, int]:
    blanked = (customer_webhook_events(keys=keys).exclude(status=EventStatus.PENDING).exclude(payload={})
               .update(**BLANKED))
    return {"webhook_payloads": blanked}


def _erase_shop_webhook_events(*, erasure: ShopErasure) -> dict[str, int]:
    """Deliveries go; those of compliance topics stay, blanked, as the record of the requests we acted on."""
    events = WebhookEvent.objects.filter(shop_domain=erasure.shop_domain)
    deleted = events.exclude(topic__in=COMPLIANCE_TOPICS).exclude(status=EventStatus.PENDING).delete()[0]
    # Pending rows may be in the batch a worker is draining (this transaction's own included): they
    # are blanked rather than deleted, so the worker's bookkeeping still finds its row.
    unapplied = events.filter(status=EventStatus.PENDING).update(
        status=EventStatus.IGNORED, last_error=ERASED_BEFORE_PROCESSING, **BLANKED)
    blanked = events.exclude(payload={}).update(**BLANKED)
    return {"webhook_events": deleted, "webhook_payloads": unapplied + blanked}


def webhook_payloads_purge(*, now: dt.datetime) -> int:
    """Blank raw payloads older than their shop's retention; unprocessed ones are kept until processed.
    Returns how many payloads were blanked."""
    done = WebhookEvent.objects.exclude(status=EventStatus.PENDING).exclude(payload={})
    blanked = 0
    # One UPDATE per distinct retention setting, not per shop.
    for days in sorted(set(Shop.objects.values_list("payload_retention_days", flat=True))):
        shops = Shop.objects.filter(payload_retention_days=days).values("domain")
        blanked += done.filter(shop_domain__in=shops,
                               received_at__lt=now - dt.timedelta(days=days)).update(**BLANKED)
    unknown = done.exclude(shop_domain__in=Shop.objects.values("domain")).filter(
        received_at__lt=now - dt.timedelta(days=DEFAULT_PAYLOAD_RETENTION_DAYS))
    blanked += unknown.update(**BLANKED)
    log.info("retention purge: %d webhook payloads blanked", blanked)
    return blanked


register_pending_eraser(_set_aside_pending_deliveries)
register_customer_eraser(_erase_customer_webhook_payloads)
register_shop_eraser(_erase_shop_webhook_events)
register_export_section("webhook_deliveries", customer_webhook_deliveries)
register_retention_purge(webhook_payloads_purge)
