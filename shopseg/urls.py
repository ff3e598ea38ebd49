"""Top-level URL routes."""
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path


def healthz(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("ops/admin/", admin.site.urls),        # the operator's read-only view (staff login)
    path("", include("webhooks.urls")),
    path("", include("segments.web.urls")),
]
