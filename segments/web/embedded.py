"""Embedded admin pages: authenticated by the session token that App Bridge puts in `id_token`.

A document load without a (fresh) token gets the bounce page, which asks App Bridge for one and
reloads with it; API calls carry it in `Authorization: Bearer` instead (see segments/web/api.py), and so
do the fragments a page fetches to refresh its live regions.
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from segments.mirror.models import ShopSync
from segments.shops.auth import bearer_token, installed_shop, session_claims
from segments.shops.models import ShopStatus
from segments.tags.selectors import tag_sync_status
from segments.web.health import webhook_health
from segments.web.overview import needs_attention, running_jobs, segment_index, tag_queue_counts
from segments.web.pages.charts import sparkline
from shopseg.shopify.session_tokens import SessionTokenInvalid

# The top navigation: (URL name, label, the names of pages that belong under it). An entry whose
# page is not routed (another module not deployed yet) is left out rather than linked to a 404.
NAVIGATION = (
    ("home", "Segments", ("home", "segment-detail", "segment-new", "segment-edit")),
    ("playbooks", "Playbooks", ("playbooks", "playbook")),
    ("theme", "Theme", ("theme",)),
    ("measurement", "Measurement", ("measurement", "migration", "review", "segment-lift", "predictions")),
    ("sync", "Sync & data", ("sync", "compliance")),
    ("settings", "Settings", ("settings",)),
)


def navigation(current: str) -> list[dict]:
    items = []
    for name, label, members in NAVIGATION:
        try:
            url = reverse(f"segments:{name}")
        except NoReverseMatch:
            continue
        items.append({"url": url, "label": label, "current": current in members})
    return items


def page_url(name: str, *args) -> str | None:
    """A page's URL, or None while that page is not routed."""
    try:
        return reverse(f"segments:{name}", args=args)
    except NoReverseMatch:
        return None


def app_context(request: HttpRequest, current: str = "") -> dict:
    """What every page's layout needs; the current nav item is the page's own URL name unless given."""
    shop = getattr(request, "shop", None)
    match = getattr(request, "resolver_match", None)
    current = current or (match.url_name if match else "") or ""
    return {"api_key": settings.SHOPIFY_API_KEY, "app_bridge_url": settings.SHOPIFY_APP_BRIDGE_URL,
            "shop": shop, "nav": navigation(current) if shop else [],
            "needs_reauth": bool(shop) and shop.status == ShopStatus.NEEDS_REAUTH}


def bounce(request: HttpRequest) -> HttpResponse:
    """Load App Bridge, get a session token, reload this URL with it."""
    # Framed by whichever shop's admin loads us: the `shop` parameter is not signed, so it may not
    # choose the frame-ancestors; the page itself holds nothing but a reload with a session token.
    request.csp_any_shop = True
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


def page_fragment(view):
    """A piece of a page that its script fetches (live regions): the session token comes in
    `Authorization: Bearer`, as App Bridge adds it to fetch(), never in the URL, so the refresh does
    not depend on the URL the page was opened with (Shopify's signed launch URL cannot take a new
    `id_token` without breaking its HMAC). No token, or a bad one: 401 and nothing rendered."""

    @require_GET
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            claims = session_claims(bearer_token(request))
        except SessionTokenInvalid:
            return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer realm="shopseg"'})
        shop = installed_shop(claims.shop)
        if shop is None:
            return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer realm="shopseg"'})
        request.csp_shop = claims.shop
        request.shop = shop
        return view(request, *args, **kwargs)

    return wrapper


def home_live_context(shop) -> dict:
    """What the home page's live regions (progress, store history) show, and where they refresh from."""
    sync = ShopSync.objects.filter(shop=shop).first()
    return {"shop": shop, "sync": sync, "jobs": running_jobs(shop=shop, sync=sync), "live_url": page_url("home-live")}


def render_home(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    live = home_live_context(shop)
    webhooks = webhook_health(shop_domain=shop.domain)
    rows = segment_index(shop=shop)
    sync_status = {**tag_sync_status(shop=shop), "failed_changes": tag_queue_counts(shop=shop)["failed"]}
    context = {**app_context(request, "home"), **live, "webhooks": webhooks,
               "rows": [(row, sparkline(row.trend)) for row in rows],
               "attention": needs_attention(shop=shop, webhooks=webhooks, sync_status=sync_status,
                                            segments=[r.segment for r in rows]),
               "new_segment_url": page_url("segment-new")}
    return render(request, "segments/home.html", context)


@embedded_page
def home(request: HttpRequest) -> HttpResponse:
    return render_home(request)


@page_fragment
def home_live(request: HttpRequest) -> HttpResponse:
    """The home page's live regions, for its refresh every few seconds while something runs."""
    return render(request, "segments/_partials/home_live.html", home_live_context(request.shop))
