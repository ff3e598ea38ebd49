"""The tag sync JSON API: the shop's sync status, the audit of tag changes, and a segment's theme
snippet. Thin views over segments.selectors.tags and segments.services.theme_snippets, scoped to the
session token's shop like the segments API (another shop's segment or customer is a 404)."""
from __future__ import annotations

from rest_framework.response import Response

from segments.selectors.tags import tag_audit_page, tag_sync_status
from segments.services.theme_snippets import segment_snippets
from segments.views.segments_api import SegmentsAPIView


class SyncStatusView(SegmentsAPIView):
    """GET /api/sync: queue size, throttle state, bulk operations, last errors, drift, settings."""

    def get(self, request):
        return Response(tag_sync_status(shop=self.shop))


class SyncAuditView(SegmentsAPIView):
    """GET /api/sync/audit?customer=&limit=&before=: tag changes newest first; `before` is the
    previous page's `next_before`."""

    def get(self, request):
        limit = self.limit()
        customer_pk = self.query_int("customer", low=1)
        before = self.query_int("before", low=1)
        customer = self.customer(customer_pk) if customer_pk is not None else None
        rows, next_before = tag_audit_page(shop=self.shop, customer=customer, limit=limit, before=before)
        return Response({"changes": rows, "next_before": next_before})


class SegmentSnippetView(SegmentsAPIView):
    """GET /api/segments/<id>/snippet: the Liquid a theme developer pastes for this segment."""

    def get(self, request, pk: int):
        return Response(segment_snippets(segment=self.segment(pk)))
