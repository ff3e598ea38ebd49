"""Membership: evaluate a shop's segments for all or some customers and apply the difference.

One pass decides every active segment (segments.engine.compiler); exclusive groups keep the
highest tier a customer qualifies for (holding a recently entered tier for the group's hysteresis
days); entrants are drawn into the holdout by a salted hash of their Shopify id; then the changes
are written set-at-a-time: memberships, one history row per entry and exit, and a tag change per
non-holdout entry or exit for tag sync. Everything runs in the caller's transaction under a per-shop
lock, so an incremental run and a full recompute of one shop never interleave.

Working tables (temporary, per connection): seg_desired holds who should be in which segment for
the customers evaluated, seg_changes the entries and exits. Temporary tables let one evaluation
feed several statements without recomputing it and without pulling customers into Python.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from segments.engine import metrics_table, planner
from segments.engine.compiler import Compiler
from segments.engine.context import OWNED_TAG_PREFIX, context_for
from segments.engine.rules import RuleSet, parse
from segments.engine.triggers import Trigger
from segments.membership.models import Membership, Segment, SegmentStatus, SegmentVersion
from segments.mirror.statistics import table_analyze_if_rewritten
from segments.shops.models import Shop

DESIRED = "seg_desired"
CHANGES = "seg_changes"
CAUSES = "seg_causes"
# Runs whose changes Shopify Flow hears of: a customer's own data changed, or a window passed for them.
FLOW_TRIGGERS = (Trigger.EVENT, Trigger.TIME)
_LOCK_NAMESPACE = 0x5E6   # pg_advisory_xact_lock(namespace, shop id): membership writes of one shop


@dataclass
class Outcome:
    evaluated: int = 0
    entered: int = 0
    exited: int = 0
    segments: list[int] = field(default_factory=list)


class Superseded(Exception):
    """A newer version of the segment arrived while this one was being computed."""


def holdout_bucket(salt: str, shopify_id: int) -> int:
    """0-9999, fixed per (segment salt, customer): members with a bucket below percent * 100 are
    the holdout. The same function runs in SQL (`holdout_sql`)."""
    digest = hashlib.md5(f"{salt}:{shopify_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 10000


def holdout_sql(salt: str, shopify_id: str) -> str:
    return f"mod(('x' || substr(md5({salt} || ':' || {shopify_id}::text), 1, 8))::bit(32)::bigint, 10000)"


def segment_rules(segments: Iterable[Segment]) -> dict[int, RuleSet]:
    """Each segment's current rules, parsed (stored documents were valid when saved)."""
    segments = list(segments)
    versions = SegmentVersion.objects.filter(segment__in=segments).values_list("segment_id", "number", "rules")
    current = {s.pk: s.current_version for s in segments}
    return {sid: parse(rules) for sid, number, rules in versions if current.get(sid) == number}


def evaluated_segments(shop: Shop, segments: Sequence[Segment] | None) -> list[Segment]:
    """The segments to decide: those asked for (all active ones by default), with every active
    segment of their exclusive groups, since a tier depends on the tiers above it."""
    active = list(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE).select_related("group"))
    if segments is None:
        return active
    wanted = {s.pk for s in segments}
    groups = {s.group_id for s in segments if s.group_id}
    chosen = [s for s in active if s.pk in wanted or (s.group_id and s.group_id in groups)]
    # Archived (or paused-then-archived) segments asked for are decided too: they want nobody.
    chosen += [s for s in Segment.objects.filter(pk__in=wanted, shop=shop).exclude(status=SegmentStatus.ACTIVE)
               if s.status == SegmentStatus.ARCHIVED]
    return chosen


def _lock(cursor, shop: Shop) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, shop.pk])


def _working_tables(cursor) -> None:
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {DESIRED} (segment_id bigint, customer_id bigint)")
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {CHANGES} (segment_id bigint, customer_id bigint, "
                   f"entered boolean, holdout boolean)")
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {CAUSES} (customer_id bigint PRIMARY KEY, "
                   f"cause varchar(100))")
    for table in (DESIRED, CHANGES, CAUSES):
        cursor.execute(f"DELETE FROM {table}")


def segments_recompute(*, shop: Shop, segments: Sequence[Segment] | None = None,
                       customer_ids: Sequence[int] | None = None, trigger: str = Trigger.EVENT,
                       causes: Mapping[int, str] | None = None, cause: str = "",
                       now: dt.datetime | None = None, expect_versions: Mapping[int, int] | None = None) -> Outcome:
    """Decide `segments` (all active ones) for `customer_ids` (every customer) and write the changes.

    `causes` gives per customer what made them dirty (a webhook topic, "time", ...), else `cause`.
    `expect_versions` ({segment id: version}) makes the run raise Superseded, writing nothing, when a
    segment's current version moved on meanwhile.
    """
    outcome = _recompute(shop, segments, customer_ids, trigger, causes, cause, now or timezone.now(), expect_versions)
    if customer_ids is None:
        # A full run may write a whole shop's memberships at once (a new segment, the first run after
        # a backfill), which later statements join: after the commit, ANALYZE when that was a lot.
        table_analyze_if_rewritten(table=Membership._meta.db_table, written=outcome.entered + outcome.exited)
    return outcome


def _recompute(shop: Shop, segments, customer_ids, trigger: str, causes, cause: str, now: dt.datetime,
               expect_versions) -> Outcome:
    outcome = Outcome()
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, shop)
        chosen = evaluated_segments(shop, segments)
        if expect_versions:
            current = dict(Segment.objects.select_for_update().filter(pk__in=list(expect_versions))
                           .values_list("pk", "current_version"))
            if any(current.get(pk) != version for pk, version in expect_versions.items()):
                raise Superseded(f"segments {sorted(expect_versions)} have newer versions")
        if not chosen:
            return outcome
        outcome.segments = [s.pk for s in chosen]
        _working_tables(cursor)
        outcome.evaluated = _decide(cursor, shop, chosen, customer_ids, now)
        _hold_tiers(cursor, chosen, customer_ids, now)
        _diff(cursor, shop, chosen, customer_ids)
        if causes:
            cursor.executemany(f"INSERT INTO {CAUSES} (customer_id, cause) VALUES (%s, %s)",
                               [(pk, (text or "")[:100]) for pk, text in causes.items()])
        outcome.entered, outcome.exited = _apply(cursor, shop, trigger=trigger, cause=cause, now=now,
                                                 flow=customer_ids is not None and trigger in FLOW_TRIGGERS)
        _recount(cursor, chosen, full=customer_ids is None, now=now)
        for table in (DESIRED, CHANGES, CAUSES):
            # A full run leaves its working tables with a whole shop's dead rows, which later
            # small runs on this connection would scan (nothing vacuums temporary tables): drop them.
            cursor.execute(f"DROP TABLE {table}" if customer_ids is None else f"DELETE FROM {table}")
    return outcome


def _decide(cursor, shop: Shop, chosen: Sequence[Segment], customer_ids, now: dt.datetime) -> int:
    """Fill seg_desired: each evaluated customer's segments, one tier per exclusive group."""
    active = [s for s in chosen if s.status == SegmentStatus.ACTIVE]
    compiler = Compiler(context_for(shop, now))
    columns, rows = decisions(compiler, active, segment_rules(active), "customer_id")
    if not columns:
        return 0
    sql, params = compiler.statement(columns, customer_ids)
    settings = (planner.planner_settings(cursor, planner.RECOMPUTE_SETTINGS) if customer_ids is None
                else contextlib.nullcontext())
    with settings:
        cursor.execute(f"INSERT INTO {DESIRED} (segment_id, customer_id) WITH evaluated AS ({sql}) {rows}", params)
    if customer_ids is None:
        cursor.execute(f"ANALYZE {DESIRED}")
    return len(customer_ids) if customer_ids is not None else _count(cursor, shop)


def decisions(compiler: Compiler, segments: Sequence[Segment], rules: Mapping[int, RuleSet],
              key: str) -> tuple[dict[str, str], str]:
    """The columns deciding `segments` that have rules (a flag per segment; per exclusive group, the
    pick of its highest tier that matches) and the SELECT turning an `evaluated` relation of them
    into (segment_id, `key`) rows."""
    columns: dict[str, str] = {}
    ladders: dict[int, list[Segment]] = {}
    for segment in segments:
        if segment.pk not in rules:
            continue
        if segment.group_id:
            ladders.setdefault(segment.group_id, []).append(segment)
        else:
            columns[f"s{segment.pk}"] = compiler.ruleset(rules[segment.pk])
    for group_id, tiers in ladders.items():
        tiers.sort(key=lambda s: (-s.priority, s.pk))
        whens = " ".join(f"WHEN {compiler.ruleset(rules[s.pk])} THEN {s.pk}" for s in tiers)
        columns[f"g{group_id}"] = f"CASE {whens} END"
    # Flags become rows: one SELECT per segment (its flag) and per ladder (its pick), unioned.
    arms = [f"SELECT {name[1:]} AS segment_id, {key} FROM evaluated WHERE {name}" if name.startswith("s")
            else f"SELECT {name} AS segment_id, {key} FROM evaluated WHERE {name} IS NOT NULL" for name in columns]
    return columns, " UNION ALL ".join(arms)


def _count(cursor, shop: Shop) -> int:
    cursor.execute("SELECT count(*) FROM segments_customermetrics WHERE shop_id = %s", [shop.pk])
    return cursor.fetchone()[0]


def _hold_tiers(cursor, chosen: Sequence[Segment], customer_ids, now: dt.datetime) -> None:
    """Hysteresis: a customer who entered a tier less than the group's hysteresis days ago keeps it
    rather than move down (moving up is immediate)."""
    ladders: dict[int, list[Segment]] = {}
    for segment in chosen:
        if segment.group_id and segment.group.hysteresis_days and segment.status == SegmentStatus.ACTIVE:
            ladders.setdefault(segment.group_id, []).append(segment)
    for tiers in ladders.values():
        ids = ", ".join(str(s.pk) for s in tiers)
        rank = "CASE {} " + " ".join(f"WHEN {s.pk} THEN {s.priority}" for s in tiers) + " END"
        since = now - dt.timedelta(days=tiers[0].group.hysteresis_days)
        scope = f"AND {metrics_table._in_ids('mem.customer_id')}" if customer_ids is not None else ""
        params = {"since": connection.ops.adapt_datetimefield_value(since)}
        if customer_ids is not None:
            params["ids"] = metrics_table._ids_param(customer_ids)
        cursor.execute(
            f"SELECT mem.customer_id, mem.segment_id FROM segments_membership mem "
            f"WHERE mem.segment_id IN ({ids}) AND mem.entered_at > %(since)s {scope} AND NOT EXISTS "
            f"(SELECT 1 FROM {DESIRED} d WHERE d.customer_id = mem.customer_id AND d.segment_id IN ({ids}) "
            f"AND {rank.format('d.segment_id')} >= {rank.format('mem.segment_id')})", params)
        held = cursor.fetchall()
        if held:
            cursor.executemany(f"DELETE FROM {DESIRED} WHERE customer_id = %s AND segment_id IN ({ids})",
                               [(customer,) for customer, _ in held])
            cursor.executemany(f"INSERT INTO {DESIRED} (segment_id, customer_id) VALUES (%s, %s)",
                               [(segment, customer) for customer, segment in held])


def _diff(cursor, shop: Shop, chosen: Sequence[Segment], customer_ids) -> None:
    """Fill seg_changes: exits (members no longer desired) and entries (desired, not members)."""
    ids = ", ".join(str(s.pk) for s in chosen)
    params: dict = {"shop": shop.pk}
    scope = ""
    if customer_ids is not None:
        scope = f"AND {metrics_table._in_ids('mem.customer_id')}"
        params["ids"] = metrics_table._ids_param(customer_ids)
    cursor.execute(
        f"INSERT INTO {CHANGES} (segment_id, customer_id, entered, holdout) "
        f"SELECT mem.segment_id, mem.customer_id, FALSE, mem.holdout FROM segments_membership mem "
        f"WHERE mem.segment_id IN ({ids}) {scope} AND NOT EXISTS (SELECT 1 FROM {DESIRED} d "
        f"WHERE d.segment_id = mem.segment_id AND d.customer_id = mem.customer_id)", params)
    # The Shopify id is looked up only for entrants of segments with a holdout (most have none).
    holdout = holdout_sql("s.holdout_salt", "(SELECT c.shopify_id FROM segments_customer c WHERE c.id = d.customer_id)")
    cursor.execute(
        f"INSERT INTO {CHANGES} (segment_id, customer_id, entered, holdout) "
        f"SELECT d.segment_id, d.customer_id, TRUE, "
        f"CASE WHEN s.holdout_percent > 0 AND {holdout} < s.holdout_percent * 100 THEN TRUE ELSE FALSE END "
        f"FROM {DESIRED} d JOIN segments_segment s ON s.id = d.segment_id "
        f"WHERE NOT EXISTS (SELECT 1 FROM segments_membership mem "
        f"WHERE mem.segment_id = d.segment_id AND mem.customer_id = d.customer_id)", {})


def _apply(cursor, shop: Shop, *, trigger: str, cause: str, now: dt.datetime, flow: bool) -> tuple[int, int]:
    """Write seg_changes: memberships, history, tag changes and, with `flow`, Flow's outbox.
    Returns (entries, exits)."""
    at = connection.ops.adapt_datetimefield_value(now)
    params = {"shop": shop.pk, "now": at, "trigger": trigger, "cause": cause[:100],
              "removed": Trigger.REMOVED, "time": Trigger.TIME, "prefix": OWNED_TAG_PREFIX}
    cursor.execute(f"DELETE FROM segments_membership WHERE EXISTS (SELECT 1 FROM {CHANGES} x "
                   f"WHERE x.segment_id = segments_membership.segment_id "
                   f"AND x.customer_id = segments_membership.customer_id AND NOT x.entered)")
    exits = cursor.rowcount
    cursor.execute(f"INSERT INTO segments_membership (shop_id, segment_id, customer_id, holdout, entered_at, version) "
                   f"SELECT %(shop)s, x.segment_id, x.customer_id, x.holdout, %(now)s, s.current_version "
                   f"FROM {CHANGES} x JOIN segments_segment s ON s.id = x.segment_id WHERE x.entered", params)
    entries = cursor.rowcount
    # A customer's own cause decides the trigger: "time" is a window passing; a deleted customer's
    # exits say so; anything else is the run's trigger.
    cursor.execute(
        f"INSERT INTO segments_membershipevent (shop_id, segment_id, customer_id, entered, holdout, at, version, "
        f"trigger, cause) SELECT %(shop)s, x.segment_id, x.customer_id, x.entered, x.holdout, %(now)s, "
        f"s.current_version, CASE WHEN NOT x.entered AND EXISTS (SELECT 1 FROM segments_customer c "
        f"WHERE c.id = x.customer_id AND c.deleted_at IS NOT NULL) THEN %(removed)s "
        f"WHEN k.cause = 'time' THEN %(time)s ELSE %(trigger)s END, COALESCE(k.cause, %(cause)s) "
        f"FROM {CHANGES} x JOIN segments_segment s ON s.id = x.segment_id "
        f"LEFT JOIN {CAUSES} k ON k.customer_id = x.customer_id",
        params)
    # Tag sync's outbox: members get the shop's prefix + handle; holdout members only the shop's
    # holdout tag, when it has one ("{handle}" in it names the segment).
    cursor.execute(
        f"INSERT INTO segments_tagchange (shop_id, customer_id, tag, {connection.ops.quote_name('add')}, created_at, "
        f"segment_id, version) "
        f"SELECT %(shop)s, x.customer_id, CASE WHEN x.holdout THEN replace(sh.holdout_tag, '{{handle}}', s.handle) "
        f"ELSE COALESCE(NULLIF(sh.tag_prefix, ''), %(prefix)s) || s.handle END, x.entered, %(now)s, "
        f"x.segment_id, s.current_version "
        f"FROM {CHANGES} x JOIN segments_segment s ON s.id = x.segment_id JOIN segments_shop sh ON sh.id = s.shop_id "
        f"WHERE NOT x.holdout OR sh.holdout_tag <> ''", params)
    if flow:   # what a customer's own doings changed, for members only (segments.membership.models.FlowTrigger)
        cursor.execute(f"INSERT INTO segments_flowtrigger (shop_id, segment_id, customer_id, entered, created_at) "
                       f"SELECT %(shop)s, x.segment_id, x.customer_id, x.entered, %(now)s FROM {CHANGES} x "
                       f"WHERE NOT x.holdout", params)
    return entries, exits


def _recount(cursor, chosen: Sequence[Segment], *, full: bool, now: dt.datetime) -> None:
    """Keep each segment's member and holdout counts; a full run also records that it is current."""
    if full:
        ids = [s.pk for s in chosen]
        cursor.execute(f"SELECT segment_id, count(*), sum(CASE WHEN holdout THEN 1 ELSE 0 END) "
                       f"FROM segments_membership WHERE segment_id IN ({', '.join(['%s'] * len(ids))}) "
                       f"GROUP BY segment_id", ids)
        counts = {pk: (members, holdouts or 0) for pk, members, holdouts in cursor.fetchall()}
        for segment in chosen:
            members, holdouts = counts.get(segment.pk, (0, 0))
            Segment.objects.filter(pk=segment.pk).update(
                member_count=members, holdout_count=holdouts, computed_version=segment.current_version,
                last_computed_at=now, compute_error="")
        return
    # Incremental: only the segments something happened to, by the difference.
    cursor.execute(f"SELECT segment_id, sum(CASE WHEN entered THEN 1 ELSE -1 END), "
                   f"sum(CASE WHEN holdout THEN (CASE WHEN entered THEN 1 ELSE -1 END) ELSE 0 END) "
                   f"FROM {CHANGES} GROUP BY segment_id")
    for pk, members, holdouts in cursor.fetchall():
        Segment.objects.filter(pk=pk).update(member_count=F("member_count") + members,
                                             holdout_count=F("holdout_count") + holdouts)
