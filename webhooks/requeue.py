"""Deliveries that failed, made pending again: the operator's way back once the cause is fixed
(handlers are idempotent, so applying a delivery again is safe)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from webhooks.dispatch import drain_schedule
from webhooks.models import EventStatus, WebhookEvent


def failed_deliveries_requeue(*, ids: Iterable[int]) -> int:
    """Make the failed deliveries among `ids` pending and due now (a blanked payload stays failed:
    its data is gone); returns how many, and schedules a drain once they are committed."""
    with transaction.atomic():
        requeued = (WebhookEvent.objects.filter(pk__in=list(ids), status=EventStatus.FAILED).exclude(payload={})
                    .update(status=EventStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""))
        if requeued:
            transaction.on_commit(drain_schedule)
    return requeued
