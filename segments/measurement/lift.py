"""Holdout lift: a segment's treated members against its holdout over a period of shop-local days.

Who is compared: everyone in the segment at the start of the period, by their holdout flag (intent
to treat: members who leave during the period still count, so leaving cannot flatter the result).
What: conversion (members with an order in the period over members; two-proportion z test),
revenue per member (Welch, zeros included; optionally CUPED on the same-length pre-period spend)
and AOV (per buyer, their net revenue over their orders; Welch), and for a playbook with offers, the
share of members who redeemed one of its discount codes (two-proportion). Orders are counted as in the
KPI snapshots: not cancelled, net of refunds, on the shop-local day of `created_at`.

Also: the sample-ratio-mismatch test against the configured holdout share, and the minimum
detectable effect for the sizes at hand, turned into a plain warning when the effect the
merchant cares about (`target_lift`, relative) is smaller than what the sample can see.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Min

from segments.engine import stats
from segments.experiences.models import Offer
from segments.measurement.profit import ORDER_PROFIT_CTE, PROFIT
from segments.measurement.snapshots import members_at_cte
from segments.membership.models import MembershipEvent, Segment
from segments.mirror.order_costs import margin_fill
from segments.shops.calendar import shop_day_bounds, shop_today

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366
DEFAULT_TARGET_LIFT = 0.10    # a 10% relative change is what most merchants would act on


class LiftError(ValueError):
    """The period or settings cannot be used (a 400 in the API)."""


@dataclass
class Lift:
    segment_id: int
    start: dt.date
    end: dt.date
    holdout_percent: int
    treatment_members: int
    control_members: int
    conversion: stats.Comparison
    revenue_per_member: stats.Comparison
    aov: stats.Comparison
    srm: stats.SampleRatio
    cuped: bool
    cuped_theta: float | None
    mde: dict = field(default_factory=dict)          # {metric: absolute MDE or None}
    warnings: list[str] = field(default_factory=list)
    # The playbook's offers: members who used one of its discount codes in the period, treated against
    # holdout (held-out members are not in the code's segment, so theirs measures leakage); None
    # without offers.
    offer_codes: list[str] = field(default_factory=list)
    redemption: stats.Comparison | None = None
    # Gross profit per member (segments.measurement.profit); None while order lines lack costs.
    profit_per_member: stats.Comparison | None = None

    def to_dict(self) -> dict:
        return {"segment": self.segment_id, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "holdout_percent": self.holdout_percent, "treatment_members": self.treatment_members,
                "control_members": self.control_members, "conversion": self.conversion.to_dict(),
                "revenue_per_member": self.revenue_per_member.to_dict(), "aov": self.aov.to_dict(),
                "sample_ratio": self.srm.to_dict(), "cuped": self.cuped, "cuped_theta": self.cuped_theta,
                "mde": self.mde, "warnings": self.warnings, "offer_codes": self.offer_codes,
                "offer_redemption": self.redemption.to_dict() if self.redemption else None,
                "profit_per_member": self.profit_per_member.to_dict() if self.profit_per_member else None}


_LIFT_SQL = f"""
WITH {members_at_cte("start")}, {ORDER_PROFIT_CTE},
profits AS (SELECT op.customer_id, sum({PROFIT}) AS profit, sum(op.uncosted_lines) AS uncosted FROM op
            GROUP BY op.customer_id),
per_member AS (
  SELECT m.customer_id, m.holdout,
         count(o.id) FILTER (WHERE o.created_at >= %(start)s) AS orders,
         COALESCE(sum(o.total - o.total_refunded) FILTER (WHERE o.created_at >= %(start)s), 0) AS revenue,
         COALESCE(sum(o.total - o.total_refunded) FILTER (WHERE o.created_at < %(start)s), 0) AS pre,
         COALESCE(bool_or(o.created_at >= %(start)s AND EXISTS (
           SELECT 1 FROM jsonb_array_elements_text(o.discount_codes) code WHERE upper(code) = ANY(%(codes)s))),
           false) AS redeemed,
         COALESCE(max(p.profit), 0) AS profit, COALESCE(max(p.uncosted), 0) AS uncosted
  FROM members m LEFT JOIN profits p ON p.customer_id = m.customer_id
  LEFT JOIN segments_order o ON o.shop_id = %(shop)s AND o.customer_id = m.customer_id AND o.cancelled_at IS NULL
       AND o.created_at >= %(pre_start)s AND o.created_at < %(end)s
  GROUP BY m.customer_id, m.holdout
)
SELECT holdout, GROUPING(holdout) AS overall, count(*), count(*) FILTER (WHERE orders > 0),
       avg(revenue), var_samp(revenue), avg(pre), var_samp(pre), covar_samp(pre, revenue),
       avg(revenue / orders) FILTER (WHERE orders > 0), var_samp(revenue / orders) FILTER (WHERE orders > 0),
       count(*) FILTER (WHERE redeemed), avg(profit), var_samp(profit), sum(uncosted)
FROM per_member GROUP BY GROUPING SETS ((holdout), ())
"""


def _f(value) -> float:
    return float(value) if value is not None else 0.0


def default_period(segment: Segment, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The last 30 complete days; for a segment whose history is younger, its days since the first
    day that began with membership known (an earlier start would compare nobody with nobody)."""
    yesterday = shop_today(segment.shop, now) - dt.timedelta(days=1)
    start = yesterday - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    began = MembershipEvent.objects.filter(segment=segment).aggregate(at=Min("at"))["at"]
    if began is not None:
        known = shop_today(segment.shop, began) + dt.timedelta(days=1)
        if start < known <= yesterday:
            start = known
    return start, yesterday


def segment_lift(*, segment: Segment, start: dt.date, end: dt.date, cuped: bool = False,
                 target_lift: float = DEFAULT_TARGET_LIFT, now: dt.datetime | None = None) -> Lift:
    """Treatment against control for the shop-local days start..end (inclusive)."""
    codes = sorted({code.upper() for code in Offer.objects.filter(segment=segment).values_list("code", flat=True)})
    today = shop_today(segment.shop, now)
    if start > end:
        raise LiftError("The period starts after it ends.")
    if end > today:
        raise LiftError("The period cannot end after today.")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise LiftError(f"The period can be at most {MAX_PERIOD_DAYS} days.")
    if not 0 < target_lift <= 10:
        raise LiftError("The target lift must be a share above 0 (0.1 is 10%).")
    period_start, _ = shop_day_bounds(segment.shop, start)
    _, period_end = shop_day_bounds(segment.shop, end)
    pre_start = period_start - (period_end - period_start)
    with connection.cursor() as cursor:
        cursor.execute(_LIFT_SQL, {"shop": segment.shop_id, "segments": [segment.pk], "start": period_start,
                                   "end": period_end, "pre_start": pre_start, "codes": codes,
                                "fill": margin_fill(segment.shop)})
        rows = cursor.fetchall()
    groups, overall = {}, None
    for (holdout, is_overall, n, buyers, mean_rev, var_rev, mean_pre, var_pre, cov, mean_aov, var_aov, redeemed,
         mean_profit, var_profit, uncosted) in rows:
        summary = {"n": n, "buyers": buyers, "redeemed": redeemed, "mean_rev": _f(mean_rev), "var_rev": _f(var_rev),
                   "mean_profit": _f(mean_profit), "var_profit": _f(var_profit), "uncosted": uncosted or 0,
                   "mean_pre": _f(mean_pre), "var_pre": _f(var_pre), "cov": _f(cov),
                   "mean_aov": _f(mean_aov), "var_aov": _f(var_aov)}
        if is_overall:
            overall = summary
        else:
            groups[bool(holdout)] = summary
    empty = {"n": 0, "buyers": 0, "redeemed": 0, "mean_profit": 0.0, "var_profit": 0.0, "uncosted": 0, "mean_rev": 0.0, "var_rev": 0.0, "mean_pre": 0.0, "var_pre": 0.0, "cov": 0.0,
             "mean_aov": 0.0, "var_aov": 0.0}
    t, c = groups.get(False, empty), groups.get(True, empty)
    overall = overall or empty

    conversion = stats.two_proportion_test(t["buyers"], t["n"], c["buyers"], c["n"])
    theta = None
    if cuped and overall["var_pre"] > 0:
        theta = overall["cov"] / overall["var_pre"]
        moments = {key: stats.Moments(g["n"], g["mean_rev"], g["var_rev"], g["mean_pre"], g["var_pre"], g["cov"])
                   for key, g in (("t", t), ("c", c))}
        revenue = stats.cuped_welch(moments["t"], moments["c"], theta, overall["mean_pre"])
        # Report the observed means; the adjusted difference and its interval are what CUPED sharpens.
        revenue = stats.Comparison(t["mean_rev"] if t["n"] else None, c["mean_rev"] if c["n"] else None,
                                   revenue.diff, revenue.ci_low, revenue.ci_high, revenue.p_value,
                                   revenue.statistic, revenue.df)
    else:
        revenue = stats.welch_from_summary(t["mean_rev"], t["var_rev"], t["n"], c["mean_rev"], c["var_rev"], c["n"])
    aov = stats.welch_from_summary(t["mean_aov"], t["var_aov"], t["buyers"], c["mean_aov"], c["var_aov"],
                                   c["buyers"])
    srm = stats.sample_ratio_test(t["n"], c["n"], segment.holdout_percent / 100)

    baseline_rate = c["buyers"] / c["n"] if c["n"] else None
    pooled_sd_rev = (overall["var_rev"]) ** 0.5
    mde = {
        "conversion": stats.proportion_mde(baseline_rate, t["n"], c["n"]) if baseline_rate is not None else None,
        "revenue_per_member": stats.minimum_detectable_effect(pooled_sd_rev, t["n"], c["n"]),
        "aov": stats.minimum_detectable_effect(overall["var_aov"] ** 0.5, t["buyers"], c["buyers"]),
    }
    lift = Lift(segment.pk, start, end, segment.holdout_percent, t["n"], c["n"], conversion, revenue, aov, srm,
                cuped, theta, mde)
    lift.warnings = _warnings(lift, baseline_rate, c["mean_rev"], target_lift)
    if segment.shop.default_margin_percent or not overall["uncosted"]:
        lift.profit_per_member = stats.welch_from_summary(t["mean_profit"], t["var_profit"], t["n"],
                                                          c["mean_profit"], c["var_profit"], c["n"])
    else:
        lift.warnings.append(f"{overall['uncosted']:,} order lines have no unit cost in Shopify: set a default margin "
                             "in Settings to measure profit per member.")
    if codes:
        lift.offer_codes = codes
        lift.redemption = stats.two_proportion_test(t["redeemed"], t["n"], c["redeemed"], c["n"])
    return lift


def _warnings(lift: Lift, baseline_rate: float | None, baseline_revenue: float, target: float) -> list[str]:
    out: list[str] = []
    if lift.holdout_percent == 0:
        out.append("This segment has no holdout, so there is nothing to compare its members with. Set a holdout "
                   "percentage to measure what the playbook changes.")
        return out
    if lift.treatment_members == 0 or lift.control_members == 0:
        out.append("Nobody was in the segment (or its holdout) when the period started, so there is nothing to "
                   "compare yet.")
        return out
    if lift.srm.mismatch:
        out.append(f"Sample ratio mismatch: the holdout holds {lift.srm.observed_control_share:.1%} of members where "
                   f"{lift.srm.expected_control_share:.0%} was configured (p = {lift.srm.p_value:.2g}). Assignment "
                   f"looks broken, so these results should not be trusted.")
    pct = f"{target:.0%}"
    checks = (("conversion", "conversion rate", baseline_rate), ("revenue_per_member", "revenue per member",
                                                                    baseline_revenue))
    for key, label, baseline in checks:
        mde = lift.mde.get(key)
        if mde is None or not baseline:
            continue
        if mde > target * baseline:
            out.append(f"Too few members to see a {pct} change in {label}: with {lift.treatment_members:,} treated "
                       f"and {lift.control_members:,} held out, only a change of about {mde / baseline:.0%} or more "
                       f"would be detected reliably (80% power, 5% significance). A larger holdout or a longer "
                       f"period helps.")
    return out
