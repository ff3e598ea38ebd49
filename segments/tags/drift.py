"""Drift: our tags changed by someone else, noticed from `customer.tags_*` deliveries and from the
periodic check over the mirror (which reconciliation's customer reads keep current).

- A tag of ours removed by hand (or another app) is queued for the customer's next sync, where the
  shop's drift policy decides: `repair` writes it again, `report` records it and leaves it off.
- A tag that looks like one of ours added by hand is reported and never removed: only tags in the
  customer ledger are ever removed.
- Deliveries are unordered and can be late: a tag event older than our own latest write of that tag
  (the audit's `at`, taken before the call) is stale, and is not applied to the mirror.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from segments.membership.models import Membership, Segment, TagChange
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.tags import naming as tag_naming
from segments.tags import plans as tag_plans
from segments.tags.models import (
    CustomerTag, LedgerState, OwnedTag, TagAudit, TagResult, TagSource, holdout_tag_for, tag_key,
)

CHECK_GRACE = dt.timedelta(minutes=10)   # ledger rows confirmed this recently are left to their echo
CHECK_CHUNK = 1000


def _shop_tag_keys(shop: Shop) -> set[str]:
    """Tags the app writes or has written for the shop (what a hand-added look-alike is measured by)."""
    keys = set(OwnedTag.objects.filter(shop=shop).values_list("key", flat=True))
    for handle in Segment.objects.filter(shop=shop).values_list("handle", flat=True):
        keys.add(tag_key(tag_naming.segment_tag(shop=shop, handle=handle)))
        if shop.holdout_tag:
            keys.add(tag_key(holdout_tag_for(shop.holdout_tag, handle)))
    return keys


def tag_event_observe(*, shop_id: int, shopify_id: int, tags: Sequence[str], added: bool,
                      occurred_at: dt.datetime | None) -> list[str]:
    """A `customer.tags_added` / `_removed` delivery: returns the tags to apply to the mirror (stale
    events about our tags left out), reports look-alikes added by hand, queues hand removals."""
    shop = Shop.objects.filter(pk=shop_id).only("pk", "tag_prefix", "holdout_tag", "drift_policy").first()
    if shop is None:
        return list(tags)
    prefix = shop.tag_prefix.lower()
    owned = [t for t in tags if tag_key(t).startswith(prefix)]
    if not owned:
        return list(tags)
    customer = Customer.objects.filter(shop=shop, shopify_id=shopify_id, deleted_at__isnull=True).values(
        "pk").first()
    if customer is None:
        return list(tags)
    pk = customer["pk"]
    keys = {tag_key(t) for t in owned}
    latest: dict[str, tuple[bool, dt.datetime]] = {}
    for tag, add, at in (TagAudit.objects.filter(customer_id=pk, tag__in=keys, result=TagResult.APPLIED)
                         .order_by("-id").values_list("tag", "add", "at")[:200]):
        latest.setdefault(tag_key(tag), (add, at))
    ledger = {row.key: row for row in CustomerTag.objects.filter(customer_id=pk, key__in=keys)}
    apply = [t for t in tags if not tag_key(t).startswith(prefix)]
    ours_now: set[str] | None = None
    reports: list[TagAudit] = []
    removed_by_hand = False
    for tag in owned:
        key = tag_key(tag)
        mine = latest.get(key)
        row = ledger.get(key)
        if occurred_at is not None and mine is not None and mine[0] != added and mine[1] > occurred_at:
            continue          # older than our own later write of the opposite: stale
        apply.append(tag)
        if added:
            ours = (row is not None and row.state in (LedgerState.PENDING, LedgerState.ACTIVE)) or (
                mine is not None and mine[0])
            if ours:
                continue      # our write's echo
            if ours_now is None:
                ours_now = _shop_tag_keys(shop)
            if key in ours_now:
                reports.append(TagAudit(shop=shop, customer_id=pk, customer_shopify_id=shopify_id, tag=tag, add=True,
                                        segment_id=row.segment_id if row else None, source=TagSource.DRIFT,
                                        result=TagResult.REPORTED, at=occurred_at or timezone.now(),
                                        detail="added outside the app; not ours, so never removed"))
        elif (row is not None and row.state == LedgerState.ACTIVE and not (mine is not None and not mine[0])
              and not tag_plans.removal_unanswered(row)):
            removed_by_hand = True     # (an unanswered removal of ours: its echo, recorded by the sync's replay)
    if reports:
        TagAudit.objects.bulk_create(reports)
    if removed_by_hand:
        tag_plans.customers_tag_check(shop=shop, customer_ids=[pk], source=TagSource.DRIFT)
    return apply


def shop_tags_check(*, shop: Shop, now: dt.datetime | None = None) -> int:
    """Queue every customer whose tags are not what the app wants (drift the webhooks missed, tags
    kept off by the 250 limit that now fit, changes lost); the sync decides and the policy applies.
    Customers with changes already queued, or written within CHECK_GRACE, are left alone."""
    now = now or timezone.now()
    candidates = set(Membership.objects.filter(shop=shop).values_list("customer_id", flat=True))
    candidates |= set(CustomerTag.objects.filter(shop=shop).values_list("customer_id", flat=True))
    candidates -= set(TagChange.objects.filter(shop=shop, processed_at__isnull=True)
                      .values_list("customer_id", flat=True))
    candidates -= set(CustomerTag.objects.filter(shop=shop, sent_at__gt=now - CHECK_GRACE,
                                                 state__in=[LedgerState.PENDING, LedgerState.ACTIVE])
                      .values_list("customer_id", flat=True))
    queued = []
    ordered = sorted(candidates)
    for start in range(0, len(ordered), CHECK_CHUNK):
        plans = tag_plans.plans_for(shop=shop, customer_ids=ordered[start:start + CHECK_CHUNK], changes=[])
        queued += [p.customer_id for p in plans if p.mutations or p.suppress or p.forget or p.confirm
                   or any(d.result != TagResult.TAG_LIMIT for d in p.audits)]
    return tag_plans.customers_tag_check(shop=shop, customer_ids=queued, source=TagSource.RESYNC)


def tag_outbox_purge(*, older_than: dt.timedelta) -> int:
    """Processed outbox rows are kept a while (for the sync status), then deleted; the audit stays."""
    cutoff = timezone.now() - older_than
    return TagChange.objects.filter(processed_at__lt=cutoff).delete()[0]
