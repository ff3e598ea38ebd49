"""Read-only views of the store copy for the admin: how much of the catalog has unit costs."""
from __future__ import annotations

from django.db.models import Count, Q

from segments.mirror.models import VariantCost
from segments.shops.models import Shop


def variant_cost_coverage(*, shop: Shop) -> dict[str, int]:
    """Variants the store copy knows, and how many of them have no unit cost in Shopify."""
    counts = VariantCost.objects.filter(shop=shop).aggregate(
        variants=Count("pk"), missing=Count("pk", filter=Q(unit_cost__isnull=True)))
    return {"variants": counts["variants"], "missing": counts["missing"]}
