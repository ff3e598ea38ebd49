"""Measurement pages of the embedded admin: KPIs over time (segments side by side), a segment's
holdout lift, the migration heatmap and the monthly review. Charts are inline SVG drawn here, so
the pages need no chart library. Each page also answers `?export=csv` (and the review `md`) under
the same session-token authentication as the page itself.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import wraps
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from segments.models import ExclusiveGroup, Segment, SegmentKpiSnapshot, SegmentStatus
from segments.selectors.migration import segments_migration
from segments.services.kpi_snapshots import MEASUREMENT_NEEDS, measurement_supported, shop_today
from segments.services.lift import LiftError, default_period, segment_lift
from segments.services.monthly_review import monthly_review, review_markdown
from segments.views.embedded import app_context, embedded_page
from segments.views.measurement_api import KPI_FIELDS, csv_response, kpi_row

CHART_W, CHART_H, PAD = 640, 180, 28
PALETTE = ("#2c6ecb", "#d82c0d", "#008060", "#b98900", "#8a2be2", "#00a0ac", "#c05717", "#6d7175")


def needs_postgresql(view):
    """On SQLite the pages say what measurement needs instead of failing."""
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not measurement_supported():
            return render(request, "segments/measurement/unavailable.html",
                          _context(request, reason=MEASUREMENT_NEEDS), status=501)
        return view(request, *args, **kwargs)
    return wrapper


def _rate(value, currency: str) -> str:
    """A rate as a percentage (differences in percentage points read the same way)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def _money(value, currency: str) -> str:
    return "—" if value is None else f"{value:,.2f} {currency}"


def _date(raw: str | None, default: dt.date) -> tuple[dt.date, str | None]:
    if not raw:
        return default, None
    try:
        return dt.date.fromisoformat(raw), None
    except ValueError:
        return default, f"“{raw[:20]}” is not a date (use 2026-10-31); showing the default period."


def _context(request: HttpRequest, **extra) -> dict:
    token = request.GET.get("id_token", "")
    auth = urlencode({"id_token": token, "shop": request.shop.domain})
    return {**app_context(request), "id_token": token, "auth_qs": auth, **extra}


def _chart(series: dict[str, list[tuple[dt.date, float]]]) -> dict:
    """Polylines in a CHART_W x CHART_H box for {label: [(day, value)]}, with the axis range."""
    days = sorted({d for points in series.values() for d, _ in points})
    values = [v for points in series.values() for _, v in points]
    if not days or not values:
        return {"lines": [], "empty": True}
    low, high = min(0.0, min(values)), max(values) or 1.0
    span_days = max((days[-1] - days[0]).days, 1)
    lines = []
    for i, (label, points) in enumerate(series.items()):
        coords = " ".join(
            f"{PAD + (d - days[0]).days / span_days * (CHART_W - 2 * PAD):.1f},"
            f"{CHART_H - PAD - (v - low) / ((high - low) or 1) * (CHART_H - 2 * PAD):.1f}" for d, v in points)
        lines.append({"label": label, "points": coords, "color": PALETTE[i % len(PALETTE)]})
    return {"lines": lines, "empty": False, "first": days[0], "last": days[-1], "high": high, "low": low,
            "w": CHART_W, "h": CHART_H, "pad": PAD, "bottom": CHART_H - PAD, "right": CHART_W - PAD}


@embedded_page
@needs_postgresql
def measurement(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    segments = list(Segment.objects.filter(shop=shop).exclude(status=SegmentStatus.ARCHIVED).order_by("pk")[:20])
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    end, error = _date(request.GET.get("end"), yesterday)
    start, error2 = _date(request.GET.get("start"), end - dt.timedelta(days=89))
    error = error or error2
    if start > end or (end - start).days > 365:
        error, start, end = "The period must run forwards and last at most a year; showing the last 90 days.", \
            yesterday - dt.timedelta(days=89), yesterday
    snaps = list(SegmentKpiSnapshot.objects.filter(shop=shop, segment__in=segments, day__gte=start, day__lte=end)
                 .order_by("segment_id", "day"))
    rows = [kpi_row(s) for s in snaps]
    if request.GET.get("export") == "csv":
        return csv_response(rows, ("segment", "day") + KPI_FIELDS, f"kpis-{start}-{end}.csv")
    names = {s.pk: s.name for s in segments}
    by_segment: dict[int, list[dict]] = {}
    for row in rows:
        by_segment.setdefault(row["segment"], []).append(row)
    charts = []
    for key, title in (("members", "Members"), ("revenue", "Revenue"), ("conversion", "Conversion (daily buyers / members)"),
                       ("avg_clv", "Average CLV (observed)")):
        series = {names[pk]: [(dt.date.fromisoformat(r["day"]), r[key]) for r in points if r[key] is not None]
                  for pk, points in by_segment.items()}
        charts.append({"key": key, "title": title, **_chart(series)})
    latest = [{"segment": s, "row": by_segment[s.pk][-1] if by_segment.get(s.pk) else None,
               "backfilled_days": sum(1 for r in by_segment.get(s.pk, []) if r["backfilled"])} for s in segments]
    return render(request, "segments/measurement/kpis.html",
                  _context(request, charts=charts, latest=latest, start=start, end=end, error=error,
                           csv_qs=urlencode({"start": start, "end": end, "export": "csv"})))


@embedded_page
@needs_postgresql
def segment_lift_page(request: HttpRequest, pk: int) -> HttpResponse:
    segment = Segment.objects.filter(shop=request.shop, pk=pk).select_related("shop").first()
    if segment is None:
        raise Http404("No such segment")
    default_start, default_end = default_period(segment)
    start, error = _date(request.GET.get("start"), default_start)
    end, error2 = _date(request.GET.get("end"), default_end)
    cuped = request.GET.get("cuped") == "1"
    error = error or error2
    lift, status = None, 200
    try:
        lift = segment_lift(segment=segment, start=start, end=end, cuped=cuped)
    except LiftError as exc:
        error, status = str(exc), 400
    rows = []
    if lift is not None:
        for key, label, money in (("conversion", "Conversion rate", False),
                                  ("revenue_per_member", "Revenue per member", True), ("aov", "Average order value", True)):
            c = getattr(lift, key)
            shown = _money if money else _rate
            rows.append({"label": label, "money": money, "c": c, "mde": lift.mde.get(key),
                         "shown": {name: shown(getattr(c, name), segment.shop.currency)
                                   for name in ("treatment", "control", "diff", "ci_low", "ci_high")}
                         | {"mde": shown(lift.mde.get(key), segment.shop.currency)}})
    return render(request, "segments/measurement/lift.html",
                  _context(request, segment=segment, lift=lift, rows=rows, start=start, end=end, cuped=cuped,
                           error=error), status=status)


@embedded_page
@needs_postgresql
def migration(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    groups = list(ExclusiveGroup.objects.filter(shop=shop).order_by("pk"))
    group = None
    raw_group = request.GET.get("group", "")
    if re.fullmatch(r"\d{1,19}", raw_group):
        group = next((g for g in groups if g.pk == int(raw_group)), None)
        if group is None:
            raise Http404("No such group")
    elif groups and not raw_group:
        group = groups[0]
    segments = (list(group.segments.select_related("shop")) if group else
                list(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE).select_related("shop")[:20]))
    yesterday = shop_today(shop) - dt.timedelta(days=1)
    end, error = _date(request.GET.get("end"), yesterday)
    start, error2 = _date(request.GET.get("start"), end - dt.timedelta(days=30))
    error = error or error2
    if start > end:
        error, start = "The first date must come before the second; showing the last 30 days.", end - dt.timedelta(days=30)
    result = segments_migration(segments=segments, start=start, end=end)
    data = result.to_dict()
    if request.GET.get("export") == "csv":
        return csv_response(data["cells"], ("from", "from_name", "to", "to_name", "customers", "share"),
                            f"migration-{start}-{end}.csv")
    keys = result.keys()
    names = {s["id"]: s["name"] for s in result.segments} | {"none": "None"}
    matrix = [{"name": names[a], "total": result.row_total(a),
               "cells": [{"count": result.counts.get((a, b), 0), "share": result.share(a, b),
                          "alpha": round(0.08 + 0.85 * (result.share(a, b) or 0), 2), "stay": a == b}
                         for b in keys]} for a in keys]
    return render(request, "segments/measurement/migration.html",
                  _context(request, groups=groups, group=group, columns=[names[k] for k in keys], matrix=matrix,
                           upgrades=result.upgrades, start=start, end=end, error=error,
                           csv_qs=urlencode({"start": start, "end": end, "export": "csv",
                                             **({"group": group.pk} if group else {})})))


@embedded_page
@needs_postgresql
def review(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    today = shop_today(shop)
    default = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    month = request.GET.get("month") or default
    error = None
    if not re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", month):
        error, month = f"“{month[:20]}” is not a month (use 2026-10); showing {default}.", default
    result = monthly_review(shop=shop, month=month)
    export = request.GET.get("export")
    if export == "md":
        response = HttpResponse(review_markdown(result), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="review-{month}.md"'
        return response
    if export == "csv":
        rows = [{"segment": r["segment"], "name": r["name"], **r["kpis"],
                 **{f"{k}_change": v for k, v in r["change"].items()}} for r in result.rows]
        fields = ("segment", "name", "members", "revenue", "orders", "aov", "revenue_per_member", "revenue_share",
                  "avg_clv", "members_change", "revenue_change", "orders_change", "aov_change")
        return csv_response(rows, fields, f"review-{month}.csv")
    return render(request, "segments/measurement/review.html",
                  _context(request, review=result, month=month, error=error,
                           md_qs=urlencode({"month": month, "export": "md"}),
                           csv_qs=urlencode({"month": month, "export": "csv"})))
