"""Embedded admin pages: authenticated by the session token that App Bridge puts in `id_token`.

A document load without a (fresh) token gets the bounce page, which asks App Bridge for one and
reloads with it; API calls carry it in `Authorization: Bearer` instead (see segments/api.py).
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt

from segments.auth import installed_shop, session_claims
from segments.models import ShopStatus, ShopSync
from segments.selectors.health import webhook_health
from shopseg.shopify.domains import normalize_shop_domain
from shopseg.shopify.session_tokens import SessionTokenInvalid


def app_context(request: HttpRequest) -> dict:
    return {"api_key": settings.SHOPIFY_API_KEY, "app_bridge_url": settings.SHOPIFY_APP_BRIDGE_URL,
            "shop": getattr(request, "shop", None)}


def bounce(request: HttpRequest) -> HttpResponse:
    """Load App Bridge, get a session token, reload this URL with it."""
    request.csp_shop = normalize_shop_domain(request.GET.get("shop"))
    return render(request, "segments/bounce.html", app_context(request))


def embedded_page(view):
    """Require a valid `id_token` for an installed shop; set `request.shop` and the CSP shop."""

    @xframe_options_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = request.GET.get("id_token", "")
        try:
            claims = session_claims(token)
        except SessionTokenInvalid as exc:
            if exc.expired or not token:
                return bounce(request)
            return render(request, "segments/install_error.html",
                          {"reason": "The session token is invalid."}, status=401)
        request.csp_shop = claims.shop
        shop = installed_shop(claims.shop)
        if shop is None:
            return render(request, "segments/install_error.html",
                          {"reason": "shopseg is not installed on this shop."}, status=401)
        request.shop = shop
        return view(request, *args, **kwargs)

    return wrapper


def render_home(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    context = {**app_context(request), "needs_reauth": shop.status == ShopStatus.NEEDS_REAUTH,
               "sync": ShopSync.objects.filter(shop=shop).first(),
               "webhooks": webhook_health(shop_domain=shop.domain)}
    return render(request, "segments/home.html", context)


@embedded_page
def home(request: HttpRequest) -> HttpResponse:
    return render_home(request)
