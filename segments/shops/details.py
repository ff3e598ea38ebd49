"""What Shopify says changed about a shop: its time zone, currency and plan (shop/update) and the
scopes it granted (app/scopes_update), applied in the order it happened.

Both topics can arrive late and out of order (a retried delivery). A change applies only when it is
at least as new as what the shop holds: `details_at` / `scopes_at`, and the latest grant
(`granted_at`), after which the app reads the shop's details and scopes itself (install, token).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from dataclasses import dataclass

from django.db.models import Q

from segments.engine.triggers import Trigger
from segments.shops.models import Shop
from shopseg.enqueue import enqueue_on_commit

log = logging.getLogger(__name__)
# Shopify's plan names (REST `plan_name`) for Shopify Plus; devstore names its Plus stores "plus".
PLUS_PLANS = frozenset({"shopify_plus", "enterprise", "plus_partner_sandbox", "plus"})
CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ShopDetails:
    """What a Shop resource says; None: it does not say (or says something unusable)."""

    iana_timezone: str | None = None
    currency: str | None = None
    plan_name: str | None = None       # the plan's display name, as install stores it
    shopify_plus: bool | None = None
    name: str | None = None


def _zone(value) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        zoneinfo.ZoneInfo(value.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return value.strip()


def shop_details_parse(payload: dict) -> ShopDetails:
    """The Shop resource of shop/update (REST-shaped, as app/uninstalled's)."""
    currency = payload.get("currency")
    plan_name = payload.get("plan_name") if isinstance(payload.get("plan_name"), str) else None
    display = payload.get("plan_display_name") if isinstance(payload.get("plan_display_name"), str) else None
    plan_known = bool(plan_name or display)
    return ShopDetails(
        iana_timezone=_zone(payload.get("iana_timezone")),
        currency=currency if isinstance(currency, str) and CURRENCY.fullmatch(currency) else None,
        plan_name=(display or plan_name.replace("_", " ").title())[:64] if plan_known else None,
        shopify_plus=((plan_name or "").lower() in PLUS_PLANS or "plus" in (display or "").lower())
        if plan_known else None,
        name=payload["name"][:255] if isinstance(payload.get("name"), str) and payload["name"].strip() else None,
    )


def _as_new(stamp: str, at: dt.datetime) -> Q:
    """The shop holds nothing newer than `at`: no later grant, and no later change of this kind."""
    return Q(granted_at__lte=at) & (Q(**{f"{stamp}__isnull": True}) | Q(**{f"{stamp}__lte": at}))


def shop_details_apply(*, shop_id: int, details: ShopDetails, at: dt.datetime) -> bool:
    """shop/update: what the body says replaces what the shop holds, if it is not older; True if applied.

    Every day boundary of the shop (metrics windows, KPI days, the nightly hour) is read in
    `iana_timezone` when it is used, so the next computation uses the new zone.
    """
    fields = {name: value for name, value in vars(details).items() if value is not None}
    zone_before = Shop.objects.filter(pk=shop_id).values_list("iana_timezone", flat=True).first()
    applied = bool(Shop.objects.filter(_as_new("details_at", at), pk=shop_id).update(details_at=at, **fields))
    if not applied:
        log.info("shop %s: a shop/update from %s is older than what is held; ignored", shop_id, at.isoformat())
    elif details.iana_timezone and details.iana_timezone != zone_before:
        # Windowed metrics ("last 30 days") were cut at the old zone's midnights: recompute them
        # all, and every segment over them, now rather than at the nightly rebuild.

        enqueue_on_commit("segments.metrics.tasks.customer_metrics_rebuild_task", shop_id, Trigger.EVENT, "timezone")
    return applied


def shop_scopes_parse(payload: dict) -> list[str] | None:
    """app/scopes_update's `current` scopes (a list, or Shopify's comma-joined text); None if absent."""
    current = payload.get("current")
    if isinstance(current, str):
        current = current.split(",")
    if not isinstance(current, list):
        return None
    scopes = [str(scope).strip() for scope in current if str(scope).strip()]
    return list(dict.fromkeys(scopes))


def shop_scopes_apply(*, shop_id: int, scopes: list[str], at: dt.datetime) -> bool:
    """app/scopes_update: record the scopes the shop now grants, if the change is not older than
    what is held (a token's grant or refresh records its own, at its time); True if applied."""
    text = ",".join(scopes)[:500]
    before = Shop.objects.filter(pk=shop_id).values_list("scopes", flat=True).first()
    applied = bool(Shop.objects.filter(_as_new("scopes_at", at), pk=shop_id).update(scopes=text, scopes_at=at))
    if applied and set(text.split(",")) != set((before or "").split(",")):
        # The topics a shop is subscribed to follow its scopes (webhook_subscriptions.desired_topics):
        # a granted read_products adds the product topics, a revoked one removes them.

        enqueue_on_commit("segments.shops.tasks.shop_webhooks_reconcile_task", shop_id)
    return applied
