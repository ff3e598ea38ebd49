"""Measurement: KPI snapshots, holdout lift, migration between segments, the monthly review
(pages and their JSON API)."""
from django.urls import path

from segments.web import measurement_api, measurement_pages, predictions_pages

urlpatterns = [
    path("admin/measurement", measurement_pages.measurement, name="measurement"),
    path("admin/segments/<int:pk>/lift", measurement_pages.segment_lift_page, name="segment-lift"),
    path("admin/migration", measurement_pages.migration, name="migration"),
    path("admin/review", measurement_pages.review, name="review"),
    path("admin/predictions", predictions_pages.predictions, name="predictions"),
    path("api/measurement/predictions", predictions_pages.PredictionsView.as_view(), name="api-measurement-predictions"),
    path("api/measurement/kpis", measurement_api.KpiSeriesView.as_view(), name="api-measurement-kpis"),
    path("api/segments/<int:pk>/kpis", measurement_api.SegmentKpisView.as_view(), name="api-segment-kpis"),
    path("api/segments/<int:pk>/lift", measurement_api.SegmentLiftView.as_view(), name="api-segment-lift"),
    path("api/measurement/migration", measurement_api.MigrationView.as_view(), name="api-measurement-migration"),
    path("api/measurement/review", measurement_api.ReviewView.as_view(), name="api-measurement-review"),
]
