"""How far a set of customers (rules being edited in the builder) overlaps the shop's segments, so the
builder can warn before a merchant saves a segment that selects the customers of one already there.

One statement, set-at-a-time: the candidates joined to the shop's memberships and counted per
segment, never a query per segment or per customer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from django.db import connection

from segments.models import SegmentStatus, Shop

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


def segment_overlaps(*, shop: Shop, candidates: tuple[str, dict], size: int, exclude_segment_id: int | None = None,
                     share: float = OVERLAP_SHARE) -> list[Overlap]:
    """The shop's segments (archived ones and `exclude_segment_id` aside) holding at least `share` of
    the candidates, most shared first. `candidates` is SQL selecting one `customer_id` per candidate
    with its named parameters; `size` is how many it selects."""
    if size <= 0:
        return []
    sql, params = candidates
    params = {**params, "overlap_shop": shop.pk, "overlap_archived": SegmentStatus.ARCHIVED,
              "overlap_exclude": exclude_segment_id or 0, "overlap_need": math.ceil(share * size - 1e-9)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH candidate AS ({sql}) "
            "SELECT s.id, s.name, count(c.customer_id), count(*) "
            "FROM segments_membership mem JOIN segments_segment s ON s.id = mem.segment_id "
            "LEFT JOIN candidate c ON c.customer_id = mem.customer_id "
            "WHERE mem.shop_id = %(overlap_shop)s AND s.shop_id = %(overlap_shop)s "
            "AND s.status <> %(overlap_archived)s AND s.id <> %(overlap_exclude)s "
            "GROUP BY s.id, s.name HAVING count(c.customer_id) >= %(overlap_need)s "
            "ORDER BY count(c.customer_id) DESC, s.id", params)
        rows = cursor.fetchall()
    return [Overlap(segment=pk, name=name, shared=shared, members=members, share=round(shared / size, 4),
                    same=shared == size == members) for pk, name, shared, members in rows]
