"""segments' routes: the app URL and OAuth here; the embedded pages, the JSON API and the
measurement pages and API each in their own module."""
from django.urls import path, re_path

from segments.web import install, storefront_ingest, storefront_proxy, urls_api, urls_measurement, urls_pages
from segments.web.api import NoSuchRouteView

app_name = "segments"

urlpatterns = [
    path("", install.app_entry, name="entry"),
    path("auth/callback", install.oauth_callback, name="oauth-callback"),
    path("storefront/events", storefront_ingest.storefront_events, name="storefront-events"),
    path("proxy/segments", storefront_proxy.proxy_segments, name="proxy-segments"),   # /apps/shopseg/segments
    *urls_pages.urlpatterns,
    *urls_api.urlpatterns,
    *urls_measurement.urlpatterns,
    re_path(r"^api/", NoSuchRouteView.as_view(), name="api-not-found"),   # last: what no API route matched
]
