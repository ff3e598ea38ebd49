"""Measurement: KPI snapshots, holdout lift, migration between segments, the monthly review
(pages and their JSON API)."""

urlpatterns: list = []
