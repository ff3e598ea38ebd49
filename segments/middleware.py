"""Content-Security-Policy frame-ancestors, built per shop: only that shop's admin may frame us."""
from __future__ import annotations

from segments.services.shopify_api import admin_origin

SHOPIFY_ADMIN = "https://admin.shopify.com"


class FrameAncestorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" in response:
            return response
        shop = getattr(request, "csp_shop", None)
        ancestors = f"{admin_origin(shop)} {SHOPIFY_ADMIN}" if shop else "'none'"
        response["Content-Security-Policy"] = f"frame-ancestors {ancestors};"
        return response
