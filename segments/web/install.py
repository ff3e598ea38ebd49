"""The app URL and the OAuth callback: install, reinstall, re-authorize, embedded entry."""
from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from segments.shops import admin_api as shopify_api
from segments.shops.auth import SignedQueryInvalid, installed_shop, session_claims, signed_query_verify
from segments.shops.install import oauth_state_consume, oauth_state_create, shop_install
from segments.shops.models import ShopStatus
from segments.shops.tasks import shop_post_install_task
from segments.web.embedded import bounce, render_home
from shopseg.enqueue import enqueue_on_commit
from shopseg.shopify.errors import OAuthGrantError, ShopifyTransientError
from shopseg.shopify.oauth import authorize_url
from shopseg.shopify.session_tokens import SessionTokenInvalid

log = logging.getLogger(__name__)
STATE_COOKIE = "shopseg_oauth"


def _error(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    return render(request, "segments/install_error.html", {"reason": reason}, status=status)


def _scopes() -> str:
    return ",".join(s for s in (settings.SHOPIFY_SCOPES, settings.SHOPIFY_OPTIONAL_SCOPES) if s)


def _begin_oauth(request: HttpRequest, shop: str) -> HttpResponse:
    browser_key = request.COOKIES.get(STATE_COOKIE) or secrets.token_urlsafe(32)
    nonce = oauth_state_create(shop=shop, browser_key=browser_key)
    redirect_uri = f"{settings.SHOPSEG_APP_URL.rstrip('/')}/auth/callback"
    response = HttpResponseRedirect(authorize_url(shopify_api.base_url(shop), api_key=settings.SHOPIFY_API_KEY,
                                                  scopes=_scopes(), redirect_uri=redirect_uri, state=nonce))
    response.set_cookie(STATE_COOKIE, browser_key, max_age=600, httponly=True, samesite="Lax",
                        secure=settings.PRODUCTION)
    return response


def _installed(domain: str, tokens) -> None:
    shop = shop_install(domain=domain, tokens=tokens)
    enqueue_on_commit(shop_post_install_task, shop.pk)


@xframe_options_exempt
@require_GET
def app_entry(request: HttpRequest) -> HttpResponse:
    """Shopify opens the app URL signed: install, or (embedded) render the admin."""
    if "hmac" not in request.GET:
        return render(request, "segments/landing.html")
    try:
        query = signed_query_verify(request)
    except SignedQueryInvalid as exc:
        return _error(request, f"This link did not come from Shopify ({exc}).", 400)
    request.csp_shop = query.shop
    shop = installed_shop(query.shop)
    if query.first("embedded") != "1":
        if shop is not None and shop.status == ShopStatus.INSTALLED:
            return HttpResponseRedirect(shopify_api.embedded_app_url(query.shop))
        return _begin_oauth(request, query.shop)
    try:
        claims = session_claims(query.first("id_token"))
    except SessionTokenInvalid as exc:
        if exc.expired or not query.first("id_token"):
            return bounce(request)
        return _error(request, "The session token is invalid.", 401)
    if claims.shop != query.shop:
        return _error(request, "The session token is for another shop.", 401)
    if shop is None or shop.status != ShopStatus.INSTALLED:
        # Shopify-managed install (or re-authorization): exchange the session token.
        try:
            tokens = shopify_api.oauth_client(query.shop).exchange_session_token(query.first("id_token"))
        except OAuthGrantError as exc:
            return _error(request, f"Shopify refused the token exchange ({exc.error}).", 401)
        except ShopifyTransientError:
            return _error(request, "Shopify could not be reached. Reload the page to try again.", 502)
        with transaction.atomic():
            _installed(query.shop, tokens)
        shop = installed_shop(query.shop)
    request.shop = shop
    return render_home(request)


@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """The authorize redirect comes back: verify everything, exchange the code, set up the shop."""
    try:
        query = signed_query_verify(request)
    except SignedQueryInvalid as exc:
        return _error(request, f"This link did not come from Shopify ({exc}).", 400)
    if not oauth_state_consume(nonce=query.first("state"), shop=query.shop,
                               browser_key=request.COOKIES.get(STATE_COOKIE, "")):
        return _error(request, "This install link has expired or was already used. Start the install again.", 403)
    if not query.first("code"):
        return _error(request, "Shopify did not send an authorization code.", 400)
    try:
        tokens = shopify_api.oauth_client(query.shop).exchange_code(query.first("code"))
    except OAuthGrantError as exc:
        log.warning("code exchange refused for shop %s: %s", query.shop, exc.error)
        return _error(request, "Shopify refused the authorization code. Start the install again.", 400)
    except ShopifyTransientError:
        return _error(request, "Shopify could not be reached. Start the install again.", 502)
    with transaction.atomic():
        _installed(query.shop, tokens)
    response = HttpResponseRedirect(shopify_api.embedded_app_url(query.shop))
    response.delete_cookie(STATE_COOKIE)
    return response
