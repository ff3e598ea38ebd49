"""Top-level URL routes."""
from django.http import JsonResponse
from django.urls import include, path


def healthz(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("webhooks.urls")),
    path("", include("segments.urls")),
]
