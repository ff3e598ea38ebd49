"""Sync & data: tag sync's queue, throttle, errors (with retry), audit and bulk operations; the
webhook feed; reconciliation; privacy requests."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from segments.mirror.models import ShopSync
from segments.tags.selectors import tag_audit_page, tag_sync_status
from segments.web.compliance import compliance_page_rows
from segments.web.embedded import app_context, embedded_page
from segments.web.health import webhook_health
from segments.web.overview import failed_tag_changes, tag_queue_counts

AUDIT_ROWS = 20
COMPLIANCE_ROWS = 5


@embedded_page
def sync(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    status = tag_sync_status(shop=shop)
    audit, _ = tag_audit_page(shop=shop, limit=AUDIT_ROWS)
    throttle = status["throttle"]
    counts = tag_queue_counts(shop=shop)
    context = {
        **app_context(request, "sync"), "status": status, "counts": counts,
        "failed": failed_tag_changes(shop=shop), "audit": audit,
        "throttle_share": (throttle["available"] / throttle["maximum_available"]
                           if throttle.get("maximum_available") else None),
        "webhooks": webhook_health(shop_domain=shop.domain),
        "shop_sync": ShopSync.objects.filter(shop=shop).first(),
        "compliance": compliance_page_rows(shop_domain=shop.domain, limit=COMPLIANCE_ROWS),
        "running": bool(counts["due"] or counts["processing"]),
    }
    return render(request, "segments/sync.html", context)
