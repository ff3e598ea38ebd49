"""Segment membership of anonymous visitors: the shop's browsers no customer is known for yet, in the
segments whose rules read browsing (engine.compiler.judges_visitors), each visitor judged as a
customer without history or account whose only browser is itself (docs/rules.md, "Anonymous
visitors"). It is what the storefront can show a logged-out shopper.

Kept apart from customers' membership: no history of entries and exits, no tags (a visitor has no
Shopify record to tag), no hysteresis in exclusive groups (the highest tier that matches). Holdouts
are the segment's share, by the same salted hash of the visitor's client id. A visitor joined to a
customer leaves every visitor segment: from then on the customer's membership speaks for it.

When: a full run with each segment's full recompute (an edit, the nightly run, after a backfill); a
run for the visitors the rollup or the time sweep marked (`Visitor.dirty_at`) every few seconds.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from segments.engine import metrics_table
from segments.engine.compiler import Compiler, judges_visitors
from segments.engine.context import context_for
from segments.membership.models import Segment, SegmentStatus
from segments.membership.recompute import decisions, evaluated_segments, holdout_sql, segment_rules
from segments.shops.models import Shop
from segments.storefront.models import Visitor

_LOCK_NAMESPACE = 0x5E7   # pg_advisory_xact_lock(namespace, shop id): visitor membership writes of one shop
BATCH = 1000


def visitor_segments_recompute(*, shop: Shop, segments: Sequence[Segment] | None = None,
                               visitor_ids: Sequence[int] | None = None, now: dt.datetime | None = None) -> Counter:
    """Decide `segments` (all active ones) for `visitor_ids` (every anonymous visitor) and write the
    difference; {"entered": n, "exited": n}."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, shop.pk])
        chosen = evaluated_segments(shop, segments)
        if not chosen:
            return Counter()
        active = [s for s in chosen if s.status == SegmentStatus.ACTIVE]
        rules = {pk: ruleset for pk, ruleset in segment_rules(active).items() if judges_visitors(ruleset)}
        compiler = Compiler(context_for(shop, now))
        columns, rows = decisions(compiler, active, rules, "visitor_id")
        if columns:
            sql, params = compiler.visitor_statement(columns, visitor_ids)
            desired = f"evaluated AS ({sql}), desired AS ({rows})"
        else:     # no segment judges visitors (any more): every visitor of those asked for leaves
            params = {}
            desired = "desired AS (SELECT NULL::bigint AS segment_id, NULL::bigint AS visitor_id WHERE FALSE)"
        params.update(chosen=[s.pk for s in chosen], now=connection.ops.adapt_datetimefield_value(now))
        scope = ""
        if visitor_ids is not None:
            params["ids"] = metrics_table._ids_param(visitor_ids)
            scope = f"AND {metrics_table._in_ids('vm.visitor_id')}"
        holdout = holdout_sql("s.holdout_salt", "v.client_id")
        cursor.execute(
            f"WITH {desired}, "
            f"gone AS (DELETE FROM segments_visitormembership vm WHERE vm.segment_id = ANY(%(chosen)s) {scope} "
            f"AND NOT EXISTS (SELECT 1 FROM desired d WHERE d.segment_id = vm.segment_id "
            f"AND d.visitor_id = vm.visitor_id) RETURNING vm.segment_id, vm.holdout), "
            f"added AS (INSERT INTO segments_visitormembership (segment_id, visitor_id, holdout, entered_at) "
            f"SELECT d.segment_id, d.visitor_id, s.holdout_percent > 0 AND {holdout} < s.holdout_percent * 100, "
            f"%(now)s FROM desired d JOIN segments_segment s ON s.id = d.segment_id "
            f"JOIN segments_visitor v ON v.id = d.visitor_id WHERE NOT EXISTS (SELECT 1 FROM "
            f"segments_visitormembership vm WHERE vm.visitor_id = d.visitor_id AND vm.segment_id = d.segment_id) "
            f"RETURNING segment_id, holdout) "
            f"SELECT TRUE, segment_id, holdout FROM added UNION ALL SELECT FALSE, segment_id, holdout FROM gone",
            params)
        changes = cursor.fetchall()
        _recount(cursor, chosen, changes, full=visitor_ids is None)
    return Counter(entered=sum(1 for entered, *_ in changes if entered),
                   exited=sum(1 for entered, *_ in changes if not entered))


def _recount(cursor, chosen: Sequence[Segment], changes: list[tuple], *, full: bool) -> None:
    if full:
        cursor.execute("SELECT segment_id, count(*), count(*) FILTER (WHERE holdout) FROM segments_visitormembership "
                       "WHERE segment_id = ANY(%s) GROUP BY segment_id", [[s.pk for s in chosen]])
        counts = {pk: (n, held) for pk, n, held in cursor.fetchall()}
        for segment in chosen:
            n, held = counts.get(segment.pk, (0, 0))
            Segment.objects.filter(pk=segment.pk).update(visitor_count=n, visitor_holdout_count=held)
        return
    delta: Counter = Counter()
    held: Counter = Counter()
    for entered, segment_id, holdout in changes:
        delta[segment_id] += 1 if entered else -1
        held[segment_id] += (1 if entered else -1) if holdout else 0
    for segment_id, n in delta.items():
        Segment.objects.filter(pk=segment_id).update(visitor_count=F("visitor_count") + n,
                                                     visitor_holdout_count=F("visitor_holdout_count") + held[segment_id])


def dirty_visitors_refresh(limit: int = BATCH) -> int:
    """Redo the segments of up to `limit` visitors marked since their last run; how many were taken.
    Taking the marks and writing the result is one transaction: a killed worker leaves them marked."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE segments_visitor SET dirty_at = NULL WHERE id IN (SELECT id FROM segments_visitor "
                       "WHERE dirty_at IS NOT NULL ORDER BY dirty_at LIMIT %s FOR NO KEY UPDATE SKIP LOCKED) "
                       "RETURNING shop_id, id", [limit])
        taken = cursor.fetchall()
        by_shop: dict[int, list[int]] = {}
        for shop_id, visitor_id in taken:
            by_shop.setdefault(shop_id, []).append(visitor_id)
        for shop in Shop.objects.filter(pk__in=list(by_shop)):
            visitor_segments_recompute(shop=shop, visitor_ids=sorted(by_shop[shop.pk]))
    return len(taken)


def visitors_mark(visitor_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """Mark visitors whose segments may have changed (a visitor already marked keeps its older mark)."""
    return Visitor.objects.filter(pk__in=list(visitor_ids), dirty_at__isnull=True).update(dirty_at=now or timezone.now())
