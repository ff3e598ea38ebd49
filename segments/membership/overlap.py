"""How far a set of customers (rules being edited in the builder) overlaps the shop's segments, so the
builder can warn before a merchant saves a segment that selects the customers of one already there.

Set-at-a-time: the candidates joined to the shop's memberships and counted per segment inside the
statement that selects them (`shared_sql`), then one query for those segments; never a query per
segment or per customer.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from django.db.models import Count

from segments.membership.models import Segment, SegmentStatus
from segments.shops.models import Shop

OVERLAP_SHARE = 0.9        # warn from this share of the candidates already in one segment


@dataclass(frozen=True)
class Overlap:
    segment: int
    name: str
    shared: int            # candidates who are members of the segment (holdouts included)
    members: int           # the segment's members
    share: float           # shared / candidates: how many of these customers the segment already has
    same: bool             # exactly the segment's members, no more and no fewer

    def to_dict(self) -> dict:
        return asdict(self)


def segment_overlaps(*, shop: Shop, shared: Mapping[int, int], size: int, exclude_segment_id: int | None = None,
                     share: float = OVERLAP_SHARE) -> list[Overlap]:
    """The shop's segments (archived ones and `exclude_segment_id` aside) holding at least `share` of
    the candidates, most shared first. `shared` is how many of the `size` candidates each segment holds,
    counted by the caller in the statement that selected them (the dry-run evaluates its rules once)."""
    need = math.ceil(share * size - 1e-9)
    ids = [pk for pk, count in shared.items() if count >= need and pk != exclude_segment_id]
    if size <= 0 or not ids:
        return []
    rows = (Segment.objects.filter(shop=shop, pk__in=ids).exclude(status=SegmentStatus.ARCHIVED)
            .annotate(members=Count("memberships")).values_list("pk", "name", "members"))
    found = [Overlap(segment=pk, name=name, shared=shared[pk], members=members, share=round(shared[pk] / size, 4),
                     same=shared[pk] == size == members) for pk, name, members in rows]
    return sorted(found, key=lambda o: (-o.shared, o.segment))


def shared_sql(*, candidates: str, shop_param: str) -> str:
    """SQL counting, per segment of the shop, how many rows of the CTE `candidates` (one `customer_id`
    each) are its members: (segment_id, shared)."""
    return (f"SELECT mem.segment_id, count(*) FROM {candidates} c JOIN segments_membership mem "
            f"ON mem.customer_id = c.customer_id AND mem.shop_id = {shop_param} GROUP BY mem.segment_id")
