"""Measurement pages of the embedded admin: KPIs over time (segments side by side), a segment's
holdout lift, the migration heatmap and the monthly review. Charts are inline SVG drawn by
views.pages.charts, so the pages need no chart library; numbers are written by
views.measurement_format (money in the shop's currency, rates in percent). Each page also answers `?export=csv` (and the review `md`) under
the same session-token authentication as the page itself.
"""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from segments.experiences.models import PlaybookKpi
from segments.measurement.kpis import MAX_SERIES, kpi_chart_segments, segments_kpi_rows
from segments.measurement.lift import LiftError, default_period, segment_lift
from segments.measurement.migration import migration_default_start, segments_migration
from segments.measurement.profit import segments_profit, store_profit
from segments.measurement.periods import KPI_DAYS, MAX_DAYS, PeriodError, days_before, period_read
from segments.measurement.review import month_bounds, monthly_review, previous_month, review_markdown
from segments.membership.models import ExclusiveGroup, Segment, SegmentStatus
from segments.shops.calendar import shop_today
from segments.web import measurement_format
from segments.web.embedded import app_context, embedded_page
from segments.web.measurement_api import KPI_FIELDS, MAX_COMPARED, csv_response
from segments.web.pages.charts import line_chart


def _period(request: HttpRequest, *, default_end: dt.date, default_start, max_days: int | None = MAX_DAYS):
    """(start, end, error): the request's period, or the default one and the words saying why not
    (segments.measurement.periods, as the API reads it)."""
    try:
        # A form's emptied date field asks for the default (the API, read by programs, says it is not a day).
        start, end = period_read(start=request.GET.get("start") or None, end=request.GET.get("end") or None,
                                 default_end=default_end, default_start=default_start, max_days=max_days)
        return start, end, None
    except PeriodError as exc:
        return default_start(default_end), default_end, f"The period's {exc}; showing the default period."


def _context(request: HttpRequest, **extra) -> dict:
    token = request.GET.get("id_token", "")
    auth = urlencode({"id_token": token, "shop": request.shop.domain})
    return {**app_context(request), "id_token": token, "auth_qs": auth, **extra}


# (key in the KPI rows, chart title, axis title, kind of number)
KPI_CHARTS = (("members", "Members", "Members at the end of the day", "count"),
              ("revenue", "Revenue", "Revenue per day ({currency})", "money"),
              ("conversion", "Conversion", "Buyers of the day ÷ members", "rate"),
              ("avg_clv", "Average CLV (observed)", "Lifetime spend per member ({currency})", "money"),
              ("profit_per_member", "Gross profit per member", "Gross profit per member per day ({currency})",
               "money"))


def _chosen_ids(request: HttpRequest) -> tuple[list[int] | None, str | None]:
    """`?segments=3&segments=7` (the page's checkboxes) or `?segments=3,7` (as in the API)."""
    raw = [part for value in request.GET.getlist("segments") for part in value.split(",") if part.strip()]
    if not raw:
        return None, None
    ids = [int(part) for part in raw if re.fullmatch(r"\s*\d{1,19}\s*", part)]
    return ids, (None if len(ids) == len(raw) else "Segments are chosen by id; ignored what was not one.")


def _formatter(kind: str, currency: str):
    """fmt(value, step) for a chart of this kind: ticks to the step's precision, values in full."""
    def write(value: float, step: float) -> str:
        if step:
            return measurement_format.tick(value, kind=kind, currency=currency, step=step)
        return {"money": lambda v: measurement_format.money(v, currency), "rate": measurement_format.rate,
                "count": measurement_format.count}[kind](value)
    return write


def kpi_charts(*, rows: list[dict], chosen: list[Segment], start: dt.date, end: dt.date, currency: str) -> list:
    """The KPI page's line charts: one line per chosen segment, in the order their colours follow."""
    by_segment: dict[int, list[dict]] = {}
    for row in rows:
        by_segment.setdefault(row["segment"], []).append(row)
    charts = []
    for key, title, y_label, kind in KPI_CHARTS:
        series = [(s.name, [(dt.date.fromisoformat(r["day"]), r[key]) for r in by_segment.get(s.pk, [])
                            if r[key] is not None]) for s in chosen]
        charts.append(line_chart(title=title, y_label=y_label.format(currency=currency), series=series,
                                 first=start, last=end, fmt=_formatter(kind, currency)))
    return charts


def _latest_cells(row: dict, currency: str) -> dict:
    money, rate = measurement_format.money, measurement_format.rate
    return {"day": dt.date.fromisoformat(row["day"]), "members": measurement_format.count(row["members"]),
            "holdout": measurement_format.count(row["holdout_members"]),
            "moves": f"+{row['entries']:,} / −{row['exits']:,}", "revenue": money(row["revenue"], currency),
            "share": rate(row["revenue_share"]), "orders": measurement_format.count(row["orders"]),
            "aov": money(row["aov"], currency), "conversion": rate(row["conversion"], decimals=2),
            "repeat": rate(row["repeat_rate"]), "avg_clv": money(row["avg_clv"], currency),
            "predicted_clv": money(row["predicted_clv"], currency)}


@embedded_page
def measurement(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    segments = list(Segment.objects.filter(shop=shop).exclude(status=SegmentStatus.ARCHIVED)
                    .order_by("pk")[:MAX_COMPARED])
    start, end, error = _period(request, default_end=shop_today(shop) - dt.timedelta(days=1),
                                default_start=days_before(KPI_DAYS))
    rows = segments_kpi_rows(shop=shop, segments=segments, start=start, end=end)
    if request.GET.get("export") == "csv":
        return csv_response(rows, ("segment", "day") + KPI_FIELDS, f"kpis-{start}-{end}.csv")
    ids, id_error = _chosen_ids(request)
    chosen, trimmed = kpi_chart_segments(shop=shop, segments=segments, chosen=ids, end=end)
    error = error or id_error
    currency = shop.currency
    charts = kpi_charts(rows=rows, chosen=chosen, start=start, end=end, currency=currency)
    colours = {s.pk: line.color for s, line in zip(chosen, charts[0].lines)}
    latest_by_segment = {row["segment"]: row for row in rows}         # rows run by day: the last one wins
    estimated = {}
    for row in rows:
        estimated[row["segment"]] = estimated.get(row["segment"], 0) + row["backfilled"]
    latest = [{"segment": s, "cells": _latest_cells(latest_by_segment[s.pk], currency) if s.pk in latest_by_segment
               else None, "backfilled_days": estimated.get(s.pk, 0), "color": colours.get(s.pk)} for s in segments]
    choices = [{"segment": s, "checked": s.pk in colours, "color": colours.get(s.pk)} for s in segments]
    return render(request, "segments/measurement/kpis.html",
                  _context(request, charts=charts, latest=latest, choices=choices, trimmed=trimmed,
                           profit=profit_cells(shop=shop, segments=segments, start=start, end=end),
                           max_series=MAX_SERIES, start=start, end=end, error=error,
                           csv_qs=urlencode({"start": start, "end": end, "export": "csv"})))


def profit_cells(*, shop, segments: list[Segment], start: dt.date, end: dt.date) -> dict:
    """Each segment's profit over the period, as the KPI page writes it (segments.measurement.profit)."""
    fmt, currency = measurement_format, shop.currency
    found = segments_profit(shop=shop, segments=segments, start=start, end=end)
    rows = [{"segment": s, **{key: fmt.money(found.get(s.pk, {}).get(key), currency)
                              for key in ("gross_profit", "profit_per_member", "profit_per_visitor")},
             "orders_per_visit": fmt.rate(found.get(s.pk, {}).get("orders_per_visit"))} for s in segments]
    store = store_profit(shop=shop, start=start, end=end)
    return {"rows": rows, "store": fmt.money(store["profit_per_customer"], currency),
            "uncosted_lines": store["uncosted_lines"], "measured": store["profit_per_customer"] is not None}


def lift_rows(lift, currency: str) -> list[dict]:
    """The lift table: rates in percent and their differences (and MDE) in points; money in the shop's
    currency, differences signed."""
    fmt = measurement_format
    rows = []
    for key, label, is_money in (("conversion", "Conversion rate", False),
                                 ("revenue_per_member", "Revenue per member", True), ("aov", "Average order value", True),
                                 ("profit_per_member", "Gross profit per member", True),
                                 ("redemption", "Redeemed the playbook's codes", False)):
        c = getattr(lift, key)
        if c is None:     # no costs to measure profit with, or no offers
            continue
        if is_money:
            def level(v):
                return fmt.money(v, currency)

            def diff(v):
                return fmt.money(v, currency, signed=True)

            def size(v):
                return fmt.money(v, currency)
        else:
            level, diff = fmt.rate, fmt.points

            def size(v):
                return fmt.DASH if v is None else fmt.points(abs(v)).lstrip("+")
        rows.append({"key": key, "label": label, "c": c, "shown": {
            "treatment": level(c.treatment), "control": level(c.control), "diff": diff(c.diff),
            "ci_low": diff(c.ci_low), "ci_high": diff(c.ci_high), "mde": size(lift.mde.get(key))}})
    return rows


@embedded_page
def segment_lift_page(request: HttpRequest, pk: int) -> HttpResponse:
    segment = Segment.objects.filter(shop=request.shop, pk=pk).select_related("shop").first()
    if segment is None:
        raise Http404("No such segment")
    default_start, default_end = default_period(segment)
    start, end, error = _period(request, default_end=default_end, default_start=lambda end: default_start,
                                max_days=None)
    cuped = request.GET.get("cuped") == "1"
    lift, status = None, 200
    try:
        lift = segment_lift(segment=segment, start=start, end=end, cuped=cuped)
    except LiftError as exc:
        error, status = str(exc), 400
    rows = lift_rows(lift, segment.shop.currency) if lift is not None else []
    return render(request, "segments/measurement/lift.html",
                  _context(request, segment=segment, lift=lift, rows=rows, start=start, end=end, cuped=cuped,
                           error=error), status=status)


@embedded_page
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
                list(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE).select_related("shop")
                     .order_by("pk")[:MAX_COMPARED]))
    start, end, error = _period(request, default_end=shop_today(shop) - dt.timedelta(days=1),
                                default_start=lambda end: migration_default_start(segments=segments, end=end))
    result = segments_migration(segments=segments, start=start, end=end)
    data = result.to_dict()
    if request.GET.get("export") == "csv":
        return csv_response(data["cells"], ("from", "from_name", "to", "to_name", "customers", "share"),
                            f"migration-{start}-{end}.csv")
    keys = result.keys()
    names = {s["id"]: s["name"] for s in result.segments} | {"none": "None"}
    matrix = [{"name": names[a], "total": measurement_format.count(result.row_total(a)),
               "cells": [{"count": measurement_format.count(result.counts.get((a, b), 0)),
                          "share": measurement_format.rate(result.share(a, b), decimals=0)
                          if result.share(a, b) is not None else None,
                          "title": f"{names[a]} → {names[b]}: {result.counts.get((a, b), 0):,} customers",
                          "alpha": round(0.08 + 0.85 * (result.share(a, b) or 0), 2), "stay": a == b,
                          "zero": not result.counts.get((a, b))}
                         for b in keys]} for a in keys]
    return render(request, "segments/measurement/migration.html",
                  _context(request, groups=groups, group=group, columns=[names[k] for k in keys], matrix=matrix,
                           upgrades=[_upgrade_cells(u) for u in result.upgrades], moved=result.moved, has_counts=bool(result.counts),
                           empty_reason=result.empty_reason(), caveat=result.caveat(), start=start, end=end,
                           error=error, csv_qs=urlencode({"start": start, "end": end, "export": "csv",
                                                          **({"group": group.pk} if group else {})})))


def _upgrade_cells(upgrade: dict) -> dict:
    """An upgrade row's rates in percent and the difference, with its interval, in points."""
    rate = upgrade["upgrade_rate"]
    interval = (f"{measurement_format.points(rate['ci_low'])} to {measurement_format.points(rate['ci_high'])}"
                if rate.get("ci_low") is not None else None)
    return {**upgrade, "shown": {"treatment": measurement_format.rate(rate.get("treatment")),
                                 "control": measurement_format.rate(rate.get("control")),
                                 "diff": measurement_format.points(rate.get("diff")), "interval": interval,
                                 "p_value": "—" if rate.get("p_value") is None else f"{rate['p_value']:.3f}"}}


MONEY_KPIS = {"revenue_per_member", "aov"}     # a playbook's KPI measured in money; the others are rates


def review_cells(review, currency: str) -> dict:
    """The review's figures as the page writes them: money in the shop's currency, changes in percent,
    a playbook's lift in points (rates) or money."""
    fmt = measurement_format
    rows = [{"name": r["name"], "members": fmt.count(r["kpis"].get("members", 0)),
             "members_change": fmt.change(r["change"]["members"]),
             "revenue": fmt.money(r["kpis"].get("revenue", 0), currency),
             "revenue_change": fmt.change(r["change"]["revenue"]), "orders": fmt.count(r["kpis"].get("orders", 0)),
             "aov": fmt.money(r["kpis"].get("aov"), currency),
             "revenue_per_member": fmt.money(r["kpis"].get("revenue_per_member"), currency),
             "profit": fmt.money(r["profit"].get("gross_profit"), currency),
             "profit_per_member": fmt.money(r["profit"].get("profit_per_member"), currency),
             "profit_per_visitor": fmt.money(r["profit"].get("profit_per_visitor"), currency),
             "orders_per_visit": fmt.rate(r["profit"].get("orders_per_visit"))} for r in review.rows]
    movers = [{"name": m["name"], "kpi": m["kpi"], "change": fmt.change(m["change"])} for m in review.movers]
    lifts = []
    for x in review.lifts:
        if x["kpi"] in MONEY_KPIS:
            def write(v):
                return fmt.money(v, currency, signed=True)
        else:
            write = fmt.points
        lifts.append({"name": x["name"], "kpi": x["kpi"], "diff": write(x["diff"]),
                      "interval": f"{write(x['ci_low'])} to {write(x['ci_high'])}", "p_value": f"{x['p_value']:.3f}"})
    lags = [{"name": x["name"], "profit_per_member": fmt.money(x["profit_per_member"], currency),
             "store": fmt.money(x["store_profit_per_customer"], currency)} for x in review.profit_lags]
    return {"rows": rows, "movers": movers, "lifts": lifts, "profit_lags": lags,
            "store_profit_per_customer": fmt.money(review.store_profit.get("profit_per_customer"), currency),
            "uncosted_lines": review.store_profit.get("uncosted_lines", 0),
            "experiences": [_experience_cells(x, currency) for x in review.experiences]}


def _experience_cells(x: dict, currency: str) -> dict:
    fmt = measurement_format
    lift, used = x["lift"], x["redemption"]

    def write(v):
        return fmt.money(v, currency, signed=True) if x["kpi"] in MONEY_KPIS else fmt.points(v)
    return {"name": x["name"], "experience": x["experience"] or "Offer only", "codes": ", ".join(x["offer_codes"]),
            "kpi": PlaybookKpi(x["kpi"]).label,
            "lift": write(lift["diff"]) if lift["diff"] is not None else "—",
            "interval": f"{write(lift['ci_low'])} to {write(lift['ci_high'])}" if lift["ci_low"] is not None else "—",
            "significant": lift["p_value"] is not None and lift["p_value"] < 0.05,
            "redeemed": "—" if not used or used["treatment"] is None else fmt.rate(used["treatment"]),
            "redeemed_holdout": "—" if not used or used["control"] is None else fmt.rate(used["control"])}


@embedded_page
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
                  _context(request, review=result, month=month, error=error, **review_cells(result, shop.currency),
                           month_first=month_bounds(month)[0], previous_first=month_bounds(previous_month(month))[0],
                           md_qs=urlencode({"month": month, "export": "md"}),
                           csv_qs=urlencode({"month": month, "export": "csv"})))
