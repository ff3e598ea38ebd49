"""Keeping a shop's expiring offline token usable: refresh early, once, under a row lock."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import transaction
from django.utils import timezone

from segments.shops import admin_api as shopify_api
from segments.shops.models import Shop, ShopStatus
from shopseg.shopify.client import ShopClient
from shopseg.shopify.errors import OAuthGrantError, ShopifyAuthError
from shopseg.shopify.oauth import TokenSet

log = logging.getLogger(__name__)
REFRESH_SKEW = dt.timedelta(minutes=5)
T = TypeVar("T")


class ShopUnavailable(Exception):
    """The shop is uninstalled or needs re-authorization: stop, don't retry."""


def shop_tokens_store(*, shop: Shop, tokens: TokenSet) -> None:
    """Write a new token pair atomically (access and refresh always change together)."""
    shop.access_token = tokens.access_token
    shop.access_token_expires_at = tokens.expires_at
    shop.refresh_token = tokens.refresh_token
    shop.refresh_token_expires_at = tokens.refresh_expires_at
    if tokens.scopes:   # what the shop grants now: an app/scopes_update from before is older (shop_details)
        shop.scopes, shop.scopes_at = ",".join(tokens.scopes), timezone.now()
    shop.save(update_fields=["access_token", "access_token_expires_at", "refresh_token",
                             "refresh_token_expires_at", "scopes", "scopes_at", "updated_at"])


def shop_mark_needs_reauth(*, shop: Shop, reason: str) -> None:
    Shop.objects.filter(pk=shop.pk).update(status=ShopStatus.NEEDS_REAUTH, status_reason=reason[:255],
                                           updated_at=timezone.now())
    shop.status, shop.status_reason = ShopStatus.NEEDS_REAUTH, reason[:255]


def _usable(shop: Shop, failed_token: str | None) -> bool:
    if failed_token is not None:
        return bool(shop.access_token) and shop.access_token != failed_token  # someone refreshed
    return shop.token_fresh(REFRESH_SKEW)


def shop_access_token(*, shop_id: int, failed_token: str | None = None) -> str:
    """A usable access token, refreshed a few minutes before expiry (or after `failed_token` got 401).

    The refresh runs under `select_for_update`: a second worker waits, then sees the fresh token
    and does not spend the (single-use) refresh token again.
    """
    shop = Shop.objects.get(pk=shop_id)
    if not shop.is_active:
        raise ShopUnavailable(f"shop {shop.domain} is {shop.status}")
    if _usable(shop, failed_token):
        return shop.access_token
    refused: str | None = None
    with transaction.atomic():
        shop = Shop.objects.select_for_update().get(pk=shop_id)
        if not shop.is_active:
            raise ShopUnavailable(f"shop {shop.domain} is {shop.status}")
        if _usable(shop, failed_token):
            return shop.access_token
        if not shop.refresh_token:
            refused = "no refresh token; open the app to re-authorize"
        else:
            try:
                tokens = shopify_api.oauth_client(shop.domain).refresh(shop.refresh_token)
            except OAuthGrantError as exc:
                log.warning("token refresh refused for shop %s: %s", shop.domain, exc.error)
                refused = f"token refresh refused ({exc.error})"
            else:
                shop_tokens_store(shop=shop, tokens=tokens)
                return shop.access_token
    # Outside the transaction: raising inside it would roll the status change back.
    shop_mark_needs_reauth(shop=shop, reason=refused)
    raise ShopUnavailable(f"shop {shop.domain} needs re-authorization")


def with_shop_client(*, shop_id: int, call: Callable[[ShopClient], T]) -> T:
    """Run `call` with a GraphQL client; on a 401 refresh the token once and try again."""
    domain = Shop.objects.values_list("domain", flat=True).get(pk=shop_id)
    token = shop_access_token(shop_id=shop_id)
    try:
        with shopify_api.graphql_client(domain, token) as client:
            return call(client)
    except ShopifyAuthError as exc:
        if exc.status != 401:
            raise
    token = shop_access_token(shop_id=shop_id, failed_token=token)
    with shopify_api.graphql_client(domain, token) as client:
        return call(client)
