"""Migration between segments: where the customers in each segment at the end of day A were at the
end of day B, from the membership history (counts and shares, "none" for outside them all).

For an exclusive group a customer is in at most one tier; for any chosen segments a customer in
several counts once, in the highest-priority one (then the lowest id). An *upgrade* is a move to a
higher-priority segment. Customers outside every segment on both days never appear in the
history, so the "none to none" cell is always 0: it is not counted, not a claim that nobody stayed out. Where the origin segment has a holdout, its upgrade rate for treated
members is tested against its held-out members: that is "which playbook drove upgrades".
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Min

from segments.engine import stats
from segments.experiences.models import Playbook
from segments.measurement.snapshots import members_at_cte
from segments.membership.models import MembershipEvent, Segment
from segments.shops.calendar import shop_day_bounds, shop_today

NONE = "none"


DEFAULT_DAYS = 30


@dataclass
class Migration:
    start: dt.date
    end: dt.date
    segments: list[dict]                    # [{id, name, priority}] highest priority first, then "none"
    counts: dict[tuple, int]                # {(from id | "none", to id | "none"): customers}
    upgrades: list[dict] = field(default_factory=list)
    history_start: dt.date | None = None    # the shop-local day membership history begins (first calculation)

    @property
    def moved(self) -> int:
        """Customers who ended the period somewhere else (into or out of the segments included)."""
        return sum(n for (a, b), n in self.counts.items() if a != b)

    def empty_reason(self) -> str | None:
        """Why the matrix holds nothing to read, in plain words; None when it shows moves."""
        if not self.segments:
            return "There are no segments to compare: choose an exclusive group or activate a segment."
        if self.history_start is None:
            return "These segments have had no members yet, so nobody could move between them."
        if self.end < self.history_start:
            return (f"Membership history begins on {self.history_start:%b} {self.history_start.day}, "
                    f"{self.history_start.year}, when these segments were first calculated: choose days from then on.")
        if self.start == self.end:
            return "The two days are the same: choose a later second day to see moves."
        if not self.counts:
            return "Nobody was in these segments on either day."
        if not self.moved:
            return "No customer moved between segments in this period: everyone stayed where they were."
        return None

    def caveat(self) -> str | None:
        """A warning when the first day comes before history begins (everyone then reads as outside)."""
        if self.history_start and self.start < self.history_start <= self.end:
            return (f"Membership history begins on {self.history_start:%b} {self.history_start.day}, "
                    f"{self.history_start.year}: customers shown coming from None may already have been in a segment "
                    f"before then.")
        return None

    def row_total(self, origin) -> int:
        return sum(n for (a, _), n in self.counts.items() if a == origin)

    def share(self, origin, target) -> float | None:
        total = self.row_total(origin)
        return self.counts.get((origin, target), 0) / total if total else None

    def keys(self) -> list:
        return [s["id"] for s in self.segments] + [NONE]

    def to_dict(self) -> dict:
        names = {s["id"]: s["name"] for s in self.segments} | {NONE: "None"}
        rows = [{"from": a, "from_name": names[a], "to": b, "to_name": names[b], "customers": self.counts.get((a, b), 0),
                 "share": self.share(a, b)} for a in self.keys() for b in self.keys()]
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "segments": self.segments,
                "cells": rows, "upgrades": self.upgrades, "moved": self.moved,
                "history_start": self.history_start.isoformat() if self.history_start else None,
                "empty_reason": self.empty_reason(), "caveat": self.caveat()}


_SQL = f"""
WITH {members_at_cte("a_end", "at_a")}, {members_at_cte("b_end", "at_b")},
rank AS (SELECT * FROM unnest(%(segments)s::bigint[], %(ranks)s::int[]) AS r(segment_id, position)),
state_a AS (
  SELECT DISTINCT ON (x.customer_id) x.customer_id, x.segment_id, x.holdout
  FROM at_a x JOIN rank USING (segment_id) ORDER BY x.customer_id, rank.position
),
state_b AS (
  SELECT DISTINCT ON (x.customer_id) x.customer_id, x.segment_id
  FROM at_b x JOIN rank USING (segment_id) ORDER BY x.customer_id, rank.position
)
SELECT a.segment_id, b.segment_id, COALESCE(a.holdout, FALSE), count(*)
FROM state_a a FULL OUTER JOIN state_b b ON a.customer_id = b.customer_id
GROUP BY 1, 2, 3
"""


def migration_default_start(*, segments: list[Segment], end: dt.date, days: int = DEFAULT_DAYS) -> dt.date:
    """The page's and the API's first day when none is chosen: `days` before `end`, but not before
    membership history begins (an earlier day shows everyone arriving from None)."""
    start = end - dt.timedelta(days=days)
    began = _history_start(segments)
    return began if began is not None and start < began <= end else start


def _history_start(segments: list[Segment]) -> dt.date | None:
    """The shop-local day membership history of `segments` begins (their first calculation)."""
    if not segments:
        return None
    first_event = MembershipEvent.objects.filter(segment__in=segments).aggregate(at=Min("at"))["at"]
    return shop_today(segments[0].shop, first_event) if first_event else None


def segments_migration(*, segments: list[Segment], start: dt.date, end: dt.date) -> Migration:
    """The move matrix for `segments` (one shop's) between the ends of shop-local days start and end."""
    ordered = sorted(segments, key=lambda s: (-s.priority, s.pk))
    info = [{"id": s.pk, "name": s.name, "priority": s.priority, "holdout_percent": s.holdout_percent}
            for s in ordered]
    if not ordered:
        return Migration(start, end, info, {})
    shop = ordered[0].shop
    _, a_end = shop_day_bounds(shop, start)
    _, b_end = shop_day_bounds(shop, end)
    with connection.cursor() as cursor:
        cursor.execute(_SQL, {"segments": [s.pk for s in ordered], "ranks": list(range(len(ordered))),
                              "a_end": a_end, "b_end": b_end})
        rows = cursor.fetchall()
    counts: dict[tuple, int] = {}
    by_holdout: dict[tuple, int] = {}
    for origin, target, holdout, n in rows:
        key = (origin or NONE, target or NONE)
        counts[key] = counts.get(key, 0) + n
        by_holdout[(*key, holdout)] = by_holdout.get((*key, holdout), 0) + n
    migration = Migration(start, end, info, counts, history_start=_history_start(ordered))
    migration.upgrades = _upgrades(ordered, by_holdout)
    return migration


def _upgrades(ordered: list[Segment], by_holdout: dict) -> list[dict]:
    position = {s.pk: i for i, s in enumerate(ordered)}
    playbooks = {p.segment_id: p for p in Playbook.objects.filter(segment__in=[s.pk for s in ordered if s.holdout_percent])}
    out = []
    for segment in ordered:
        if not segment.holdout_percent:
            continue
        counts = {False: [0, 0], True: [0, 0]}    # holdout: [upgraded, total]
        for (origin, target, holdout), n in by_holdout.items():
            if origin != segment.pk:
                continue
            counts[holdout][1] += n
            if target != NONE and position[target] < position[segment.pk]:
                counts[holdout][0] += n
        test = stats.two_proportion_test(counts[False][0], counts[False][1], counts[True][0], counts[True][1])
        playbook = playbooks.get(segment.pk)
        out.append({"segment": segment.pk, "name": segment.name, "playbook": playbook.goal if playbook else None,
                    "has_playbook": playbook is not None, "treated": counts[False][1], "held_out": counts[True][1],
                    "upgrade_rate": test.to_dict()})
    return out
