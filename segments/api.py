"""The JSON API's base: session-token authentication, shop scoping, consistent errors."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from segments import schema
from segments.auth import SessionTokenAuthentication


class HasShop(permissions.BasePermission):
    message = "A valid session token is required."

    def has_permission(self, request, view) -> bool:
        return getattr(request._request, "shop", None) is not None


class ShopAPIView(APIView):
    """Every API view: the authenticated shop is `self.shop`, and every query goes through it."""

    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [HasShop]
    # Bodies are JSON only (views read them through SegmentsAPIView.body); this is also what tells
    # the schema so, instead of DRF's default form and multipart bodies that nothing here accepts.
    parser_classes = [JSONParser]

    @property
    def shop(self):
        return self.request._request.shop


def api_exception_handler(exc, context):
    """`{"error": {"code", "message", ...}}` for every failure; 401s ask App Bridge to retry."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    message = detail.get("detail") if isinstance(detail, dict) and "detail" in detail else detail
    code = getattr(exc, "default_code", "error")
    response.data = {"error": {"code": code, "message": str(message) if not isinstance(message, (dict, list))
                               else "Invalid request", **({"fields": message} if isinstance(message, (dict, list))
                                                          else {})}}
    if response.status_code in (401, 403) and code in ("not_authenticated", "authentication_failed"):
        response.status_code = 401
        response["X-Shopify-Retry-Invalid-Session-Request"] = "1"
    return response


class NoSuchRouteView(ShopAPIView):
    """Any /api/ path no route matches (an id that is not a number, a trailing slash, a typo): the
    API's own 404 body instead of Django's HTML page, after the token is checked like on every call."""

    schema = None   # not an operation of the API

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound("No such API route.")


class ShopDetailView(ShopAPIView):
    """GET /api/shop: the installed shop the session token belongs to."""

    @extend_schema(operation_id="shop_retrieve", responses=schema.responses(schema.ShopSerializer, lookup=False),
                   summary="The shop")
    def get(self, request):
        shop = self.shop
        return Response({
            "domain": shop.domain, "name": shop.name, "currency": shop.currency, "timezone": shop.iana_timezone,
            "plan": shop.plan_name, "status": shop.status, "status_reason": shop.status_reason,
            "scopes": sorted(shop.granted_scopes), "installed_at": shop.installed_at,
        })
