"""The embedded admin's pages (Django templates), authenticated by App Bridge session tokens."""
from django.urls import path

from segments.web import builder, compliance, embedded
from segments.web.pages import playbook_pages, segment_pages, settings_page, sync_page, theme_page

urlpatterns = [
    path("admin/", embedded.home, name="home"),
    path("admin/_live/home", embedded.home_live, name="home-live"),
    path("admin/segments/new", builder.segment_new, name="segment-new"),
    path("admin/segments/<int:pk>/edit", builder.segment_edit, name="segment-edit"),
    path("admin/segments/<int:pk>", segment_pages.segment_detail, name="segment-detail"),
    path("admin/segments/<int:pk>/playbook", playbook_pages.playbook, name="playbook"),
    path("admin/playbooks", playbook_pages.playbooks, name="playbooks"),
    path("admin/theme", theme_page.theme, name="theme"),
    path("admin/settings", settings_page.settings_page, name="settings"),
    path("admin/sync", sync_page.sync, name="sync"),
    path("admin/compliance/", compliance.compliance_list, name="compliance"),
    path("admin/compliance/<int:pk>/export.json", compliance.compliance_export, name="compliance-export"),
]
