"""The embedded admin's pages (Django templates), authenticated by App Bridge session tokens."""
from django.urls import path

from segments.views import compliance, embedded

urlpatterns = [
    path("admin/", embedded.home, name="home"),
    path("admin/compliance/", compliance.compliance_list, name="compliance"),
    path("admin/compliance/<int:pk>/export.json", compliance.compliance_export, name="compliance-export"),
]
