"""The measurement JSON API: KPI series per segment and side by side (JSON or CSV), holdout lift,
the migration matrix, and the monthly review (JSON, CSV or Markdown).

Thin views over the measurement services and selectors; every segment and group is looked up
through `self.shop` (another shop's is a 404) and bad parameters are a 400 in the API's shape.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from segments.engine.rules import Problem
from segments.measurement.kpis import segments_kpi_rows
from segments.measurement.lift import DEFAULT_TARGET_LIFT, LiftError, default_period, segment_lift
from segments.measurement.migration import migration_default_start, segments_migration
from segments.measurement.periods import DATE, KPI_DAYS, MAX_DAYS, PeriodError, days_before, period_read
from segments.measurement.review import monthly_review, review_markdown
from segments.membership.models import ExclusiveGroup, Segment
from segments.shops.calendar import shop_today
from segments.web import schema
from segments.web.api import Refused, SegmentsAPIView, invalid_param, not_found

MAX_COMPARED = 20
KPI_FIELDS = ("members", "holdout_members", "entries", "exits", "orders", "buyers", "revenue", "revenue_share",
              "aov", "conversion", "repeat_rate", "avg_clv", "predicted_clv", "gross_profit", "profit_per_member",
              "uncosted_lines", "backfilled")


# What the parameters look like, stated in the schema and matched by the views (re.fullmatch).
MONTH = r"20[0-9]{2}-(0[1-9]|1[0-2])"
SEGMENT_IDS = r"[0-9]{1,19}(,[0-9]{1,19}){0,%d}" % (MAX_COMPARED - 1)
TARGET = r"[0-9]{1,3}(\.[0-9]{1,6})?|\.[0-9]{1,6}"
CUPED = ("0", "1")                                   # off, on
SERIES_EXPORTS = ("json", "csv")
REVIEW_EXPORTS = ("json", "csv", "md")
DOWNLOADS = {"csv": "text/csv", "md": "text/markdown"}


def _doc(summary: str, description: str, params: list, *, lookup: bool, exports: tuple[str, ...] = SERIES_EXPORTS):
    """The OpenAPI description of a measurement GET: a JSON object or, when `exports` offers more than
    JSON, the download the `export` parameter asks for."""
    if len(exports) > 1:
        params = [*params, schema.query("export", "json (default), or a download: " + ", ".join(exports[1:]) + ".",
                                        str, enum=list(exports))]
    return extend_schema(summary=summary, parameters=params,
                         responses=schema.downloads(OpenApiResponse(OpenApiTypes.OBJECT, description=description),
                                                    [DOWNLOADS[e] for e in exports[1:]], lookup=lookup))


_PERIOD = [schema.query("start", "First shop-local day.", str, format="date", pattern=schema.pattern(DATE)),
           schema.query("end", "Last shop-local day.", str, format="date", pattern=schema.pattern(DATE))]
_SEGMENTS = schema.query("segments", f"Segment ids separated by commas (default: every segment, up to "
                                     f"{MAX_COMPARED}).", str, pattern=schema.pattern(SEGMENT_IDS))


def csv_response(rows: list[dict], fields: tuple[str, ...], filename: str) -> HttpResponse:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class MeasurementAPIView(SegmentsAPIView):
    def query_match(self, name: str, regex: str, default: str, message: str) -> str:
        """A text parameter that must match `regex` (stated in the schema as schema.pattern(regex))."""
        raw = self.request.query_params.get(name, default)
        if not re.fullmatch(regex, raw):
            raise invalid_param(name, message)
        return raw

    def period(self, *, default_end: dt.date | None = None, default_start=days_before(KPI_DAYS),
               max_days: int | None = MAX_DAYS) -> tuple[dt.date, dt.date]:
        """The request's period (segments.measurement.periods, as the pages read it); a 400 naming the
        parameter when it cannot be used."""
        if default_end is None:
            default_end = shop_today(self.shop) - dt.timedelta(days=1)
        try:
            return period_read(start=self.request.query_params.get("start"), end=self.request.query_params.get("end"),
                               default_end=default_end, default_start=default_start, max_days=max_days)
        except PeriodError as exc:
            raise invalid_param(exc.name, exc.message) from None

    def segment_ids(self) -> list[Segment]:
        if "segments" not in self.request.query_params:
            return list(Segment.objects.filter(shop=self.shop).exclude(status="archived").order_by("pk")[:MAX_COMPARED])
        raw = self.query_match("segments", SEGMENT_IDS, "", f"must be up to {MAX_COMPARED} segment ids separated "
                                                            f"by commas")
        ids = [int(x) for x in raw.split(",")]
        found = {s.pk: s for s in Segment.objects.filter(shop=self.shop, pk__in=ids).select_related("shop")}
        if len(found) != len(set(ids)):
            raise not_found("segment")
        return [found[i] for i in dict.fromkeys(ids)]

    def wants(self, choices: tuple[str, ...] = SERIES_EXPORTS) -> str:
        # `export`, not `format`: DRF reserves `format` for choosing a renderer.
        fmt = self.request.query_params.get("export", "json")
        if fmt not in choices:
            raise invalid_param("export", "must be " + " or ".join(choices))
        return fmt


class KpiSeriesView(MeasurementAPIView):
    """GET /api/measurement/kpis?segments=1,2&start=&end=&export=csv: daily KPIs, segments side by side."""

    @_doc("Daily KPIs of segments side by side", "The series, one row per segment and day.",
          [_SEGMENTS, *_PERIOD], lookup=True)
    def get(self, request):
        fmt = self.wants()
        segments = self.segment_ids()
        start, end = self.period()
        rows = segments_kpi_rows(shop=self.shop, segments=segments, start=start, end=end)
        if fmt == "csv":
            return csv_response(rows, ("segment", "day") + KPI_FIELDS, f"kpis-{start}-{end}.csv")
        return Response({"start": start.isoformat(), "end": end.isoformat(),
                         "segments": [{"id": s.pk, "name": s.name} for s in segments], "series": rows})


class SegmentKpisView(MeasurementAPIView):
    """GET /api/segments/<pk>/kpis: one segment's daily KPIs (JSON or CSV)."""

    @_doc("One segment's daily KPIs", "The segment's series.", _PERIOD, lookup=True)
    def get(self, request, pk: int):
        fmt = self.wants()
        segment = self.segment(pk)
        start, end = self.period()
        rows = segments_kpi_rows(shop=self.shop, segments=[segment], start=start, end=end)
        if fmt == "csv":
            return csv_response(rows, ("segment", "day") + KPI_FIELDS, f"segment-{segment.pk}-kpis.csv")
        return Response({"segment": segment.pk, "name": segment.name, "series": rows})


class SegmentLiftView(MeasurementAPIView):
    """GET /api/segments/<pk>/lift?start=&end=&cuped=1&target=0.1: treatment vs holdout."""

    @_doc("Holdout lift of a segment over a period", "Conversion, revenue per member and AOV, treated against "
          "held out: differences, 95% intervals, p-values, sample ratio, MDE and warnings.",
          [*_PERIOD,
           schema.query("cuped", "1: adjust revenue per member with pre-period spend.", str, enum=list(CUPED)),
           schema.query("target", "The relative change that matters (0.1 = 10%), for the MDE warning.", str,
                        pattern=schema.pattern(TARGET))],
          lookup=True, exports=("json",))
    def get(self, request, pk: int):
        segment = self.segment(pk)
        default_start, default_end = default_period(segment)
        start, end = self.period(default_end=default_end, default_start=lambda end: default_start, max_days=None)
        cuped = self.request.query_params.get("cuped", "0")
        if cuped not in CUPED:
            raise invalid_param("cuped", "must be 0 or 1")
        target = float(self.query_match("target", TARGET, str(DEFAULT_TARGET_LIFT),
                                        "must be a relative change such as 0.1 for 10%"))
        try:
            lift = segment_lift(segment=segment, start=start, end=end, cuped=cuped == "1", target_lift=target)
        except LiftError as exc:
            raise Refused(400, "invalid_params", str(exc), [Problem("start", str(exc))]) from None
        return Response(lift.to_dict())


class MigrationView(MeasurementAPIView):
    """GET /api/measurement/migration?group=<id> | segments=1,2&start=&end=: the move matrix."""

    @_doc("Moves between segments from one day to another", "Counts and shares per (from, to), and upgrade rates "
          "treated against held out.",
          [schema.query("group", "An exclusive group's id (instead of segments).", minimum=1), _SEGMENTS, *_PERIOD],
          lookup=True)
    def get(self, request):
        fmt = self.wants()
        group_id = self.query_int("group", low=1)
        if group_id is not None and "segments" in self.request.query_params:
            raise invalid_param("segments", "cannot be given with group: the matrix is of a group or of segments")
        if group_id is not None:
            group = ExclusiveGroup.objects.filter(shop=self.shop, pk=group_id).first()
            if group is None:
                raise not_found("exclusive group")
            segments = list(group.segments.select_related("shop"))
        else:
            segments = self.segment_ids()
        start, end = self.period(default_start=lambda end: migration_default_start(segments=segments, end=end))
        migration = segments_migration(segments=segments, start=start, end=end)
        data = migration.to_dict()
        if fmt == "csv":
            return csv_response(data["cells"], ("from", "from_name", "to", "to_name", "customers", "share"),
                                f"migration-{start}-{end}.csv")
        return Response(data)


class ReviewView(MeasurementAPIView):
    """GET /api/measurement/review?month=2026-10&export=json|csv|md: the monthly review."""

    @_doc("The monthly review", "KPIs against last month, movers, significant playbooks, merge-or-redefine.",
          [schema.query("month", "YYYY-MM (default: last month).", str, pattern=schema.pattern(MONTH))],
          lookup=False, exports=REVIEW_EXPORTS)
    def get(self, request):
        fmt = self.wants(REVIEW_EXPORTS)
        today = shop_today(self.shop)
        default = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        month = self.query_match("month", MONTH, default, "must be a month from 2000-01 to 2099-12, like 2026-10")
        review = monthly_review(shop=self.shop, month=month)
        if fmt == "md":
            response = HttpResponse(review_markdown(review), content_type="text/markdown; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="review-{month}.md"'
            return response
        if fmt == "csv":
            rows = [{"segment": r["segment"], "name": r["name"], **{k: r["kpis"].get(k) for k in _REVIEW_KPIS},
                     **{f"{k}_change": r["change"].get(k) for k in ("members", "revenue", "orders", "aov")}}
                    for r in review.rows]
            fields = ("segment", "name", *_REVIEW_KPIS, "members_change", "revenue_change", "orders_change",
                      "aov_change")
            return csv_response(rows, fields, f"review-{month}.csv")
        return Response(review.to_dict())


_REVIEW_KPIS = ("members", "revenue", "orders", "aov", "revenue_per_member", "revenue_share", "avg_clv")
