"""The JSON API (Django REST framework), authenticated by session token and scoped to its shop."""
from django.urls import path

from segments.api import ShopDetailView
from segments.views import compliance, segments_api, sync_api

urlpatterns = [
    path("api/shop", ShopDetailView.as_view(), name="api-shop"),
    path("api/compliance", compliance.ComplianceListView.as_view(), name="api-compliance"),
    path("api/metrics", segments_api.MetricsView.as_view(), name="api-metrics"),
    path("api/templates", segments_api.TemplatesView.as_view(), name="api-templates"),
    path("api/segments", segments_api.SegmentListView.as_view(), name="api-segments"),
    path("api/segments/dry-run", segments_api.SegmentDryRunView.as_view(), name="api-segment-dry-run"),
    path("api/segments/<int:pk>", segments_api.SegmentDetailView.as_view(), name="api-segment"),
    path("api/segments/<int:pk>/versions", segments_api.SegmentVersionsView.as_view(), name="api-segment-versions"),
    path("api/segments/<int:pk>/history", segments_api.SegmentHistoryView.as_view(), name="api-segment-history"),
    path("api/segments/<int:pk>/members", segments_api.SegmentMembersView.as_view(), name="api-segment-members"),
    path("api/segments/<int:pk>/why/<int:customer_pk>", segments_api.SegmentWhyView.as_view(),
         name="api-segment-why"),
    path("api/groups", segments_api.GroupListView.as_view(), name="api-groups"),
    path("api/segments/<int:pk>/snippet", sync_api.SegmentSnippetView.as_view(), name="api-segment-snippet"),
    path("api/sync", sync_api.SyncStatusView.as_view(), name="api-sync"),
    path("api/sync/audit", sync_api.SyncAuditView.as_view(), name="api-sync-audit"),
]
