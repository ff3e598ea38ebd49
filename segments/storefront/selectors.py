"""What the storefront has seen of a shop: events by name, browsers and those joined to customers,
visitor-days rolled up, and the campaigns visitors arrived from."""
from __future__ import annotations

from django.db.models import Count, Sum

from segments.shops.models import Shop
from segments.storefront.models import StorefrontEvent, Visitor, VisitorDay, VisitorDayDirty

COUNTED = ("sessions", "page_views", "product_views", "collection_views", "searches", "add_to_carts",
           "cart_removals", "checkouts_started", "checkouts_completed")


def storefront_summary(*, shop: Shop) -> dict:
    events = dict(StorefrontEvent.objects.filter(shop=shop).values_list("name").annotate(n=Count("id")))
    days = VisitorDay.objects.filter(shop=shop)
    campaigns = list(days.exclude(utm_campaign="").values("utm_source", "utm_campaign")
                     .annotate(visitors=Count("visitor", distinct=True)).order_by("-visitors", "utm_campaign")[:5])
    return {"events": sum(events.values()), "by_name": dict(sorted(events.items())),
            "visitors": Visitor.objects.filter(shop=shop).count(),
            "joined": Visitor.objects.filter(shop=shop, customer__isnull=False).count(),
            "visitor_days": days.count(), "behind": VisitorDayDirty.objects.filter(shop=shop).count(),
            "totals": {k: v or 0 for k, v in days.aggregate(**{c: Sum(c) for c in COUNTED}).items()},
            "campaigns": campaigns}
