"""segments' routes: the app URL, OAuth, embedded pages and the JSON API."""
from django.urls import path

from segments.api import ShopDetailView
from segments.views import compliance, embedded, install

app_name = "segments"

urlpatterns = [
    path("", install.app_entry, name="entry"),
    path("auth/callback", install.oauth_callback, name="oauth-callback"),
    path("admin/", embedded.home, name="home"),
    path("admin/compliance/", compliance.compliance_list, name="compliance"),
    path("admin/compliance/<int:pk>/export.json", compliance.compliance_export, name="compliance-export"),
    path("api/shop", ShopDetailView.as_view(), name="api-shop"),
    path("api/compliance", compliance.ComplianceListView.as_view(), name="api-compliance"),
]
