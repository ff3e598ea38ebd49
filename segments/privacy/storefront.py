"""The storefront's part in privacy compliance: a customer's visitors (every browser joined to
them), their raw events and their rollups are in a data-request export and are erased with the
customer; a shop's go with the shop; raw events past each shop's retention are purged. Registered
at start-up (segments/apps.py)."""
from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from segments.privacy.compliance import (
    ShopErasure, register_customer_eraser, register_retention_purge, register_shop_eraser,
)
from segments.privacy.selectors import CustomerKeys, register_export_section
from segments.storefront.models import Pixel, StorefrontEvent, Visitor, VisitorDay, VisitorDayDirty
from segments.storefront.partitions import events_purge

EXPORTED_EVENTS = 5000       # the newest raw events of a customer in their export


def customer_visitors(*, keys: CustomerKeys) -> QuerySet[Visitor]:
    """The browsers joined to the customer, or that named them and wait for the store copy to have them."""
    if keys.shop is None:
        return Visitor.objects.none()
    return Visitor.objects.filter(shop=keys.shop).filter(
        Q(customer_id__in=keys.customer_pks) | Q(customer_shopify_id__in=sorted(keys.shopify_ids)))


@transaction.atomic
def storefront_customer_erase(*, keys: CustomerKeys) -> dict[str, int]:
    visitor_ids = list(customer_visitors(keys=keys).values_list("pk", flat=True))
    if not visitor_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_storefrontevent WHERE shop_id = %s AND visitor_id = ANY(%s)",
                       [keys.shop.pk, visitor_ids])
        events = cursor.rowcount
    days = VisitorDay.objects.filter(visitor_id__in=visitor_ids).delete()[0]
    VisitorDayDirty.objects.filter(visitor_id__in=visitor_ids).delete()
    visitors = Visitor.objects.filter(pk__in=visitor_ids).delete()[0]
    return {"storefront_events": events, "visitor_days": days, "visitors": visitors}


def storefront_shop_erase(*, erasure: ShopErasure) -> dict[str, int]:
    if erasure.shop is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_storefrontevent WHERE shop_id = %s", [erasure.shop.pk])
        events = cursor.rowcount
    VisitorDayDirty.objects.filter(shop=erasure.shop).delete()
    days = VisitorDay.objects.filter(shop=erasure.shop).delete()[0]
    visitors = Visitor.objects.filter(shop=erasure.shop).delete()[0]
    Pixel.objects.filter(shop=erasure.shop).delete()
    return {"storefront_events": events, "visitor_days": days, "visitors": visitors}


def storefront_export(*, keys: CustomerKeys) -> list[dict]:
    records = []
    for visitor in customer_visitors(keys=keys).order_by("pk"):
        days = VisitorDay.objects.filter(visitor=visitor).order_by("day").values(
            "day", "events", "sessions", "page_views", "product_views", "collection_views", "searches",
            "high_intent_searches", "add_to_carts", "cart_removals", "cart_views", "checkouts_started",
            "checkouts_completed", "buying_sessions", "custom", "landing_path", "last_landing_path", "referrer_host",
            "utm_source", "utm_medium", "utm_campaign")
        events = StorefrontEvent.objects.filter(shop_id=visitor.shop_id, visitor_id=visitor.pk).order_by(
            "-occurred_at").values("name", "occurred_at", "url", "referrer", "data")[:EXPORTED_EVENTS]
        records.append({"client_id": visitor.client_id, "first_seen_at": visitor.first_seen_at.isoformat(),
                        "last_seen_at": visitor.last_seen_at.isoformat(), "identified_by": visitor.identified_by,
                        "days": [{**d, "day": d["day"].isoformat()} for d in days],
                        "events": [{**e, "occurred_at": e["occurred_at"].isoformat()} for e in events]})
    return records


register_customer_eraser(storefront_customer_erase)
register_shop_eraser(storefront_shop_erase)
register_export_section("storefront_visitors", storefront_export)
register_retention_purge(events_purge)
