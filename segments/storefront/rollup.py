"""Rolling raw pixel events up per visitor and day (the shop's calendar): what the visitor-days that
ingest marked behind hold now, recomputed whole from the raw events, so a late, repeated or erased
event leaves the same rollup as if it had come in order. Sessions (visits) end after 30 minutes
without an event (a session running past midnight starts again on the new day).

A search is high-intent when its query is specific (three words or more) or when, in the same visit
and before the next search, a product view and then an add to cart follow it. A visit's landing is
its first event's page; its referring site is that event's referrer when it is another host."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from segments.mirror.cause import dirty_cause
from segments.mirror.sql import upsert
from segments.mirror.writer import mark_dirty
from segments.shops.models import Shop
from segments.storefront.ingest import VISITORS_LINK
from segments.storefront.models import Visitor, VisitorDay

BATCH = 500
SESSION_GAP = dt.timedelta(minutes=30)
SPECIFIC_QUERY_WORDS = 3
COUNTED = {"page_views": "page_viewed", "product_views": "product_viewed", "collection_views": "collection_viewed",
           "searches": "search_submitted", "add_to_carts": "product_added_to_cart",
           "cart_removals": "product_removed_from_cart", "cart_views": "cart_viewed",
           "checkouts_started": "checkout_started", "checkouts_completed": "checkout_completed"}

# A guest's completed checkout names no customer, but its order does once the store copy has it (Shopify
# gives a guest order the customer its email belongs to): the browser joins that customer.
_JOIN_BY_ORDER = """
UPDATE segments_visitor v SET customer_id = o.customer_id, customer_shopify_id = c.shopify_id,
                              identified_by = 'checkout', identified_at = now()
FROM segments_storefrontevent e
JOIN segments_order o ON o.shop_id = e.shop_id
                     AND o.shopify_id = substring(e.data->>'orderId' from '([0-9]{1,18})$')::bigint
JOIN segments_customer c ON c.id = o.customer_id
WHERE v.id = ANY(%s) AND v.customer_id IS NULL AND v.customer_shopify_id IS NULL
  AND e.visitor_id = v.id AND e.shop_id = v.shop_id AND e.name = 'checkout_completed'
"""
# Only days of visitors no ingest holds: taking a visitor's row lock with its days (skipping a visitor
# an ingest is writing) means an ingest never waits for a day this run deleted while the run waits
# for the visitor the ingest holds (the deadlock the other order makes).
_TAKE = """
DELETE FROM segments_visitordaydirty WHERE id IN (
    SELECT d.id FROM segments_visitordaydirty d JOIN segments_visitor v ON v.id = d.visitor_id
    ORDER BY d.id LIMIT %s FOR NO KEY UPDATE OF d, v SKIP LOCKED)
RETURNING shop_id, visitor_id, day
"""
_EVENTS = """
SELECT visitor_id, name, occurred_at, url, referrer, data->>'query' FROM segments_storefrontevent
WHERE shop_id = %s AND visitor_id = ANY(%s) AND day BETWEEN %s AND %s AND occurred_at >= %s AND occurred_at < %s
ORDER BY visitor_id, occurred_at, seq
"""


def visitor_days_rollup(limit: int = BATCH) -> int:
    """Redo up to `limit` visitor-days that are behind; how many were taken."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_TAKE, [limit])
        taken = cursor.fetchall()
        if not taken:
            return 0
        cursor.execute(VISITORS_LINK.format(only=""))
        touched = sorted({visitor_id for _, visitor_id, _ in taken})
        cursor.execute(_JOIN_BY_ORDER, [touched])
        # Their segments as anonymous visitors (or, once joined, none) follow (segments.membership.visitors).
        cursor.execute("UPDATE segments_visitor SET dirty_at = now() WHERE id = ANY(%s) AND dirty_at IS NULL",
                       [touched])
        by_shop: dict[int, list[tuple[int, dt.date]]] = defaultdict(list)
        for shop_id, visitor_id, day in taken:
            by_shop[shop_id].append((visitor_id, day))
        shops = Shop.objects.in_bulk(list(by_shop))
        for shop_id, pairs in by_shop.items():
            _shop_rollup(cursor, shop_id, ZoneInfo(shops[shop_id].iana_timezone or "UTC"), set(pairs))
            # Their customers' browsing changed: the metrics refresh recomputes their segments.
            joined = Visitor.objects.filter(pk__in={v for v, _ in pairs}, customer__isnull=False)
            with dirty_cause("storefront events"):
                mark_dirty(shop=shops[shop_id], customer_pks=joined.values_list("customer_id", flat=True))
    return len(taken)


def _shop_rollup(cursor, shop_id: int, zone: ZoneInfo, pairs: set[tuple[int, dt.date]]) -> None:
    first, last = min(day for _, day in pairs), max(day for _, day in pairs)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    cursor.execute(_EVENTS, [shop_id, sorted({v for v, _ in pairs}), start.astimezone(dt.timezone.utc).date(),
                             end.astimezone(dt.timezone.utc).date(), start, end])
    grouped: dict[tuple[int, dt.date], list[tuple]] = defaultdict(list)
    for visitor_id, *event in cursor.fetchall():
        key = (visitor_id, event[1].astimezone(zone).date())
        if key in pairs:
            grouped[key].append(tuple(event))
    rows = [_day_row(shop_id, visitor_id, day, events) for (visitor_id, day), events in grouped.items()]
    upsert(VisitorDay, rows, conflict=("visitor_id", "day"), update=[c for c in rows[0] if c not in
                                                                     ("visitor_id", "day")] if rows else [])
    gone = sorted(pairs - set(grouped))
    if gone:     # every event of the day was erased: so is its rollup
        cursor.execute("DELETE FROM segments_visitorday WHERE (visitor_id, day) IN "
                       "(SELECT * FROM unnest(%s::bigint[], %s::date[]))", [[v for v, _ in gone], [d for _, d in gone]])


def _day_row(shop_id: int, visitor_id: int, day: dt.date, events: list[tuple]) -> dict:
    """events: (name, occurred_at, url, referrer, search query) of one visitor-day, in order."""
    names = [name for name, *_ in events]
    visits = _visits(events)
    custom: dict[str, int] = defaultdict(int)
    for name in names:
        if ":" in name:
            custom[name] += 1
    landings = [urlsplit(visit[0][2]) for visit in visits]
    referred = [(host, landing) for visit, landing in zip(visits, landings)
                if (host := urlsplit(visit[0][3]).hostname or "") and host != landing.hostname]
    campaigns = [utm for landing in landings
                 if (utm := {k: v[0][:100] for k, v in parse_qs(landing.query).items() if k.startswith("utm_") and v})]
    utm = campaigns[-1] if campaigns else {}
    return {"shop_id": shop_id, "visitor_id": visitor_id, "day": day, "events": len(events), "sessions": len(visits),
            **{column: names.count(name) for column, name in COUNTED.items()}, "custom": dict(custom),
            "high_intent_searches": sum(_high_intent_searches(visit) for visit in visits),
            "buying_sessions": sum(1 for visit in visits if any(e[0] == "checkout_completed" for e in visit)),
            "first_at": events[0][1], "last_at": events[-1][1], "landing_path": landings[0].path[:255],
            "last_landing_path": landings[-1].path[:255],
            "referrer_host": referred[-1][0][:255] if referred else "",
            "utm_source": utm.get("utm_source", ""), "utm_medium": utm.get("utm_medium", ""),
            "utm_campaign": utm.get("utm_campaign", "")}


def _visits(events: list[tuple]) -> list[list[tuple]]:
    visits: list[list[tuple]] = []
    for i, event in enumerate(events):
        if i == 0 or event[1] - events[i - 1][1] > SESSION_GAP:
            visits.append([])
        visits[-1].append(event)
    return visits


def _high_intent_searches(visit: list[tuple]) -> int:
    count = 0
    for i, (name, _, _, _, query) in enumerate(visit):
        if name != "search_submitted":
            continue
        if len((query or "").split()) >= SPECIFIC_QUERY_WORDS:
            count += 1
            continue
        viewed = False
        for later, *_ in visit[i + 1:]:
            if later == "search_submitted":
                break
            viewed = viewed or later == "product_viewed"
            if viewed and later == "product_added_to_cart":
                count += 1
                break
    return count
