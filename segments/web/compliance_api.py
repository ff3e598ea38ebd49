"""The compliance JSON API: a data request's export, for the shop whose customer it is."""
from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from segments.privacy.selectors import compliance_export_for_shop
from segments.web import schema
from segments.web.api import SegmentsAPIView, not_found


class ComplianceExportView(SegmentsAPIView):
    """GET /api/compliance/<id>/export: the export as JSON (a download); another shop's request, a
    request that is not a data request, or an export erased by a later redact is a 404."""

    @extend_schema(operation_id="compliance_export",
                   responses=schema.EXPORT_RESPONSES,
                   summary="A data request's export")
    def get(self, request, pk: int):
        found = compliance_export_for_shop(shop_domain=self.shop.domain, pk=pk)
        if found is None:
            raise not_found("data request export")
        reference = re.sub(r"[^A-Za-z0-9_-]", "", found.request_id) or found.pk    # Shopify's id, kept header-safe
        name = f"customer-{found.customer_shopify_id}-data-request-{reference}.json"
        return Response(found.export, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                               "Cache-Control": "no-store"})   # personal data: no copies in caches
