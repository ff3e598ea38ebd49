"""What the storefront shows whom: a shopper's segments, as the theme's blocks read them.

The answer is the segments' tags (`seg:vip`), the same strings a logged-in customer's `customer.tags`
carries, so a block compares one list whoever the shopper is. Held-out members are left out, as
their tags are: they see what everyone else sees.
"""
from __future__ import annotations

from segments.membership.models import Membership, SegmentStatus, VisitorMembership
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.storefront.models import Visitor

SHOWN = (SegmentStatus.ACTIVE, SegmentStatus.PAUSED)    # a paused segment's members keep their tags


def shopper_segment_tags(*, shop: Shop, customer_shopify_id: int | None, client_id: str | None) -> list[str]:
    """The tags of the segments the shopper is in (not held out): the logged-in customer's, else
    those of the customer the browser was joined to (they logged in or bought with it before),
    else the anonymous visitor's."""
    customer_id = visitor_id = None
    if customer_shopify_id is not None:
        customer_id = Customer.objects.filter(shop=shop, shopify_id=customer_shopify_id).values_list(
            "id", flat=True).first()
    if customer_id is None and client_id:
        found = Visitor.objects.filter(shop=shop, client_id=client_id).values_list("id", "customer_id").first()
        if found is not None:
            visitor_id, customer_id = found
    if customer_id is not None:
        handles = Membership.objects.filter(customer_id=customer_id, holdout=False, segment__status__in=SHOWN)
    elif visitor_id is not None:
        handles = VisitorMembership.objects.filter(visitor_id=visitor_id, holdout=False, segment__status__in=SHOWN)
    else:
        return []
    return sorted(shop.tag_prefix + handle for handle in handles.values_list("segment__handle", flat=True))
