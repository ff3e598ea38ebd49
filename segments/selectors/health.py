"""What needs attention in a shop's data feed: webhook deliveries that failed or are waiting.

Reads the webhooks app's table (the one place segments looks into it besides privacy erasure):
the merchant and the operator must see deliveries that keep failing.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from webhooks.models import EventStatus, WebhookEvent


@dataclass(frozen=True)
class WebhookHealth:
    failed: int          # gave up after every retry
    retrying: int        # failed at least once, will be tried again
    waiting: int         # recorded, not processed yet
    last_error: str      # the newest failure's error (exception type and message; no payload)


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
