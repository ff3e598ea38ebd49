"""Services that keep the per-customer metrics table current: the full rebuild of a shop, the
incremental refresh of some customers, and the refresh of the customers the mirror marked dirty."""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from segments.engine import metrics_ranking, metrics_table
from segments.engine.rules import conditions
from segments.membership.models import Segment, SegmentStatus
from segments.membership.recompute import segment_rules, segments_recompute
from segments.predictions.service import customers_rescore
from segments.mirror.models import Customer
from segments.mirror.statistics import table_analyze_if_rewritten
from segments.shops.models import Shop, ShopStatus
from shopseg.deadlocks import is_deadlock

log = logging.getLogger(__name__)

DIRTY_BATCH = 100                          # customers of one shop per turn of the round-robin
DIRTY_BUDGET = dt.timedelta(seconds=1)     # one pass; beat starts the next (SHOPSEG_DIRTY_REFRESH_SECONDS)
# Marks older than a full rebuild's start by this much are covered by it; younger ones may come
# from a writer transaction that committed after the rebuild's snapshot, so they stay.
DIRTY_MARGIN = dt.timedelta(seconds=60)
_CLEAR_CHUNK = 500   # (pk, dirty_at) pairs per clearing UPDATE
_REFRESH_LOCK_NAMESPACE = 0x5E7   # advisory xact lock (namespace, shop id): one refresh or rebuild per shop
RANKS_CAUSE = "ranks"             # membership recomputed because other buyers moved the customer's rank


def _abandoned_before(shop: Shop, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(minutes=shop.checkout_abandon_minutes)


def customer_metrics_rebuild(*, shop: Shop, now: dt.datetime | None = None) -> int:
    """Recompute every customer of the shop and its percentile breakpoints; returns rows written.

    After a backfill, and nightly: it also derives the premium price threshold again, which the
    dirty refresh's re-ranking leaves as it was.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # The refresh's lock, waited for: a refresh under way finishes first, and refreshes that start
        # meanwhile return with their marks kept. Interleaved, the two upserted the same rows in
        # different orders and deadlocked, and a rebuild lost that way left the shop ranked against
        # the breakpoints of an empty shop.
        _refresh_lock(shop, wait=True)
        written = metrics_table.rebuild(shop_id=shop.pk, now=now, abandoned_before=_abandoned_before(shop, now))
    # After the commit, so the statistics see the rows (and the lock is held only for the ANALYZE).
    table_analyze_if_rewritten(table=metrics_table.METRICS, written=written)
    return written


def customer_metrics_refresh(*, shop: Shop, customer_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Recompute these customers of the shop; returns rows written.

    Shop-relative columns rank them against the breakpoints of the last rebuild. A shop never
    rebuilt has none, so it is rebuilt whole instead (once; a new shop is small, and the end of a
    backfill should have rebuilt a large one already).
    """
    ids = sorted({int(pk) for pk in customer_ids})
    if not ids:
        return 0
    now = now or timezone.now()
    with transaction.atomic():
        breakpoints = metrics_table.shop_breakpoints(shop_id=shop.pk)
        if breakpoints is None:
            return metrics_table.rebuild(shop_id=shop.pk, now=now, abandoned_before=_abandoned_before(shop, now))
        return metrics_table.refresh(shop_id=shop.pk, customer_ids=ids, now=now,
                                     abandoned_before=_abandoned_before(shop, now), breakpoints=breakpoints)


def dirty_shops_refresh(*, batch: int = DIRTY_BATCH, budget: dt.timedelta = DIRTY_BUDGET) -> int:
    """Refresh the shops' dirty customers in turns, `batch` of one shop's at a time, round after
    round until none are left or the budget is spent; returns how many were refreshed.

    Turns rather than each shop's whole backlog in one go: a shop with thousands of marks (a burst
    of orders, an import) holds another shop's few back by one batch, not by all of them.
    """
    deadline = time.monotonic() + budget.total_seconds()
    total = 0
    while True:
        shop_ids = (Customer.objects.filter(dirty_at__isnull=False, shop__status=ShopStatus.INSTALLED)
                    .values_list("shop_id", flat=True).distinct())
        turn = 0
        for shop in Shop.objects.filter(pk__in=list(shop_ids)).order_by("pk"):
            turn += len(dirty_customers_refresh(shop=shop, limit=batch))
            if time.monotonic() >= deadline:
                return total + turn
        total += turn
        if not turn:        # nothing left, or every shop with marks is being refreshed elsewhere
            return total


def dirty_customers_refresh(*, shop: Shop, limit: int = DIRTY_BATCH, now: dt.datetime | None = None) -> list[int]:
    """Refresh up to `limit` customers marked dirty (oldest mark first): their metrics, then their
    segment memberships; returns their ids.

    Both steps and the clearing of the marks share one transaction, so a crash redoes all of them.
    A mark is cleared only if it is still the one read: a customer whose behaviour changed again
    while we computed keeps the newer mark and is picked up by the next run. Runs of one shop do
    not overlap: with the beat every second, a run still going when the next starts would upsert
    the same metrics rows in another order and deadlock, so the later one returns at once and its
    marks wait for the next beat.
    """
    try:
        return _dirty_refresh(shop, limit, now)
    except OperationalError as exc:
        # A webhook's writer locked some of these customers in another order: PostgreSQL rolled
        # this transaction back whole, the marks are still there, and the next run takes them.
        if not is_deadlock(exc):
            raise
        log.warning("dirty refresh of shop %s deadlocked with a writer; the next run retries", shop.pk)
        return []


def _dirty_refresh(shop: Shop, limit: int, now: dt.datetime | None) -> list[int]:

    now = now or timezone.now()
    with transaction.atomic():
        if not _refresh_lock(shop):
            return []
        marks = list(Customer.objects.filter(shop=shop, dirty_at__isnull=False)
                     .order_by("dirty_at", "pk").values_list("pk", "dirty_at", "dirty_cause")[:limit])
        if not marks:
            return []
        ids = [pk for pk, _, _ in marks]
        causes = {pk: cause for pk, _, cause in marks}
        customer_metrics_refresh(shop=shop, customer_ids=ids, now=now)
        customers_rescore(shop=shop, customer_ids=ids, now=now)     # their predictions, for the recompute
        moved = customer_ranks_refresh(shop=shop, now=now)
        if moved is None:
            segments_recompute(shop=shop, causes=causes, cause=RANKS_CAUSE, now=now)
        else:
            segments_recompute(shop=shop, customer_ids=ids, causes=causes, now=now)
            others = sorted(set(moved) - set(ids))
            ranked = _rank_segments(shop)
            if others and ranked:
                segments_recompute(shop=shop, segments=ranked, customer_ids=others, cause=RANKS_CAUSE, now=now)
        _marks_clear(shop, [(pk, mark) for pk, mark, _ in marks])
    return ids


def _marks_clear(shop: Shop, marks: list[tuple[int, dt.datetime]]) -> None:
    """Clear the marks still as read, on the rows no other transaction holds.

    A held row belongs to a writer (a drain batch is one transaction over many customers) that is
    changing that customer, so its mark stays for the next run. Waiting for it instead made the
    refresh wait on every drain batch, and deadlock when that batch then asked for a customer whose
    mark the refresh had cleared.
    """
    for start in range(0, len(marks), _CLEAR_CHUNK):
        unchanged = reduce(or_, (Q(pk=pk, dirty_at=mark) for pk, mark in marks[start:start + _CLEAR_CHUNK]))
        free = list(Customer.objects.select_for_update(skip_locked=True).filter(unchanged, shop=shop)
                    .values_list("pk", flat=True))
        Customer.objects.filter(pk__in=free).update(dirty_at=None, dirty_cause="")


def customer_ranks_refresh(*, shop: Shop, now: dt.datetime) -> list[int] | None:
    """Re-rank the shop's buyers when their values have drifted from the breakpoints they were
    ranked against (segments.engine.metrics_ranking); returns the customers whose ranks moved, or
    None when the whole shop was rebuilt. Run in the transaction holding the shop's metrics lock.

    A shop that had no buyers at its last ranking is rebuilt whole instead, once: its premium price
    threshold came from no line items either, and it is small.
    """
    if not metrics_ranking.ranks_stale(shop_id=shop.pk):
        return []
    breakpoints = metrics_table.shop_breakpoints(shop_id=shop.pk)
    if not breakpoints.has_buyers:
        metrics_table.rebuild(shop_id=shop.pk, now=now, abandoned_before=_abandoned_before(shop, now))
        return None
    return metrics_ranking.rerank(shop_id=shop.pk, now=now)


def _rank_segments(shop: Shop) -> list[Segment]:
    """The shop's active segments whose rules read a rank: those another buyer's change can move."""

    active = list(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE))
    rules = segment_rules(active)
    return [segment for segment in active if segment.pk in rules
            and any(c.metric.key in metrics_ranking.RANKS for c in conditions(rules[segment.pk]))]


def _refresh_lock(shop: Shop, *, wait: bool = False) -> bool:
    """The shop's metrics lock for this transaction: tried by refreshes, waited for by rebuilds."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_REFRESH_LOCK_NAMESPACE, shop.pk])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_REFRESH_LOCK_NAMESPACE, shop.pk])
        return bool(cursor.fetchone()[0])


def dirty_marks_clear(*, shop: Shop, before: dt.datetime) -> int:
    """Clear the marks set before `before`: a full rebuild and recompute that started after them
    has seen their changes."""
    return Customer.objects.filter(shop=shop, dirty_at__lt=before).update(dirty_at=None, dirty_cause="")
