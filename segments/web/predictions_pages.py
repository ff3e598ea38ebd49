"""The predictions page and its JSON: the shop's fitted models, how good they were on the 90 days they
did not see (predicted against actual, overall and by repeat purchases), and the shop's buyers by
their chance of still being active."""
from __future__ import annotations

import datetime as dt

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as s
from rest_framework.response import Response

from segments.predictions.selectors import predictions_summary
from segments.web import measurement_format, schema
from segments.web.api import SegmentsAPIView
from segments.web.embedded import embedded_page
from segments.web.measurement_pages import _context
from segments.web.pages.bar_chart import bar_chart


def _quality_chart(quality: dict):
    buckets = quality["by_repeat"]
    return bar_chart(
        title="Orders per customer in the last 90 days, predicted and actual",
        y_label="Purchase days per customer", x_label="Repeat purchases before those 90 days",
        categories=[b["label"] for b in buckets],
        series=[("Predicted", [b["predicted"] for b in buckets]), ("Actual", [b["actual"] for b in buckets])],
        fmt=lambda v, step: f"{v:.2f}" if step == 0 or step < 0.1 else f"{v:.1f}")


def _cells(summary: dict, currency: str) -> dict:
    fmt = measurement_format
    quality = summary["quality"]
    cells = {"fitted_at": dt.datetime.fromisoformat(summary["fitted_at"]), "bands": [{**b, "customers": fmt.count(b["customers"]),
                        "value": fmt.money(b["predicted_value_365d"], currency, decimals=0),
                        "orders": f"{b['orders_90d']:,.0f}"} for b in summary["bands"]]}
    if quality.get("enough"):
        cells["quality"] = {"customers": fmt.count(quality["customers"]), "predicted": f"{quality['predicted']:,.0f}",
                            "actual": fmt.count(quality["actual"]), "error": fmt.change(quality["error"]),
                            "mae": f"{quality['mae']:.2f}"}
        cells["chart"] = _quality_chart(quality)
    return cells


@embedded_page
def predictions(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    summary = predictions_summary(shop=shop)
    context = _context(request, summary=summary, **(_cells(summary, shop.currency) if summary["fitted"] else {}))
    return render(request, "segments/measurement/predictions.html", context)


class PredictionsSerializer(s.Serializer):
    fitted = s.BooleanField(help_text="False until the shop has enough buyers (50) and its first nightly fit.")
    fitted_at = s.DateTimeField(required=False)
    customers = s.IntegerField(required=False)
    seconds = s.FloatField(required=False)
    purchases = s.DictField(child=s.FloatField(), required=False, help_text="BG/NBD r, alpha, a, b (days).")
    spend = s.DictField(child=s.FloatField(), required=False, allow_null=True, help_text="Gamma-Gamma p, q, gamma.")
    quality = s.DictField(required=False)
    bands = s.ListField(child=s.DictField(), required=False)


class PredictionsView(SegmentsAPIView):
    """GET /api/measurement/predictions: the shop's models and their quality."""

    @extend_schema(operation_id="predictions_retrieve", responses=schema.responses(PredictionsSerializer, lookup=False),
                   summary="The shop's prediction models and how good they are")
    def get(self, request):
        return Response(predictions_summary(shop=self.shop))
