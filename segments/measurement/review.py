"""The monthly review: each segment's KPIs for a calendar month against the month before (from the
daily snapshots), the biggest movers, playbooks whose holdout shows a significant lift on their
KPI, every on-site experience's and offer's lift (significant or not: the merchant decides whether
to keep it), each segment's gross profit (segments.measurement.profit) with those whose profit per
member lags the store's profit per customer flagged, and segments to merge or redefine: too small for their holdout to detect a 10% change, or
overlapping another segment by more than OVERLAP_JACCARD of their combined members.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Max, Sum

from segments.experiences.models import Playbook, PlaybookKpi
from segments.experiences.presets import PRESETS
from segments.measurement.lift import segment_lift
from segments.measurement.profit import segments_profit, store_profit
from segments.measurement.models import SegmentKpiSnapshot
from segments.membership.models import Segment, SegmentStatus
from segments.shops.calendar import shop_today
from segments.shops.models import Shop

OVERLAP_JACCARD = 0.8
TOO_SMALL_MEMBERS = 100          # below this a segment's figures swing on a handful of customers
MOVERS = 5
_KPI_FIELD = {PlaybookKpi.CONVERSION: "conversion", PlaybookKpi.REVENUE_PER_MEMBER: "revenue_per_member",
              PlaybookKpi.AOV: "aov", PlaybookKpi.REPEAT_RATE: "conversion", PlaybookKpi.RETENTION: "conversion"}


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """'2026-10' -> (Oct 1, Oct 31); ValueError on anything else. Reviews are of 2000-01 to 2099-12 and
    each is compared with the month before, so 1999-12 has bounds too."""
    year, number = (int(part) for part in month.split("-", 1))
    if not (1999 <= year <= 2100 and 1 <= number <= 12) or len(month) != 7:
        raise ValueError("month must look like 2026-10")
    return dt.date(year, number, 1), dt.date(year, number, calendar.monthrange(year, number)[1])


def previous_month(month: str) -> str:
    first, _ = month_bounds(month)
    last_of_previous = first - dt.timedelta(days=1)
    return f"{last_of_previous.year:04d}-{last_of_previous.month:02d}"


def _month_kpis(segments: list[Segment], start: dt.date, end: dt.date) -> dict[int, dict]:
    rows = (SegmentKpiSnapshot.objects.filter(segment__in=segments, day__gte=start, day__lte=end)
            .values("segment_id").annotate(revenue=Sum("revenue"), orders=Sum("orders"), buyers=Sum("buyers"),
                                           entries=Sum("entries"), exits=Sum("exits"), store=Sum("store_revenue"),
                                           member_days=Sum("members"), last_day=Max("day")))
    out = {}
    for row in rows:
        last = SegmentKpiSnapshot.objects.filter(segment_id=row["segment_id"], day=row["last_day"]).first()
        days = (min(end, row["last_day"]) - start).days + 1
        avg_members = row["member_days"] / days if days else 0
        revenue = float(row["revenue"] or 0)
        out[row["segment_id"]] = {
            "members": last.members if last else 0, "revenue": revenue, "orders": row["orders"] or 0,
            "entries": row["entries"] or 0, "exits": row["exits"] or 0,
            "aov": revenue / row["orders"] if row["orders"] else None,
            "revenue_per_member": revenue / avg_members if avg_members else None,
            "revenue_share": revenue / float(row["store"]) if row["store"] else None,
            "avg_clv": float(last.clv_total) / last.members if last and last.members else None,
        }
    return out


def _change(now, before) -> float | None:
    if now is None or before in (None, 0):
        return None
    return (now - before) / abs(before)


def _overlaps(segments: list[Segment]) -> list[dict]:
    ids = [s.pk for s in segments]
    if len(ids) < 2:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.segment_id, b.segment_id, count(*) FROM segments_membership a "
            "JOIN segments_membership b ON b.customer_id = a.customer_id AND b.segment_id > a.segment_id "
            "WHERE a.segment_id = ANY(%(ids)s) AND b.segment_id = ANY(%(ids)s) AND NOT a.holdout AND NOT b.holdout "
            "GROUP BY 1, 2", {"ids": ids})
        shared = cursor.fetchall()
    names = {s.pk: s for s in segments}
    out = []
    for a, b, both in shared:
        union = names[a].member_count - names[a].holdout_count + names[b].member_count - names[b].holdout_count - both
        jaccard = both / union if union else 0.0
        if jaccard >= OVERLAP_JACCARD:
            out.append({"segments": [a, b], "names": [names[a].name, names[b].name], "jaccard": round(jaccard, 3),
                        "advice": f"{names[a].name} and {names[b].name} share {jaccard:.0%} of their members: merge "
                                  f"them or redefine one."})
    return out


@dataclass
class Review:
    month: str
    rows: list[dict] = field(default_factory=list)
    movers: list[dict] = field(default_factory=list)
    lifts: list[dict] = field(default_factory=list)
    too_small: list[dict] = field(default_factory=list)
    overlaps: list[dict] = field(default_factory=list)
    experiences: list[dict] = field(default_factory=list)
    store_profit: dict = field(default_factory=dict)
    profit_lags: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"month": self.month, "segments": self.rows, "movers": self.movers, "significant_playbooks": self.lifts,
                "experiences": self.experiences, "too_small": self.too_small, "overlaps": self.overlaps,
                "store_profit": self.store_profit, "profit_lags": self.profit_lags}


def monthly_review(*, shop: Shop, month: str, now: dt.datetime | None = None) -> Review:
    start, end = month_bounds(month)
    today = shop_today(shop, now)
    segments = list(Segment.objects.filter(shop=shop).exclude(status=SegmentStatus.ARCHIVED).order_by("pk"))
    this = _month_kpis(segments, start, end)
    before = _month_kpis(segments, *month_bounds(previous_month(month)))
    review = Review(month)
    period_end = min(end, today)
    profits = segments_profit(shop=shop, segments=segments, start=start, end=period_end) if start <= today else {}
    review.store_profit = store_profit(shop=shop, start=start, end=period_end) if start <= today else {}
    for segment in segments:
        now_kpis, prev = this.get(segment.pk, {}), before.get(segment.pk, {})
        review.rows.append({"segment": segment.pk, "name": segment.name, "kpis": now_kpis, "previous": prev,
                            "profit": profits.get(segment.pk, {}),
                            "change": {key: _change(now_kpis.get(key), prev.get(key))
                                       for key in ("members", "revenue", "orders", "aov", "revenue_per_member")}})
    movers = [(abs(r["change"][key]), r, key) for r in review.rows for key in ("members", "revenue")
              if r["change"].get(key)]       # no change is not a move
    review.movers = [{"segment": r["segment"], "name": r["name"], "kpi": key, "change": r["change"][key]}
                     for _, r, key in sorted(movers, key=lambda m: -m[0])[:MOVERS]]

    store_per_customer = review.store_profit.get("profit_per_customer")
    review.profit_lags = [
        {"segment": r["segment"], "name": r["name"], "profit_per_member": r["profit"]["profit_per_member"],
         "store_profit_per_customer": store_per_customer} for r in review.rows
        if store_per_customer is not None and r["profit"].get("profit_per_member") is not None
        and r["profit"]["profit_per_member"] < store_per_customer]
    playbooks = {p.segment_id: p for p in Playbook.objects.filter(segment__in=segments)}
    for segment in segments:
        if segment.holdout_percent == 0 or start > today:
            continue
        lift = segment_lift(segment=segment, start=start, end=period_end, now=now)
        playbook = playbooks.get(segment.pk)
        if playbook is not None and (playbook.experience or lift.offer_codes):
            review.experiences.append(_experience_row(segment, playbook, lift))
        if playbook is not None:
            comparison = getattr(lift, _KPI_FIELD[playbook.kpi])
            if comparison.significant:
                review.lifts.append({"segment": segment.pk, "name": segment.name, "kpi": playbook.kpi,
                                     "goal": playbook.goal, **comparison.to_dict()})
        if any(w.startswith("Too few members") for w in lift.warnings):
            review.too_small.append({"segment": segment.pk, "name": segment.name,
                                     "reason": "Its holdout cannot detect a 10% change in conversion or revenue."})
    for segment in segments:
        treated = segment.member_count - segment.holdout_count
        if treated < TOO_SMALL_MEMBERS and all(t["segment"] != segment.pk for t in review.too_small):
            review.too_small.append({"segment": segment.pk, "name": segment.name,
                                     "reason": f"Only {treated} members: its figures swing on a handful of customers."})
    review.overlaps = _overlaps([s for s in segments if s.status == SegmentStatus.ACTIVE])
    return review


def _experience_row(segment: Segment, playbook: Playbook, lift) -> dict:
    """An experience's or offer's month: its playbook's KPI treated against holdout, and its codes' redemption."""
    preset = playbook.experience.get("preset")
    return {"segment": segment.pk, "name": segment.name, "experience": PRESETS[preset].label if preset else "",
            "offer_codes": lift.offer_codes, "kpi": playbook.kpi,
            "lift": getattr(lift, _KPI_FIELD[playbook.kpi]).to_dict(),
            "redemption": lift.redemption.to_dict() if lift.redemption else None}


def review_markdown(review: Review) -> str:
    def pct(value):
        return "—" if value is None else f"{value:+.0%}"

    lines = [f"# Monthly review {review.month}", "", "| Segment | Members | Δ | Revenue | Δ | Orders | AOV |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in review.rows:
        k = r["kpis"]
        aov = "—" if k.get("aov") is None else f"{k['aov']:.2f}"
        lines.append(f"| {r['name']} | {k.get('members', 0)} | {pct(r['change']['members'])} | "
                     f"{k.get('revenue', 0):.2f} | {pct(r['change']['revenue'])} | {k.get('orders', 0)} | {aov} |")
    lines += ["", "## Biggest movers", ""] + [f"- {m['name']}: {m['kpi']} {pct(m['change'])}" for m in review.movers]
    lines += ["", "## Playbooks with a significant lift", ""] + [
        f"- {x['name']} ({x['kpi']}): {x['diff']:+.4g} (95% CI {x['ci_low']:.4g} to {x['ci_high']:.4g}, "
        f"p = {x['p_value']:.2g})" for x in review.lifts]
    lines += ["", "## Experiences and offers (treated against holdout)", ""] + [
        f"- {x['name']}: {x['experience'] or 'offer only'}"
        + (f", codes {', '.join(x['offer_codes'])}" if x["offer_codes"] else "")
        + (f"; {x['kpi']} {x['lift']['diff']:+.4g} (95% CI {x['lift']['ci_low']:.4g} to {x['lift']['ci_high']:.4g})"
           if x["lift"]["ci_low"] is not None else f"; {x['kpi']}: too few members to compare")
        + (f"; redeemed by {x['redemption']['treatment']:.1%} of members, {x['redemption']['control']:.1%} of holdout"
           if x["redemption"] and x["redemption"]["treatment"] is not None and x["redemption"]["control"] is not None
           else "") for x in review.experiences]
    lines += ["", "## Profit per member below the store's", ""] + [
        f"- {x['name']}: {x['profit_per_member']:.2f} per member against {x['store_profit_per_customer']:.2f} per "
        f"customer store-wide" for x in review.profit_lags]
    lines += ["", "## Merge or redefine", ""] + [f"- {t['name']}: {t['reason']}" for t in review.too_small] + [
        f"- {o['advice']}" for o in review.overlaps]
    return "\n".join(lines) + "\n"
