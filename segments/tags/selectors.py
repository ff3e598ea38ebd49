"""Reads for tag sync: the sync status a merchant or operator looks at, and the audit of tag changes."""
from __future__ import annotations

import datetime as dt

from django.db.models import Count, Min, Q
from django.utils import timezone

from segments.membership.models import TagChange
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.shops.throttle import ShopThrottle
from segments.tags.models import CustomerTag, LedgerState, TagAudit, TagBulkOperation, TagResult, TagSource
from segments.tags.naming import shop_tag_conflicts, shop_tag_settings_problems

ERROR_RESULTS = (TagResult.FAILED, TagResult.INVALID, TagResult.TAG_LIMIT, TagResult.CUSTOMER_GONE)
RECENT = dt.timedelta(days=1)


def tag_sync_status(*, shop: Shop, now: dt.datetime | None = None) -> dict:
    """Queue, throttle, bulk operations, recent errors, drift and settings of one shop's tag sync."""
    now = now or timezone.now()
    pending = TagChange.objects.filter(shop=shop, processed_at__isnull=True)
    queue = pending.aggregate(
        changes=Count("pk"), customers=Count("customer", distinct=True),
        backing_off=Count("pk", filter=Q(next_attempt_at__gt=now)),
        in_bulk=Count("pk", filter=Q(bulk__isnull=False)), oldest=Min("created_at"))
    queue["oldest_age_seconds"] = round((now - queue.pop("oldest")).total_seconds(), 1) if queue["oldest"] else None
    retrying = list(pending.filter(attempts__gt=0).order_by("-pk").values(
        "pk", "customer_id", "tag", "attempts", "last_error", "next_attempt_at")[:10])
    errors = [audit_row(a) for a in TagAudit.objects.filter(shop=shop, result__in=ERROR_RESULTS)
              .order_by("-pk")[:10]]
    recent = dict(TagAudit.objects.filter(shop=shop, at__gte=now - RECENT).values_list("result")
                  .annotate(n=Count("pk")).values_list("result", "n"))
    bulk = [{"id": op.pk, "add": op.add, "status": op.status, "lines": op.line_count, "applied": op.applied,
             "errors": op.errors, "error": op.error, "created_at": op.created_at, "started_at": op.started_at,
             "finished_at": op.finished_at}
            for op in TagBulkOperation.objects.filter(shop=shop).order_by("-pk")[:5]]
    return {
        "queue": queue,
        "throttle": ShopThrottle(shop.pk).state().as_json(),
        "bulk": bulk,
        "last_errors": errors,
        "retrying": [{"change": r["pk"], "customer": r["customer_id"], "tag": r["tag"], "attempts": r["attempts"],
                      "error": r["last_error"], "next_attempt_at": r["next_attempt_at"]} for r in retrying],
        "last_24h": recent,
        "tag_limit": {"customers": CustomerTag.objects.filter(shop=shop, state=LedgerState.BLOCKED)
                      .values("customer").distinct().count()},
        "drift": {"policy": shop.drift_policy,
                  "reported_24h": TagAudit.objects.filter(shop=shop, source=TagSource.DRIFT,
                                                          result=TagResult.REPORTED, at__gte=now - RECENT).count(),
                  "left_off": CustomerTag.objects.filter(shop=shop, state=LedgerState.SUPPRESSED).count()},
        "settings": {"tag_prefix": shop.tag_prefix, "holdout_tag": shop.holdout_tag,
                     "drift_policy": shop.drift_policy, "tag_metafield": shop.tag_metafield,
                     "problems": shop_tag_settings_problems(shop=shop) + shop_tag_conflicts(shop=shop)},
    }


def audit_row(audit: TagAudit) -> dict:
    return {"id": audit.pk, "customer": audit.customer_id, "shopify_id": audit.customer_shopify_id,
            "tag": audit.tag, "action": "add" if audit.add else "remove", "segment": audit.segment_id,
            "segment_version": audit.segment_version, "source": audit.source, "result": audit.result,
            "detail": audit.detail, "bulk": audit.bulk_id, "at": audit.at}


def tag_audit_page(*, shop: Shop, customer: Customer | None = None, limit: int = 50,
                   before: int | None = None) -> tuple[list[dict], int | None]:
    """Audit rows newest first (by id, the order they were recorded); `before` is the previous
    page's `next_before`. Returns (rows, next_before)."""
    rows = TagAudit.objects.filter(shop=shop)
    if customer is not None:
        rows = rows.filter(customer=customer)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    page = list(rows.order_by("-pk")[:limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return [audit_row(a) for a in page], (page[-1].pk if more else None)
