"""Installing shopseg on a shop: OAuth state nonces, storing the grant, post-install set-up, uninstall."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

from django.db import transaction
from django.utils import timezone

from segments.mirror.backfill import backfill_start
from segments.shops.graphql import shop_graphql
from segments.shops.models import OAuthState, Shop, ShopStatus
from segments.shops.subscriptions import webhook_subscriptions_reconcile
from segments.shops.tokens import shop_tokens_store
from shopseg.enqueue import enqueue
from shopseg.shopify.oauth import TokenSet

log = logging.getLogger(__name__)
STATE_TTL = dt.timedelta(minutes=10)

SHOP_DETAILS = """
query ShopDetails {
  shop { id name email currencyCode ianaTimezone plan { publicDisplayName shopifyPlus } }
}
"""


def _hash(browser_key: str) -> str:
    return hashlib.sha256(browser_key.encode()).hexdigest()


def oauth_state_create(*, shop: str, browser_key: str) -> str:
    """A fresh single-use nonce for the authorize redirect, bound to this browser's cookie."""
    nonce = secrets.token_urlsafe(32)
    OAuthState.objects.create(nonce=nonce, shop=shop, browser_key_hash=_hash(browser_key))
    OAuthState.objects.filter(created_at__lt=timezone.now() - STATE_TTL * 6).delete()  # keep the table small
    return nonce


def oauth_state_consume(*, nonce: str, shop: str, browser_key: str) -> bool:
    """True exactly once for a nonce issued to this browser for this shop within its lifetime."""
    if not nonce or not browser_key:
        return False
    spent = OAuthState.objects.filter(
        nonce=nonce, shop=shop, browser_key_hash=_hash(browser_key), used_at__isnull=True,
        created_at__gte=timezone.now() - STATE_TTL,
    ).update(used_at=timezone.now())
    return spent == 1


def shop_install(*, domain: str, tokens: TokenSet) -> Shop:
    """Record a grant: a new install, a reinstall after uninstall, or a re-authorization."""
    with transaction.atomic():
        shop, created = Shop.objects.select_for_update().get_or_create(domain=domain)
        if created or shop.status == ShopStatus.UNINSTALLED:
            shop.installed_at = timezone.now()
        shop.status, shop.status_reason, shop.uninstalled_at = ShopStatus.INSTALLED, "", None
        shop.granted_at = timezone.now()
        shop.save(update_fields=["status", "status_reason", "uninstalled_at", "installed_at", "granted_at",
                                 "updated_at"])
        shop_tokens_store(shop=shop, tokens=tokens)
    log.info("shop %s installed (scopes %s)", domain, ",".join(tokens.scopes))
    return shop


def shop_details_sync(*, shop_id: int) -> Shop:
    """Currency, timezone and plan from Shopify (the plan sets the API throttle)."""
    data = shop_graphql(shop_id=shop_id, query=SHOP_DETAILS).data["shop"]
    Shop.objects.filter(pk=shop_id).update(
        shopify_gid=data["id"], name=data["name"], email=data.get("email") or "",
        currency=data["currencyCode"], iana_timezone=data["ianaTimezone"],
        plan_name=data["plan"]["publicDisplayName"], shopify_plus=bool(data["plan"]["shopifyPlus"]),
    )
    return Shop.objects.get(pk=shop_id)


def shop_post_install(*, shop_id: int) -> None:
    """Everything that follows a grant; each step is idempotent, so a retry is safe."""
    shop_details_sync(shop_id=shop_id)
    # Subscriptions first: bulk_operations/finish must be subscribed before the first export ends.
    webhook_subscriptions_reconcile(shop_id=shop_id)
    backfill_start(shop_id=shop_id)
    # The storefront (a domain above, so by name): the shop's web pixel, activated with its ingest key.
    enqueue("segments.storefront.tasks.pixel_activate_task", shop_id)


def shop_uninstall(*, domain: str, occurred_at: dt.datetime | None = None) -> bool:
    """app/uninstalled: mark the shop, drop its tokens. Jobs check `Shop.is_active` and stop.

    An uninstall that `occurred_at` before the shop's latest grant (processed late, from a backlog
    or Shopify's retries, after the merchant reinstalled) leaves the new installation alone. Times
    may come in whole seconds, so one within a second of the grant still counts: a reinstall takes
    longer than that after an uninstall."""
    shops = Shop.objects.filter(domain=domain).exclude(status=ShopStatus.UNINSTALLED)
    if occurred_at is not None:
        shops = shops.filter(granted_at__lt=occurred_at + dt.timedelta(seconds=1))
    updated = shops.update(
        status=ShopStatus.UNINSTALLED, uninstalled_at=timezone.now(), access_token=None,
        access_token_expires_at=None, refresh_token=None, refresh_token_expires_at=None,
        updated_at=timezone.now(),
    )
    if updated:
        log.info("shop %s uninstalled; tokens dropped", domain)
    return bool(updated)
