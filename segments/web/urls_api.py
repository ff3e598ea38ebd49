"""The JSON API (Django REST framework), authenticated by session token and scoped to its shop,
and its OpenAPI schema (public: it describes the API, never a shop's data)."""
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from segments.web import schema  # noqa: F401  (registers the session-token scheme and the schema annotations)
from segments.web import compliance, compliance_api, playbooks_api, segments_api, settings_api, sync_api
from segments.web.api import ShopDetailView

urlpatterns = [
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/shop", ShopDetailView.as_view(), name="api-shop"),
    path("api/settings", settings_api.SettingsView.as_view(), name="api-settings"),
    path("api/compliance", compliance.ComplianceListView.as_view(), name="api-compliance"),
    path("api/compliance/<int:pk>/export", compliance_api.ComplianceExportView.as_view(),
         name="api-compliance-export"),
    path("api/metrics", segments_api.MetricsView.as_view(), name="api-metrics"),
    path("api/templates", segments_api.TemplatesView.as_view(), name="api-templates"),
    path("api/segments", segments_api.SegmentListView.as_view(), name="api-segments"),
    path("api/segments/dry-run", segments_api.SegmentDryRunView.as_view(), name="api-segment-dry-run"),
    path("api/segments/<int:pk>", segments_api.SegmentDetailView.as_view(), name="api-segment"),
    path("api/segments/<int:pk>/dry-run", segments_api.SegmentEditDryRunView.as_view(),
         name="api-segment-edit-dry-run"),
    path("api/segments/<int:pk>/versions", segments_api.SegmentVersionsView.as_view(), name="api-segment-versions"),
    path("api/segments/<int:pk>/history", segments_api.SegmentHistoryView.as_view(), name="api-segment-history"),
    path("api/segments/<int:pk>/members", segments_api.SegmentMembersView.as_view(), name="api-segment-members"),
    path("api/segments/<int:pk>/why/<int:customer_pk>", segments_api.SegmentWhyView.as_view(),
         name="api-segment-why"),
    path("api/segments/<int:pk>/playbook", playbooks_api.SegmentPlaybookView.as_view(), name="api-segment-playbook"),
    path("api/segments/<int:pk>/playbook.md", playbooks_api.SegmentPlaybookMarkdownView.as_view(),
         name="api-segment-playbook-markdown"),
    path("api/playbooks", playbooks_api.PlaybookListView.as_view(), name="api-playbooks"),
    path("api/groups", segments_api.GroupListView.as_view(), name="api-groups"),
    path("api/segments/<int:pk>/snippet", sync_api.SegmentSnippetView.as_view(), name="api-segment-snippet"),
    path("api/sync", sync_api.SyncStatusView.as_view(), name="api-sync"),
    path("api/sync/audit", sync_api.SyncAuditView.as_view(), name="api-sync-audit"),
    path("api/sync/retry", sync_api.SyncRetryView.as_view(), name="api-sync-retry"),
]
