"""What the storefront shows whom: a shopper's segments, as the theme's blocks read them.

The answer is the segments' tags (`seg:vip`), the same strings a logged-in customer's `customer.tags`
carries, so a block compares one list whoever the shopper is. Held-out members are left out, as
their tags are: they see what everyone else sees. The theme's app embed asks on page views (through
the app proxy), so it is one prepared statement, served in front of Django (shopseg.fastpath).
"""
from __future__ import annotations

import psycopg
from django.db import connection

from segments.membership.models import SegmentStatus, VisitorMembership
from segments.shops.models import Shop, ShopStatus

# A paused segment's members keep their tags; an archived one has no members.
_SHOPPER_TAGS = f"""
WITH shop AS (
    SELECT id, tag_prefix FROM segments_shop WHERE domain = %(domain)s AND status <> '{ShopStatus.UNINSTALLED}'
), customer AS (
    SELECT c.id FROM segments_customer c JOIN shop ON c.shop_id = shop.id WHERE c.shopify_id = %(customer)s
), visitor AS (        -- the browser, when no logged-in customer is known: its customer's, else its own
    SELECT v.id, v.customer_id FROM segments_visitor v JOIN shop ON v.shop_id = shop.id
    WHERE v.client_id = %(client)s AND NOT EXISTS (SELECT FROM customer)
), who AS (
    SELECT id AS customer_id, NULL::bigint AS visitor_id FROM customer
    UNION ALL
    SELECT customer_id, CASE WHEN customer_id IS NULL THEN id END FROM visitor
), handles AS (
    SELECT s.handle FROM who JOIN segments_membership m ON m.customer_id = who.customer_id
    JOIN segments_segment s ON s.id = m.segment_id
    WHERE NOT m.holdout AND s.status IN ('{SegmentStatus.ACTIVE}', '{SegmentStatus.PAUSED}')
    UNION ALL
    SELECT s.handle FROM who JOIN segments_visitormembership m ON m.visitor_id = who.visitor_id
    JOIN segments_segment s ON s.id = m.segment_id
    WHERE NOT m.holdout AND s.status IN ('{SegmentStatus.ACTIVE}', '{SegmentStatus.PAUSED}')
)
SELECT shop.id, ARRAY(SELECT shop.tag_prefix || handle FROM handles ORDER BY 1) FROM shop
"""


def shopper_segment_tags(*, shop_domain: str, customer_shopify_id: int | None, client_id: str | None,
                         cursor: psycopg.Cursor | None = None) -> list[str] | None:
    """The tags of the segments the shopper is in (not held out), or None when the shop does not
    have the app installed: the logged-in customer's, else those of the customer the browser was
    joined to (they logged in or bought with it before), else the anonymous visitor's.

    On `cursor` (shopseg.fastpath's connection, the statement prepared) or Django's connection."""
    if cursor is None:
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            return shopper_segment_tags(shop_domain=shop_domain, customer_shopify_id=customer_shopify_id,
                                        client_id=client_id, cursor=cursor)
    row = cursor.execute(_SHOPPER_TAGS, {"domain": shop_domain, "customer": customer_shopify_id,
                                         "client": client_id}, prepare=True).fetchone()
    return None if row is None else row[1]


def anonymous_visitor_in(*, shop: Shop, tag: str) -> str | None:
    """The client id of an anonymous visitor the segment tagged `tag` shows to (not held out), if any."""
    handle = tag.removeprefix(shop.tag_prefix)
    return (VisitorMembership.objects.filter(segment__shop=shop, segment__handle=handle, holdout=False,
                                             visitor__customer__isnull=True)
            .order_by("visitor_id").values_list("visitor__client_id", flat=True).first())
