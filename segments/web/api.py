"""The JSON API's base: session-token authentication, shop scoping, reading bodies, and one error
body for every refusal (`Refused`, and DRF's own exceptions through `api_exception_handler`)."""
from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from segments.engine.rules import Problem, RuleError, SettingsError
from segments.membership.models import ExclusiveGroup, Segment
from segments.mirror.models import Customer
from segments.shops.auth import SessionTokenAuthentication
from segments.web import schema
from segments.web.bodies import Body, problems
from shopseg.errors import Refused
from shopseg.jsonbody import json_object

MAX_BODY_BYTES = 256 * 1024
DEFAULT_AUTHOR = "merchant"


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


# -- refusals -------------------------------------------------------------------------------------
def invalid_settings(problems: list[Problem]) -> Refused:
    return Refused(400, "invalid_settings", "The settings cannot be used: " + "; ".join(map(str, problems)),
                   problems)


def invalid_rules(error: RuleError, rename=None) -> Refused:
    problems = [Problem(rename(p.path) if rename else p.path, p.message) for p in error.problems]
    return Refused(400, "invalid_rules", "The rules cannot be used: " + "; ".join(map(str, problems)), problems)


def invalid_param(name: str, message: str) -> Refused:
    return Refused(400, "invalid_params", f"{name} {message}.", [Problem(name, message)])


def not_found(what: str) -> Refused:
    return Refused(404, "not_found", f"No such {what}.")


class SegmentsAPIView(ShopAPIView):
    """ShopAPIView plus the refusals above; RuleError and SettingsError from a service are 400s."""

    def handle_exception(self, exc):
        if isinstance(exc, RuleError):
            exc = invalid_rules(exc)
        elif isinstance(exc, SettingsError):
            exc = invalid_settings(list(exc.problems))
        if isinstance(exc, Refused):
            return Response(exc.body(), status=exc.status_code)
        return super().handle_exception(exc)

    @property
    def author(self) -> str:
        """Who is editing: the staff member's Shopify user id (the session token's `sub`)."""
        claims = self.request.auth
        user = getattr(claims, "user_id", None)
        return str(user).strip()[:255] if user not in (None, "") else DEFAULT_AUTHOR

    # -- reading the request ------------------------------------------------------------------
    def body(self, serializer: type[Body], *, optional: bool = False) -> dict:
        """The request body, checked by the endpoint's `serializer` (which also describes it in the
        schema): a JSON object of at most MAX_BODY_BYTES; its validated data. `optional`: no body at all
        reads as `{}` (whitespace is not JSON)."""
        request = self.request._request
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_BODY_BYTES:
            raise Refused(413, "payload_too_large", f"The body is larger than {MAX_BODY_BYTES // 1024} KB.")
        raw = request.body
        if len(raw) > MAX_BODY_BYTES:
            raise Refused(413, "payload_too_large", f"The body is larger than {MAX_BODY_BYTES // 1024} KB.")
        data = {} if optional and not raw else json_object(raw)
        problem = _shape_problem(data)
        if problem:
            raise Refused(400, "invalid_json", problem)
        checked = serializer(data=data, context={"view": self, "shop": self.shop})
        if not checked.is_valid():
            raise invalid_settings(problems(checked.errors))
        return checked.validated_data

    def query_int(self, name: str, default: int | None = None, *, low: int = 0,
                  high: int = schema.MAX_ID) -> int | None:
        """A whole-number parameter (stated by schema.query with the same bounds): `default` when left
        out; refused when given empty (`limit=`), as the schema does not allow that either."""
        raw = self.request.query_params.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,19}", raw) or not low <= int(raw) <= high:
            raise invalid_param(name, f"must be a whole number from {low} to {high}")
        return int(raw)

    def query_text(self, name: str, default: str = "", *, most: int) -> str:
        """A text parameter of at most `most` characters (as given, before any trimming) and without NUL,
        which PostgreSQL text cannot hold (schema.query states both)."""
        raw = self.request.query_params.get(name, default)
        if len(raw) > most:
            raise invalid_param(name, f"must be at most {most} characters")
        if "\x00" in raw:
            raise invalid_param(name, "must not contain NUL (%00)")
        return raw

    def limit(self) -> int:
        return self.query_int("limit", schema.DEFAULT_LIMIT, low=1, high=schema.MAX_LIMIT)

    # -- rows of this shop ----------------------------------------------------------------------
    def segment(self, pk: int) -> Segment:
        segment = Segment.objects.filter(shop=self.shop, pk=pk).select_related("group", "shop").first()
        if segment is None:
            raise not_found("segment")
        return segment

    def customer(self, pk: int) -> Customer:
        customer = Customer.objects.filter(shop=self.shop, pk=pk).first()
        if customer is None:
            raise not_found("customer")
        return customer

    def group(self, pk: int | None) -> ExclusiveGroup | None:
        """A group id from a body: None (no group), or one of this shop's groups (else a 404)."""
        if pk is None:
            return None
        group = ExclusiveGroup.objects.filter(shop=self.shop, pk=pk).first()
        if group is None:
            raise not_found("exclusive group")
        return group


MAX_DEPTH = 32   # far beyond any rule document or setting; deeper bodies only exhaust stacks


def _shape_problem(data) -> str | None:
    """Why a parsed body cannot be taken (too deep, or a NUL that PostgreSQL text cannot store);
    walked with a stack of our own, so no nesting can exhaust Python's."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "The body contains a NUL character (\\u0000)."
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return f"The body is nested more than {MAX_DEPTH} levels deep."
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)
    return None
