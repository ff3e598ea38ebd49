"""Recording a delivery, fast, in the request: parse its headers, then one statement that validates,
dedupes and stores it (Django's connection, or the fast path's prepared psycopg cursor)."""
from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

import psycopg
import psycopg.types.string
from django.db import DataError, IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from segments.shops.models import ShopStatus
from shopseg.shopify.domains import normalize_shop_domain
from webhooks.handlers import ALWAYS_PROCESSED, HANDLERS
from webhooks.models import EventStatus


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
    body: str      # the JSON text as received; the recording statement checks it is a JSON object
    deprecated_reason: str = ""    # X-Shopify-API-Deprecated-Reason: Shopify says this version or topic is going


def delivery_parse(*, headers, body: bytes) -> Delivery:
    topic = headers.get("X-Shopify-Topic", "").strip()
    webhook_id = headers.get("X-Shopify-Webhook-Id", "").strip()
    shop = normalize_shop_domain(headers.get("X-Shopify-Shop-Domain", ""))
    if not topic or not webhook_id or shop is None:
        raise DeliveryInvalid("X-Shopify-Topic, X-Shopify-Webhook-Id and a valid X-Shopify-Shop-Domain are required")
    if len(topic) > 100 or len(webhook_id) > 100:
        raise DeliveryInvalid("header too long")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise DeliveryInvalid(NOT_JSON) from None
    triggered = _triggered_at(headers.get("X-Shopify-Triggered-At", ""))
    if triggered is not None and timezone.is_naive(triggered):
        triggered = timezone.make_aware(triggered)   # as the model field would (without its warning)
    return Delivery(topic=topic, shop_domain=shop, webhook_id=webhook_id,
                    event_id=headers.get("X-Shopify-Event-Id", "")[:100],
                    api_version=headers.get("X-Shopify-API-Version", "").strip()[:20], triggered_at=triggered,
                    body=text, deprecated_reason=headers.get("X-Shopify-API-Deprecated-Reason", "").strip()[:255])


def _triggered_at(text: str) -> dt.datetime | None:
    """Shopify's time of the event, when readable. The header is not signed (the HMAC covers the
    body), so a malformed one is dropped rather than refusing an authentic delivery."""
    try:
        return parse_datetime(text.strip()) if text else None
    except ValueError:      # well-formed but impossible, e.g. month 13
        return None


NOT_JSON = "body is not JSON"
NOT_OBJECT = "body is not a JSON object"
TOO_DEEP = "body is nested too deeply"   # past PostgreSQL's stack depth limit while parsing it as jsonb

# The statement itself validates the body: the cast to jsonb refuses anything that is
# not JSON (DataError), and a document that is not an object becomes NULL, which the NOT NULL payload
# column refuses (IntegrityError) before the webhook id is even compared, so no refusal stores a row.
# The JSON is parsed once, by PostgreSQL, which has to parse it to store it as jsonb anyway.
_RECORD = """
INSERT INTO webhooks_webhookevent
    (webhook_id, event_id, shop_domain, topic, api_version, api_deprecated_reason, triggered_at, payload,
     customer_key, received_at, status, attempts, next_attempt_at, last_error)
SELECT %(webhook_id)s, %(event_id)s, %(shop)s, %(topic)s, %(api_version)s, %(deprecated)s, %(triggered_at)s, {payload},
       {customer_key}, %(now)s,
       CASE WHEN %(known)s AND (%(always)s OR EXISTS (
                SELECT 1 FROM segments_shop WHERE domain = %(shop)s AND status = %(installed)s))
            THEN %(pending)s ELSE %(ignored)s END,
       0, %(now)s, ''
FROM {body}
ON CONFLICT (webhook_id) DO NOTHING
RETURNING id, status
"""
# The customer a body names, as Shopify names it per topic: `customer.id` (orders, checkouts,
# compliance requests), `customer_id` (email consent), a `customerId` GID (customer.tags_*), `id`
# (customers/*). Anything else there (not a number, or past bigint) gives no key, never a refused
# delivery.
CUSTOMER_KEY_SQL = r"""CASE WHEN jsonb_typeof(body.doc) = 'object' THEN CAST(substring(coalesce(
    body.doc->'customer'->>'id', body.doc->>'customer_id', body.doc->>'customerId',
    CASE WHEN %(topic)s LIKE 'customers/%%' THEN body.doc->>'id' END) FROM '^(?:gid://shopify/Customer/)?(\d{1,18})$') AS bigint) END"""
RECORD_SQL = _RECORD.format(
    payload="CASE WHEN jsonb_typeof(body.doc) = 'object' THEN body.doc END", customer_key=CUSTOMER_KEY_SQL,
    body="(SELECT CAST(%(payload)s AS jsonb) AS doc OFFSET 0) AS body")   # OFFSET 0: cast (parse) once

_PENDING, _IGNORED, _INSTALLED = EventStatus.PENDING.value, EventStatus.IGNORED.value, ShopStatus.INSTALLED.value


def _record_params(delivery: Delivery) -> dict:
    """The statement's parameters (aware datetimes, as psycopg takes them)."""
    return {
        "webhook_id": delivery.webhook_id, "event_id": delivery.event_id, "shop": delivery.shop_domain,
        "topic": delivery.topic, "api_version": delivery.api_version, "deprecated": delivery.deprecated_reason,
        "triggered_at": delivery.triggered_at,
        "payload": delivery.body,   # stored as received, never re-encoded
        "now": timezone.now(), "known": delivery.topic in HANDLERS, "always": delivery.topic in ALWAYS_PROCESSED,
        "installed": _INSTALLED, "pending": _PENDING, "ignored": _IGNORED,
    }


def _refused(exc: Exception) -> DeliveryInvalid | None:
    """The DeliveryInvalid for a database error that means the body is unusable; None for any other."""
    cause = exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
    if isinstance(exc, (DataError, psycopg.DataError)):
        return DeliveryInvalid(NOT_JSON)
    if isinstance(cause, psycopg.errors.StatementTooComplex):
        return DeliveryInvalid(TOO_DEEP)
    if isinstance(cause, psycopg.errors.NotNullViolation) and cause.diag.column_name == "payload":
        return DeliveryInvalid(NOT_OBJECT)
    return None


def webhook_event_record(*, delivery: Delivery) -> tuple[int, str] | None:
    """Store the delivery once, in one statement; None for a duplicate.

    Unknown topics, and shops we do not serve, are kept as ignored. One round trip (no separate
    shop lookup, no savepoint) keeps the endpoint fast under Shopify's bursts.
    """
    params = _record_params(delivery)
    # Outside a transaction this is one round trip (autocommit); inside one, a savepoint keeps a
    # refused payload from aborting the caller's transaction.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(RECORD_SQL, params)
            row = cursor.fetchone()
    except (DataError, IntegrityError, OperationalError) as exc:
        refused = _refused(exc)
        if refused is None:
            raise
        raise refused from None
    return (row[0], row[1]) if row else None


def record_cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """A cursor for `webhook_event_record_psycopg` on a psycopg connection in autocommit."""
    cursor = psycopg.Cursor(conn)   # server-side binding, so the statement can be prepared
    # Strings typed as text rather than "unknown": one parameter is both a column value and a
    # comparison operand, and PostgreSQL must deduce a single type for it.
    cursor.adapters.register_dumper(str, psycopg.types.string.StrDumper)
    return cursor


def webhook_event_record_psycopg(cursor: psycopg.Cursor, *, delivery: Delivery) -> tuple[int, str] | None:
    """The same statement as `webhook_event_record`, prepared, on a `record_cursor` (webhooks.fastpath).

    The connection is in autocommit: when this returns, the delivery is committed.
    """
    try:
        row = cursor.execute(RECORD_SQL, _record_params(delivery),
                             prepare=True).fetchone()
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.StatementTooComplex) as exc:
        refused = _refused(exc)
        if refused is None:
            raise
        raise refused from None
    return (row[0], row[1]) if row else None
