"""Reads of the daily KPI snapshots for the KPI page and its API: the rows with their ratios, and
which segments the charts show (the merchant's choice, or the largest few).

Members in a snapshot are the segment's *treated* members at the end of that shop-local day: the
holdout is counted apart (`holdout_members`), so conversion and revenue per member describe the
customers who get the tag. The Segments page counts everyone in the segment now, held out included.
"""
from __future__ import annotations

import datetime as dt

from django.db.models import OuterRef, Subquery

from segments.measurement.models import SegmentKpiSnapshot
from segments.membership.models import Segment
from segments.shops.models import Shop

MAX_SERIES = 8          # lines on one chart; charts.PALETTE has a distinct colour for each
DEFAULT_SERIES = 5      # without a choice: the five largest segments


def kpi_row(s: SegmentKpiSnapshot) -> dict:
    """A snapshot with its ratios: conversion is the day's buyers over members."""
    def ratio(a, b):
        return round(float(a) / float(b), 6) if b else None

    return {"segment": s.segment_id, "day": s.day.isoformat(), "members": s.members,
            "holdout_members": s.holdout_members, "entries": s.entries, "exits": s.exits, "orders": s.orders,
            "buyers": s.buyers, "revenue": float(s.revenue), "revenue_share": ratio(s.revenue, s.store_revenue),
            "aov": ratio(s.revenue, s.orders), "conversion": ratio(s.buyers, s.members),
            "repeat_rate": ratio(s.repeat_buyers, s.buyers), "avg_clv": ratio(s.clv_total, s.members),
            "predicted_clv": ratio(s.predicted_clv_total, s.members) if s.predicted_clv_total is not None else None,
            "gross_profit": float(s.gross_profit) if s.gross_profit is not None else None,
            "profit_per_member": ratio(s.gross_profit, s.members) if s.gross_profit is not None else None,
            "uncosted_lines": s.uncosted_lines, "backfilled": s.backfilled}


def segments_kpi_rows(*, shop: Shop, segments: list[Segment], start: dt.date, end: dt.date) -> list[dict]:
    """Every snapshot of `segments` from start to end (shop-local days), by segment then day."""
    snaps = (SegmentKpiSnapshot.objects.filter(shop=shop, segment__in=segments, day__gte=start, day__lte=end)
             .order_by("segment_id", "day"))
    return [kpi_row(s) for s in snaps]


def segments_largest(*, shop: Shop, segments: list[Segment], end: dt.date, limit: int = DEFAULT_SERIES) -> list[Segment]:
    """The `limit` segments with the most members in their latest snapshot up to `end` (then the
    oldest first); segments without a snapshot come last, so a new shop still gets lines."""
    latest = (SegmentKpiSnapshot.objects.filter(shop=shop, segment=OuterRef("pk"), day__lte=end)
              .order_by("-day").values("members")[:1])
    sizes = dict(Segment.objects.filter(pk__in=[s.pk for s in segments]).annotate(size=Subquery(latest))
                 .values_list("pk", "size"))
    ranked = sorted(segments, key=lambda s: (sizes.get(s.pk) is None, -(sizes.get(s.pk) or 0), s.pk))
    return ranked[:limit]


def kpi_chart_segments(*, shop: Shop, segments: list[Segment], chosen: list[int] | None,
                       end: dt.date) -> tuple[list[Segment], str | None]:
    """The segments the charts draw, in the order their colours follow, and a note when the choice
    had to be trimmed: the chosen ids that are among `segments` (at most MAX_SERIES), or the largest
    DEFAULT_SERIES when nothing was chosen."""
    if not chosen:
        return segments_largest(shop=shop, segments=segments, end=end), None
    by_id = {s.pk: s for s in segments}
    picked = [by_id[pk] for pk in dict.fromkeys(chosen) if pk in by_id]
    note = None
    if len(picked) > MAX_SERIES:
        note = f"The charts show up to {MAX_SERIES} segments at once; showing the first {MAX_SERIES} chosen."
        picked = picked[:MAX_SERIES]
    if not picked:
        return segments_largest(shop=shop, segments=segments, end=end), None
    return picked, note
