"""Retrying tag changes that failed: the merchant (or support) asks again after fixing what stood in
the way — a tag the settings made invalid, or an outage that outlasted every backoff.

A retried change is due again exactly like a new one (no attempts, due now, not processed); the
sync diffs the customer's desired tags against Shopify, so replaying it is safe.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from segments.membership.models import TagChange
from segments.shops.models import Shop
from segments.tags.models import TagResult
from segments.tags.schedule import tags_sync_schedule

# Gave up after repeated errors, or Shopify refused the tag: both can succeed once the cause is gone.
# (A tag-limit refusal is retried by itself when room appears; a deleted customer never comes back.)
RETRYABLE = (TagResult.FAILED, TagResult.INVALID)
MAX_IDS = 1000


def tag_changes_retry(*, shop: Shop, ids: Sequence[int] | None = None) -> dict:
    """Make the shop's failed changes due again: those of `ids`, or every one when `ids` is None.

    Returns {"retried": count, "not_found": [ids not of this shop], "not_failed": [ids of this shop
    that had not failed]}. Another shop's ids are "not found" and left untouched.
    """

    failed = TagChange.objects.filter(shop=shop, processed_at__isnull=False, result__in=RETRYABLE)
    not_found: list[int] = []
    not_failed: list[int] = []
    with transaction.atomic():
        if ids is not None:
            wanted = sorted(set(ids))
            mine = set(TagChange.objects.filter(shop=shop, pk__in=wanted).values_list("pk", flat=True))
            failed = failed.filter(pk__in=wanted)
            not_found = [pk for pk in wanted if pk not in mine]
            not_failed = sorted(mine - set(failed.values_list("pk", flat=True)))
        # One UPDATE: it locks the rows it changes, and a processed row is never touched by the sync.
        retried = failed.update(attempts=0, next_attempt_at=timezone.now(), processed_at=None, result="",
                                last_error="")
        if retried:
            transaction.on_commit(lambda: tags_sync_schedule(shop.pk))
    return {"retried": retried, "not_found": not_found, "not_failed": not_failed}
