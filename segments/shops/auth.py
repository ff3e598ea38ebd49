"""Who is calling: a signed install query from Shopify, or an App Bridge session token.

Every authenticated request ends with `request.shop` set to an installed `Shop`; every query
the views make goes through that object, which is how data stays scoped to one shop.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from rest_framework import authentication, exceptions

from segments.shops.admin_api import app_secrets
from segments.shops.models import Shop, ShopStatus
from shopseg.shopify.domains import normalize_shop_domain
from shopseg.shopify.session_tokens import SessionClaims, SessionTokenInvalid, session_token_decode
from shopseg.shopify.signatures import query_hmac_valid

FUTURE_SKEW_SECONDS = 60


class SignedQueryInvalid(Exception):
    """The query string is not a fresh, correctly signed request from Shopify for a valid shop."""


@dataclass(frozen=True)
class SignedQuery:
    shop: str
    params: dict[str, list[str]]

    def first(self, key: str) -> str:
        return (self.params.get(key) or [""])[-1]


def signed_query_verify(request: HttpRequest) -> SignedQuery:
    """HMAC (all secrets, constant time), timestamp freshness, strict shop domain."""
    params = dict(request.GET.lists())  # lists, never .dict(): `ids[]` must keep all its values
    if not query_hmac_valid(params, app_secrets()):
        raise SignedQueryInvalid("signature does not match")
    try:
        timestamp = int((params.get("timestamp") or ["0"])[-1])
    except ValueError:
        raise SignedQueryInvalid("timestamp is not a number") from None
    now = time.time()
    if timestamp < now - settings.SHOPIFY_OAUTH_MAX_AGE_SECONDS or timestamp > now + FUTURE_SKEW_SECONDS:
        raise SignedQueryInvalid("timestamp is stale or in the future")
    shop = normalize_shop_domain((params.get("shop") or [""])[-1])
    if shop is None:
        raise SignedQueryInvalid("shop is not a valid *.myshopify.com domain")
    return SignedQuery(shop=shop, params=params)


def session_claims(token: str) -> SessionClaims:
    return session_token_decode(token, api_key=settings.SHOPIFY_API_KEY, secrets=app_secrets())


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else ""


def installed_shop(domain: str) -> Shop | None:
    return Shop.objects.filter(domain=domain).exclude(status=ShopStatus.UNINSTALLED).first()


class SessionTokenAuthentication(authentication.BaseAuthentication):
    """DRF: `Authorization: Bearer <session token>` for a shop that has the app installed."""

    def authenticate(self, request):
        token = bearer_token(request)
        if not token:
            return None
        try:
            claims = session_claims(token)
        except SessionTokenInvalid:
            raise exceptions.AuthenticationFailed("Invalid session token") from None
        shop = installed_shop(claims.shop)
        if shop is None:
            raise exceptions.AuthenticationFailed("The app is not installed on this shop")
        request._request.shop = shop
        return (None, claims)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="shopseg"'
