"""Recording deliveries (fast, in the request) and processing them (in a worker, idempotently)."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
from dataclasses import dataclass

from django.db import DataError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from segments.mirror.cause import dirty_cause
from segments.models import ShopStatus
from shopseg.shopify.domains import normalize_shop_domain
from webhooks.handlers import ALWAYS_PROCESSED, HANDLERS
from webhooks.models import EventStatus, WebhookEvent

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


class DeliveryInvalid(Exception):
    """A delivery whose HMAC checked out but whose headers or body are unusable (400)."""


@dataclass(frozen=True)
class Delivery:
    topic: str
    shop_domain: str
    webhook_id: str
    event_id: str
    api_version: str
    triggered_at: dt.datetime | None
    payload: dict


def delivery_parse(*, headers, body: bytes) -> Delivery:
    topic = headers.get("X-Shopify-Topic", "").strip()
    webhook_id = headers.get("X-Shopify-Webhook-Id", "").strip()
    shop = normalize_shop_domain(headers.get("X-Shopify-Shop-Domain", ""))
    if not topic or not webhook_id or shop is None:
        raise DeliveryInvalid("X-Shopify-Topic, X-Shopify-Webhook-Id and a valid X-Shopify-Shop-Domain are required")
    if len(topic) > 100 or len(webhook_id) > 100:
        raise DeliveryInvalid("header too long")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise DeliveryInvalid("body is not JSON") from None
    if not isinstance(payload, dict):
        raise DeliveryInvalid("body is not a JSON object")
    triggered = parse_datetime(headers.get("X-Shopify-Triggered-At", "") or "") if headers.get(
        "X-Shopify-Triggered-At") else None
    return Delivery(topic=topic, shop_domain=shop, webhook_id=webhook_id,
                    event_id=headers.get("X-Shopify-Event-Id", "")[:100],
                    api_version=headers.get("X-Shopify-API-Version", "")[:20], triggered_at=triggered,
                    payload=payload)


RECORD_SQL = """
INSERT INTO webhooks_webhookevent
    (webhook_id, event_id, shop_domain, topic, api_version, triggered_at, payload, received_at, status,
     attempts, next_attempt_at, last_error)
SELECT %(webhook_id)s, %(event_id)s, %(shop)s, %(topic)s, %(api_version)s, %(triggered_at)s, {payload},
       %(now)s,
       CASE WHEN %(known)s AND (%(always)s OR EXISTS (
                SELECT 1 FROM segments_shop WHERE domain = %(shop)s AND status = %(installed)s))
            THEN %(pending)s ELSE %(ignored)s END,
       0, %(now)s, ''
ON CONFLICT (webhook_id) DO NOTHING
RETURNING id, status
"""


def webhook_event_record(*, delivery: Delivery, raw_body: bytes | None = None) -> tuple[int, str] | None:
    """Store the delivery once, in one statement; None for a duplicate.

    Unknown topics, and shops we do not serve, are kept as ignored. One round trip (no separate
    shop lookup, no savepoint) keeps the endpoint fast under Shopify's bursts.
    """
    known = delivery.topic in HANDLERS
    field = WebhookEvent._meta.get_field("payload")
    params = {
        "webhook_id": delivery.webhook_id, "event_id": delivery.event_id, "shop": delivery.shop_domain,
        "topic": delivery.topic, "api_version": delivery.api_version,
        "triggered_at": WebhookEvent._meta.get_field("triggered_at").get_db_prep_save(delivery.triggered_at,
                                                                                       connection),
        # The body was parsed and checked to be a JSON object; store its bytes rather than re-encoding.
        "payload": raw_body.decode() if raw_body is not None else field.get_db_prep_save(delivery.payload, connection),
        "now": WebhookEvent._meta.get_field("received_at").get_db_prep_save(timezone.now(), connection),
        "known": known, "always": delivery.topic in ALWAYS_PROCESSED, "installed": ShopStatus.INSTALLED.value,
        "pending": EventStatus.PENDING.value, "ignored": EventStatus.IGNORED.value,
    }
    payload_sql = "CAST(%(payload)s AS jsonb)" if connection.vendor == "postgresql" else "%(payload)s"
    # Outside a transaction this is one round trip (autocommit); inside one, a savepoint keeps a
    # refused payload from aborting the caller's transaction.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(RECORD_SQL.format(payload=payload_sql), params)
            row = cursor.fetchone()
    except DataError:  # JSON that PostgreSQL's jsonb refuses (e.g. \u0000): a bad delivery, not a crash
        raise DeliveryInvalid("payload cannot be stored as JSON") from None
    return (row[0], row[1]) if row else None


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(3600, 2 ** attempts) * random.uniform(0.8, 1.2))


def _process_locked(event: WebhookEvent) -> str:
    """Run the handler for an event the caller has locked; record the outcome on the row."""
    event.attempts += 1
    try:
        # a failing handler rolls back its own writes only; customers it dirties name the topic
        with transaction.atomic(), dirty_cause(event.topic):
            HANDLERS[event.topic](event.shop_domain, event.payload)
    except Exception as exc:  # recorded and retried with backoff; FAILED after MAX_ATTEMPTS
        event.last_error = f"{type(exc).__name__}: {str(exc)[:500]}"
        event.next_attempt_at = timezone.now() + _backoff(event.attempts)
        if event.attempts >= MAX_ATTEMPTS:
            event.status = EventStatus.FAILED
        event.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
        log.warning("webhook %s (%s) failed attempt %d: %s", event.webhook_id, event.topic, event.attempts,
                    type(exc).__name__)
        return "failed"
    event.status, event.processed_at, event.last_error = EventStatus.PROCESSED, timezone.now(), ""
    event.save(update_fields=["attempts", "status", "processed_at", "last_error"])
    return "processed"


def webhook_event_process(*, event_pk: int) -> str:
    """Run the topic's handler once; safe to call twice, from any number of workers."""
    with transaction.atomic():
        event = (WebhookEvent.objects.select_for_update(skip_locked=True)
                 .filter(pk=event_pk, status=EventStatus.PENDING).first())
        if event is None:
            return "skipped"  # processed already, ignored, or another worker holds it
        return _process_locked(event)


def webhook_events_drain(*, batch: int = 100, budget: dt.timedelta = dt.timedelta(seconds=50)) -> int:
    """Process due pending events, oldest first, a locked batch at a time, until none are left.

    `SKIP LOCKED` lets any number of workers drain together without waiting on each other.
    """
    deadline = timezone.now() + budget
    done = 0
    while timezone.now() < deadline:
        with transaction.atomic():
            events = list(WebhookEvent.objects.select_for_update(skip_locked=True)
                          .filter(status=EventStatus.PENDING, next_attempt_at__lte=timezone.now())
                          .order_by("id")[:batch])
            for event in events:
                _process_locked(event)
        if not events:
            break
        done += len(events)
    return done


def webhook_events_pending_due() -> bool:
    return WebhookEvent.objects.filter(status=EventStatus.PENDING, next_attempt_at__lte=timezone.now()).exists()
