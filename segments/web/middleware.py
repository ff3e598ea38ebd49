"""Headers of every response: a Content-Security-Policy whose frame-ancestors name only the admin of
the shop the page is for, and no caching of the embedded pages (they hold a shop's customers)."""
from __future__ import annotations

from django.conf import settings

from segments.shops.admin_api import admin_origin, any_admin_origin

SHOPIFY_ADMIN = "https://admin.shopify.com"


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else ""


class FrameAncestorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" in response:
            return response
        shop = getattr(request, "csp_shop", None)
        if shop:
            ancestors = f"{admin_origin(shop)} {SHOPIFY_ADMIN}"
        elif getattr(request, "csp_any_shop", False):   # the bounce: no shop verified yet
            ancestors = f"{any_admin_origin()} {SHOPIFY_ADMIN}"
        else:
            ancestors = "'none'"
        if shop or getattr(request, "csp_any_shop", False):
            response["Cache-Control"] = "no-store"
        # Scripts from us and App Bridge only (no inline script anywhere); styles may be inline
        # attributes (charts); requests to us and, for App Bridge's own calls, its origin.
        bridge = _origin(settings.SHOPIFY_APP_BRIDGE_URL)
        response["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' {bridge}; connect-src 'self' {bridge}; "
            f"img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
            f"form-action 'self'; frame-ancestors {ancestors};")
        return response
