"""The time sweep: every minute, find the customers whose segments the passing of time may have
changed since the last sweep, and mark them dirty with cause "time", so the incremental path
recomputes them within seconds of the exact instant (segments.engine.transitions says which
instants matter). Windows that move for the whole shop (months, holidays) recompute the segments
that use them. The nightly full recompute remains the safety net."""
from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from segments.engine.context import Context, context_for
from segments.engine.transitions import CARTS, CHECKOUTS, ORDERS, VISIT_ENDS, VISITS, watch
from segments.engine.windows import resolve_window
from segments.membership.models import ExclusiveGroup, Segment, SegmentClock, SegmentStatus
from segments.membership.recompute import segment_rules
from segments.membership.visitors import visitors_mark
from segments.mirror.models import Customer
from segments.shops.models import Shop
from shopseg.enqueue import enqueue_on_commit

TIME_CAUSE = "time"
_SOURCES = {
    ORDERS: "SELECT DISTINCT customer_id FROM segments_order WHERE shop_id = %(shop)s AND customer_id IS NOT NULL "
            "AND created_at >= %(lo)s AND created_at < %(hi)s",
    CHECKOUTS: "SELECT DISTINCT customer_id FROM segments_checkout WHERE shop_id = %(shop)s "
               "AND customer_id IS NOT NULL AND created_at >= %(lo)s AND created_at < %(hi)s",
    CARTS: "SELECT DISTINCT k.customer_id FROM segments_cart ca JOIN segments_checkout k ON k.shop_id = ca.shop_id "
           "AND k.cart_token = ca.token WHERE ca.shop_id = %(shop)s AND k.customer_id IS NOT NULL "
           "AND COALESCE(ca.updated_at, ca.created_at) >= %(lo)s AND COALESCE(ca.updated_at, ca.created_at) < %(hi)s",
    VISITS: "SELECT DISTINCT v.customer_id FROM segments_visitorday vd JOIN segments_visitor v "
            "ON v.id = vd.visitor_id WHERE vd.shop_id = %(shop)s AND v.customer_id IS NOT NULL "
            "AND vd.first_at >= %(lo)s AND vd.first_at < %(hi)s",
    VISIT_ENDS: "SELECT DISTINCT v.customer_id FROM segments_visitorday vd JOIN segments_visitor v "
                "ON v.id = vd.visitor_id WHERE vd.shop_id = %(shop)s AND v.customer_id IS NOT NULL "
                "AND vd.last_at >= %(lo)s AND vd.last_at < %(hi)s",
}
_VISITOR_SOURCES = {
    source: f"SELECT DISTINCT v.id FROM segments_visitorday vd JOIN segments_visitor v ON v.id = vd.visitor_id "
            f"WHERE vd.shop_id = %(shop)s AND v.customer_id IS NULL AND vd.{column} >= %(lo)s AND vd.{column} < %(hi)s"
    for source, column in ((VISITS, "first_at"), (VISIT_ENDS, "last_at"))}


def _due_at(threshold: str) -> str:
    """SQL: when a customer's replenishment ratio reaches the threshold (last order + t x gap)."""
    return f"m.last_order_at + make_interval(secs => m.median_order_gap_days * {threshold} * 86400)"


def segments_time_sweep(*, shop: Shop, now: dt.datetime | None = None) -> dict:
    """Mark the customers whose time-dependent rules may have flipped since the last sweep; returns
    {"customers": marked, "segments": recomputed because a month or holiday window moved}."""
    now = now or timezone.now()
    clock, created = SegmentClock.objects.get_or_create(shop=shop, defaults={"swept_until": now})
    if created or clock.swept_until >= now:
        return {"customers": 0, "visitors": 0, "segments": 0}
    since = clock.swept_until
    active = list(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE))
    rules = segment_rules(active)
    before, after = context_for(shop, since), context_for(shop, now)
    found = watch(rules.values())
    customers: set[int] = set()
    visitors: set[int] = set()
    with connection.cursor() as cursor:
        for source, days in found.day_boundaries:
            lo, hi = before.days_ago(days), after.days_ago(days)
            if lo < hi:
                customers |= _between(cursor, shop, source, lo, hi)
                if source in _VISITOR_SOURCES:       # anonymous visitors' browsing ages the same way
                    cursor.execute(_VISITOR_SOURCES[source], {"shop": shop.pk, "lo": _adapt(lo), "hi": _adapt(hi)})
                    visitors |= {row[0] for row in cursor.fetchall()}
        # A checkout turns abandoned (metrics and rules both count it) its delay after creation.
        delay = dt.timedelta(minutes=shop.checkout_abandon_minutes)
        customers |= _between(cursor, shop, CHECKOUTS, since - delay, now - delay)
        for threshold in found.replenishment:
            cursor.execute(f"SELECT customer_id FROM segments_customermetrics m WHERE m.shop_id = %(shop)s "
                           f"AND m.median_order_gap_days > 0 AND {_due_at('%(t)s')} > %(lo)s "
                           f"AND {_due_at('%(t)s')} <= %(hi)s",
                           {"shop": shop.pk, "t": float(threshold), "lo": _adapt(since), "hi": _adapt(now)})
            customers |= {row[0] for row in cursor.fetchall()}
        customers |= _hysteresis_ends(cursor, shop, since, now)
    moved = [s for s in active if s.pk in rules and _calendar_moved(rules[s.pk], before, after)]
    with transaction.atomic():
        if customers:
            _mark(shop, customers, now)
        if visitors:
            visitors_mark(sorted(visitors), now)
        SegmentClock.objects.filter(pk=clock.pk).update(swept_until=now)
    if moved:

        for segment in moved:
            enqueue_on_commit("segments.membership.tasks.segment_recompute_task", segment.pk, segment.current_version, "time")
    return {"customers": len(customers), "visitors": len(visitors), "segments": len(moved)}


def _adapt(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _between(cursor, shop: Shop, source: str, lo: dt.datetime, hi: dt.datetime) -> set[int]:
    params = {"shop": shop.pk, "lo": _adapt(lo), "hi": _adapt(hi)}
    if source in _SOURCES:
        cursor.execute(_SOURCES[source], params)
    else:   # a metrics-table column, e.g. m.last_order_at
        cursor.execute(f"SELECT customer_id FROM segments_customermetrics m WHERE m.shop_id = %(shop)s "
                       f"AND {source} >= %(lo)s AND {source} < %(hi)s", params)
    return {row[0] for row in cursor.fetchall()}


def _hysteresis_ends(cursor, shop: Shop, since: dt.datetime, now: dt.datetime) -> set[int]:
    """Members whose tier hold ends in (since, now]: they may move down now."""
    customers: set[int] = set()
    for group in ExclusiveGroup.objects.filter(shop=shop, hysteresis_days__gt=0):
        held = dt.timedelta(days=group.hysteresis_days)
        cursor.execute("SELECT mem.customer_id FROM segments_membership mem JOIN segments_segment s "
                       "ON s.id = mem.segment_id WHERE s.group_id = %s AND mem.entered_at > %s "
                       "AND mem.entered_at <= %s", [group.pk, _adapt(since - held), _adapt(now - held)])
        customers |= {row[0] for row in cursor.fetchall()}
    return customers


def _calendar_moved(ruleset, before: Context, after: Context) -> bool:
    return any(resolve_window(window, now=before.now, tz=before.tz) != resolve_window(window, now=after.now, tz=after.tz)
               for window in watch([ruleset]).calendar_windows)


def _mark(shop: Shop, customer_ids: set[int], now: dt.datetime) -> None:
    """Dirty with cause "time", unless already dirty for another reason (that cause is kept)."""
    ids = sorted(customer_ids)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        Customer.objects.filter(shop=shop, pk__in=chunk, dirty_at__isnull=True).update(
            dirty_at=now, dirty_cause=TIME_CAUSE)

