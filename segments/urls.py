"""segments' routes: the app URL, OAuth, embedded pages and the JSON API."""
from django.urls import path

from segments.api import ShopDetailView
from segments.views import embedded, install

app_name = "segments"

urlpatterns = [
    path("", install.app_entry, name="entry"),
    path("auth/callback", install.oauth_callback, name="oauth-callback"),
    path("admin/", embedded.home, name="home"),
    path("api/shop", ShopDetailView.as_view(), name="api-shop"),
]
