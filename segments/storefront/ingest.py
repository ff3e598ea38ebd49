"""Storing a batch of pixel events: the shop its key names (checked against the shop the batch says it
is from), the caps, then one statement that writes the visitor, the raw events (a repeated event is
stored once) and the visitor-days the rollup must redo, only if the key still names that installed
shop. Nothing is stored when anything is refused.

One statement, so one round trip and its own transaction: the web pixel's batches are the app's
busiest traffic (shopseg.fastpath serves them in front of Django, on a connection of its own with the
statement prepared, its arrays bound in binary). Its order of locks is the visitor's row, then its
dirty days, the order the rollup takes them in too (segments.storefront.rollup).
"""
from __future__ import annotations

import datetime as dt
import json
import time

import psycopg
from django.db import connection

from segments.shops.models import ShopStatus
from segments.storefront.batch import Batch
from segments.storefront.caps import over_cap
from segments.storefront.models import IdentifiedBy
from shopseg.errors import Refused

SHOP_CACHE_SECONDS = 5.0   # how long a key's shop is trusted for counting caps; the statement checks it anew
# Joins a visitor to its customer once the store copy has them (also run by the rollup, for customers
# that arrive after the visitor named them).
VISITORS_LINK = """
UPDATE segments_visitor v SET customer_id = c.id
FROM segments_customer c
WHERE v.customer_id IS NULL AND v.customer_shopify_id IS NOT NULL
  AND c.shop_id = v.shop_id AND c.shopify_id = v.customer_shopify_id {only}
"""
_STORE = f"""
WITH shop AS (
    SELECT s.id, COALESCE(NULLIF(s.iana_timezone, ''), 'UTC') AS zone
    FROM segments_pixel p JOIN segments_shop s ON s.id = p.shop_id
    WHERE p.ingest_key = %(key)s AND s.domain = %(domain)s AND s.status <> '{ShopStatus.UNINSTALLED}'
), visitor AS (
    INSERT INTO segments_visitor AS t (shop_id, client_id, first_seen_at, last_seen_at, customer_shopify_id,
                                       customer_id, identified_by, identified_at)
    SELECT shop.id, %(client)s, %(first)s, %(last)s, %(customer)s,
           (SELECT c.id FROM segments_customer c WHERE c.shop_id = shop.id AND c.shopify_id = %(customer)s),
           %(by)s, %(at)s
    FROM shop
    ON CONFLICT (shop_id, client_id) DO UPDATE SET
        first_seen_at = LEAST(t.first_seen_at, excluded.first_seen_at),
        last_seen_at = GREATEST(t.last_seen_at, excluded.last_seen_at),
        customer_shopify_id = COALESCE(excluded.customer_shopify_id, t.customer_shopify_id),
        customer_id = CASE WHEN excluded.customer_shopify_id IS NOT NULL
                            AND excluded.customer_shopify_id IS DISTINCT FROM t.customer_shopify_id
                           THEN excluded.customer_id
                           ELSE COALESCE(t.customer_id, (SELECT c.id FROM segments_customer c
                                                         WHERE c.shop_id = t.shop_id
                                                           AND c.shopify_id = t.customer_shopify_id)) END,
        identified_by = CASE WHEN excluded.customer_shopify_id IS NOT NULL
                              AND t.customer_shopify_id IS DISTINCT FROM excluded.customer_shopify_id
                             THEN excluded.identified_by ELSE t.identified_by END,
        identified_at = CASE WHEN excluded.customer_shopify_id IS NOT NULL
                              AND t.customer_shopify_id IS DISTINCT FROM excluded.customer_shopify_id
                             THEN excluded.identified_at ELSE t.identified_at END
    RETURNING id
), stored AS (
    INSERT INTO segments_storefrontevent (shop_id, day, event_id, visitor_id, name, occurred_at, received_at,
                                          seq, url, referrer, data)
    SELECT shop.id, (u.occurred_at AT TIME ZONE 'UTC')::date, u.event_id, visitor.id, u.name, u.occurred_at,
           %(now)s, u.seq, u.url, u.referrer, u.data::jsonb
    FROM shop, visitor, unnest(%(ids)b::text[], %(names)b::text[], %(times)b::timestamptz[], %(seqs)b::int[],
                               %(urls)b::text[], %(referrers)b::text[], %(data)b::text[])
                        AS u(event_id, name, occurred_at, seq, url, referrer, data)
    ON CONFLICT (shop_id, day, event_id) DO NOTHING
    RETURNING occurred_at
), dirty AS (
    INSERT INTO segments_visitordaydirty (shop_id, visitor_id, day)
    SELECT DISTINCT shop.id, visitor.id, (stored.occurred_at AT TIME ZONE shop.zone)::date
    FROM shop, visitor, stored
    ON CONFLICT (shop_id, visitor_id, day) DO NOTHING
)
SELECT (SELECT count(*) FROM shop), (SELECT count(*) FROM stored)
"""
_SHOP = """
SELECT p.shop_id, s.domain, s.status FROM segments_pixel p JOIN segments_shop s ON s.id = p.shop_id
WHERE p.ingest_key = %s
"""
_shops: dict[str, tuple[float, int]] = {}     # ingest key -> (trusted until, shop id)


def shop_for(cursor: psycopg.Cursor, batch: Batch, *, cached: bool = True) -> int:
    """The id of the shop whose key the batch carries, if it is the shop the batch says it is from and
    still installed. A key's answer is kept for SHOP_CACHE_SECONDS: it only decides which caps count
    the batch, and the storing statement checks the key, the shop and the install itself."""
    known = _shops.get(batch.key) if cached else None
    if known is not None and known[0] > time.monotonic():
        return known[1]
    found = cursor.execute(_SHOP, [batch.key]).fetchone()
    if found is None:
        raise Refused(403, "unknown_key", "No shop has this ingest key.")
    shop_id, domain, status = found
    if domain != batch.shop_domain:
        raise Refused(403, "wrong_shop", "This ingest key belongs to another shop.")
    if status == ShopStatus.UNINSTALLED:
        raise Refused(403, "not_installed", "The shop has uninstalled the app.")
    if len(_shops) > 10_000:    # only keys that named a shop are kept: a bound for a process that lives long
        _shops.clear()
    _shops[batch.key] = (time.monotonic() + SHOP_CACHE_SECONDS, shop_id)
    return shop_id


def batch_ingest(batch: Batch, *, now: dt.datetime, cursor: psycopg.Cursor | None = None) -> int:
    """Store the batch; the number of events new to us (a repeated event is not stored twice).

    On `cursor` (shopseg.fastpath's connection, in autocommit, the statement prepared), or else on
    Django's connection, inside whatever transaction it is in."""
    if cursor is None:
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:   # server-side binding, for the binary arrays
            return batch_ingest(batch, now=now, cursor=cursor)
    shop_id = shop_for(cursor, batch)
    cap = over_cap(shop_id=shop_id, client_id=batch.client_id, events=len(batch.events))
    if cap:
        raise Refused(429, "rate_limited", f"Slow down: {cap}.")
    events = batch.events
    named = [e for e in events if e.customer_shopify_id is not None]
    last_named = max(named, key=lambda e: (e.occurred_at, e.seq)) if named else None
    shops, stored = cursor.execute(_STORE, {
        "key": batch.key, "domain": batch.shop_domain, "client": batch.client_id,
        "first": min(e.occurred_at for e in events), "last": max(e.occurred_at for e in events),
        "customer": last_named.customer_shopify_id if last_named else None,
        "by": (IdentifiedBy.CHECKOUT if last_named.name == "checkout_completed" else IdentifiedBy.LOGIN)
        if last_named else "",
        "at": now if last_named else None, "now": now,
        "ids": [e.event_id for e in events], "names": [e.name for e in events],
        "times": [e.occurred_at for e in events], "seqs": [e.seq for e in events], "urls": [e.url for e in events],
        "referrers": [e.referrer for e in events],
        "data": [json.dumps(e.data, separators=(",", ":")) for e in events]}, prepare=True).fetchone()
    if not shops:
        # The key, its shop or the install changed since the key was last looked up: the lookup again
        # says which refusal this is (and, should the key be good again by now, nothing was stored yet).
        _shops.pop(batch.key, None)
        shop_for(cursor, batch, cached=False)
        raise Refused(409, "shop_changed", "The shop's ingest key changed while this batch was stored; send it again.")
    return stored
