"""The tag sync JSON API: the shop's sync status, the audit of tag changes, retrying failed changes,
and a segment's theme snippet. Thin views over segments.tags.selectors, segments.tags.retry
and segments.tags.snippets, scoped to the session token's shop like the segments API
(another shop's segment or customer is a 404, another shop's change is "not found")."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from segments.tags.retry import tag_changes_retry
from segments.tags.selectors import tag_audit_page, tag_sync_status
from segments.tags.snippets import segment_snippets
from segments.web import schema
from segments.web.api import SegmentsAPIView


class SyncStatusView(SegmentsAPIView):
    """GET /api/sync: queue size, throttle state, bulk operations, last errors, drift, settings."""

    @extend_schema(operation_id="sync_status", responses=schema.responses(schema.SyncStatusSerializer, lookup=False),
                   summary="Tag sync status")
    def get(self, request):
        return Response(tag_sync_status(shop=self.shop))


class SyncAuditView(SegmentsAPIView):
    """GET /api/sync/audit?customer=&limit=&before=: tag changes newest first; `before` is the
    previous page's `next_before`."""

    @extend_schema(operation_id="sync_audit",
                   parameters=schema.AUDIT_PARAMS,
                   responses=schema.responses(schema.AuditPageSerializer, params=True),
                   summary="The audit of tag changes, newest first")
    def get(self, request):
        limit = self.limit()
        customer_pk = self.query_int("customer", low=1)
        before = self.query_int("before", low=1)
        customer = self.customer(customer_pk) if customer_pk is not None else None
        rows, next_before = tag_audit_page(shop=self.shop, customer=customer, limit=limit, before=before)
        return Response({"changes": rows, "next_before": next_before})


class SegmentSnippetView(SegmentsAPIView):
    """GET /api/segments/<id>/snippet: the Liquid a theme developer pastes for this segment."""

    @extend_schema(operation_id="segments_snippet", responses=schema.responses(schema.SnippetSerializer),
                   summary="The theme Liquid for the segment's tag")
    def get(self, request, pk: int):
        return Response(segment_snippets(segment=self.segment(pk)))


class SyncRetryView(SegmentsAPIView):
    """POST /api/sync/retry {ids?}: failed tag changes due again (all of the shop's without ids)."""

    @extend_schema(operation_id="sync_retry", request=schema.RetryRequestSerializer,
                   responses=schema.responses(schema.RetryResultSerializer, body=True, lookup=False),
                   summary="Retry failed tag changes (all of the shop's, or those of ids)")
    def post(self, request):
        ids = self.body(schema.RetryRequestSerializer, optional=True).get("ids")
        return Response(tag_changes_retry(shop=self.shop, ids=ids))
