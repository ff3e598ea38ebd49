"""Storing a batch of pixel events: the shop its key names (checked against the shop the batch says it
is from), the caps, then in one transaction the visitor, the raw events (a repeated event is stored
once) and the visitor-days the rollup must redo. Nothing is stored when anything is refused."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from segments.shops.models import ShopStatus
from segments.storefront.batch import Batch
from segments.storefront.caps import over_cap
from segments.storefront.models import IdentifiedBy, Pixel
from shopseg.errors import Refused

_VISITOR = """
INSERT INTO segments_visitor AS t (shop_id, client_id, first_seen_at, last_seen_at, customer_shopify_id,
                                   identified_by, identified_at)
VALUES (%(shop)s, %(client)s, %(first)s, %(last)s, %(customer)s, %(by)s, %(at)s)
ON CONFLICT (shop_id, client_id) DO UPDATE SET
    first_seen_at = LEAST(t.first_seen_at, excluded.first_seen_at),
    last_seen_at = GREATEST(t.last_seen_at, excluded.last_seen_at),
    customer_shopify_id = COALESCE(excluded.customer_shopify_id, t.customer_shopify_id),
    customer_id = CASE WHEN excluded.customer_shopify_id IS DISTINCT FROM t.customer_shopify_id
                        AND excluded.customer_shopify_id IS NOT NULL THEN NULL ELSE t.customer_id END,
    identified_by = CASE WHEN excluded.customer_shopify_id IS NOT NULL
                          AND t.customer_shopify_id IS DISTINCT FROM excluded.customer_shopify_id
                         THEN excluded.identified_by ELSE t.identified_by END,
    identified_at = CASE WHEN excluded.customer_shopify_id IS NOT NULL
                          AND t.customer_shopify_id IS DISTINCT FROM excluded.customer_shopify_id
                         THEN excluded.identified_at ELSE t.identified_at END
RETURNING id, customer_id IS NULL AND customer_shopify_id IS NOT NULL
"""
# Joins a visitor to its customer once the store copy has them (also run by the rollup, for customers
# that arrive after the visitor named them).
VISITORS_LINK = """
UPDATE segments_visitor v SET customer_id = c.id
FROM segments_customer c
WHERE v.customer_id IS NULL AND v.customer_shopify_id IS NOT NULL
  AND c.shop_id = v.shop_id AND c.shopify_id = v.customer_shopify_id {only}
"""
_EVENTS = """
INSERT INTO segments_storefrontevent (shop_id, day, event_id, visitor_id, name, occurred_at, received_at, seq,
                                      url, referrer, data)
SELECT %s, u.day, u.event_id, %s, u.name, u.occurred_at, %s, u.seq, u.url, u.referrer, u.data::jsonb
FROM unnest(%s::date[], %s::text[], %s::text[], %s::timestamptz[], %s::int[], %s::text[], %s::text[], %s::text[])
     AS u(day, event_id, name, occurred_at, seq, url, referrer, data)
ON CONFLICT (shop_id, day, event_id) DO NOTHING
RETURNING occurred_at
"""
_DIRTY = """
INSERT INTO segments_visitordaydirty (shop_id, visitor_id, day)
SELECT %s, %s, d FROM unnest(%s::date[]) AS d
ON CONFLICT (shop_id, visitor_id, day) DO NOTHING
"""


@dataclass(frozen=True)
class IngestShop:
    id: int
    timezone: str


def shop_for(batch: Batch) -> IngestShop:
    """The shop whose key the batch carries, if it is the shop the batch says it is from and still
    installed (four columns, not a Shop: this runs on every batch)."""
    found = Pixel.objects.filter(ingest_key=batch.key).values_list(
        "shop_id", "shop__domain", "shop__status", "shop__iana_timezone").first()
    if found is None:
        raise Refused(403, "unknown_key", "No shop has this ingest key.")
    shop_id, domain, status, timezone = found
    if domain != batch.shop_domain:
        raise Refused(403, "wrong_shop", "This ingest key belongs to another shop.")
    if status == ShopStatus.UNINSTALLED:
        raise Refused(403, "not_installed", "The shop has uninstalled the app.")
    return IngestShop(id=shop_id, timezone=timezone or "UTC")


def batch_ingest(batch: Batch, *, now: dt.datetime) -> int:
    """Store the batch; the number of events new to us (a repeated event is not stored twice)."""
    shop = shop_for(batch)
    cap = over_cap(shop_id=shop.id, client_id=batch.client_id, events=len(batch.events))
    if cap:
        raise Refused(429, "rate_limited", f"Slow down: {cap}.")
    events = batch.events
    named = [e for e in events if e.customer_shopify_id is not None]
    last_named = max(named, key=lambda e: (e.occurred_at, e.seq)) if named else None
    zone = ZoneInfo(shop.timezone)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_VISITOR, {
            "shop": shop.id, "client": batch.client_id, "first": min(e.occurred_at for e in events),
            "last": max(e.occurred_at for e in events),
            "customer": last_named.customer_shopify_id if last_named else None,
            "by": (IdentifiedBy.CHECKOUT if last_named.name == "checkout_completed" else IdentifiedBy.LOGIN)
            if last_named else "",
            "at": now if last_named else None})
        visitor_id, unlinked = cursor.fetchone()
        if unlinked:
            cursor.execute(VISITORS_LINK.format(only="AND v.id = %s"), [visitor_id])
        cursor.execute(_EVENTS, [
            shop.id, visitor_id, now, [e.occurred_at.astimezone(dt.timezone.utc).date() for e in events],
            [e.event_id for e in events], [e.name for e in events], [e.occurred_at for e in events],
            [e.seq for e in events], [e.url for e in events], [e.referrer for e in events],
            [json.dumps(e.data, separators=(",", ":")) for e in events]])
        stored = [row[0] for row in cursor.fetchall()]
        if stored:
            cursor.execute(_DIRTY, [shop.id, visitor_id, sorted({m.astimezone(zone).date() for m in stored})])
    return len(stored)
