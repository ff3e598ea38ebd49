"""What needs attention in a shop's data feed: webhook deliveries that failed or are waiting, or came
in another API version than the app's.

The merchant and the operator must see deliveries that keep failing: `webhook_health` is registered
as the reader of segments.web.health at start-up (webhooks.apps).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from segments.web.health import WebhookHealth
from webhooks.models import EventStatus, WebhookEvent


def webhook_health(*, shop_domain: str) -> WebhookHealth:
    events = WebhookEvent.objects.filter(shop_domain=shop_domain)
    counts = events.aggregate(
        failed=Count("id", filter=Q(status=EventStatus.FAILED)),
        retrying=Count("id", filter=Q(status=EventStatus.PENDING, attempts__gt=0)),
        waiting=Count("id", filter=Q(status=EventStatus.PENDING, attempts=0,
                                     received_at__lte=timezone.now() - timezone.timedelta(minutes=1))),
    )
    last = (events.filter(Q(status=EventStatus.FAILED) | Q(status=EventStatus.PENDING, attempts__gt=0))
            .order_by("-next_attempt_at").values_list("last_error", flat=True).first())
    return WebhookHealth(last_error=last or "", **counts)


@dataclass(frozen=True)
class WebhookApiVersions:
    pinned: str                          # settings.SHOPIFY_API_VERSION
    other_version: int                   # deliveries in another API version
    other_versions: list[str]
    other_version_last_seen: str | None  # ISO time
    deprecated: int                      # deliveries Shopify marked with X-Shopify-API-Deprecated-Reason
    deprecated_reason: str               # the newest one's reason
    deprecated_last_seen: str | None


def webhook_api_versions(*, shop_domain: str) -> WebhookApiVersions:
    """The shop's kept deliveries that were not in the app's pinned API version, or came deprecated."""
    pinned = settings.SHOPIFY_API_VERSION
    events = WebhookEvent.objects.filter(shop_domain=shop_domain)
    other = Q(api_version__gt="") & ~Q(api_version=pinned)
    deprecated = Q(api_deprecated_reason__gt="")
    found = events.aggregate(other=Count("id", filter=other), other_at=Max("received_at", filter=other),
                             deprecated=Count("id", filter=deprecated),
                             deprecated_at=Max("received_at", filter=deprecated))
    versions = sorted(events.filter(other).values_list("api_version", flat=True).distinct()) if found["other"] else []
    reason = (events.filter(deprecated).order_by("-received_at", "-id").values_list("api_deprecated_reason", flat=True)
              .first()) if found["deprecated"] else ""
    return WebhookApiVersions(
        pinned=pinned, other_version=found["other"], other_versions=versions,
        other_version_last_seen=found["other_at"].isoformat() if found["other_at"] else None,
        deprecated=found["deprecated"], deprecated_reason=reason or "",
        deprecated_last_seen=found["deprecated_at"].isoformat() if found["deprecated_at"] else None)
