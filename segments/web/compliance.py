"""The merchant's privacy page: compliance requests Shopify sent, and the data-request exports to download."""
from __future__ import annotations

import json
import re

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from rest_framework.response import Response

from segments.mirror.models import ComplianceKind, ComplianceRequest
from segments.privacy.selectors import (
    compliance_export_for_shop, compliance_exportable_pks, compliance_requests_for_shop,
)
from segments.web.api import ShopAPIView
from segments.web.embedded import app_context, embedded_page

LIST_LIMIT = 200
KIND_LABELS = {ComplianceKind.DATA_REQUEST: "Data request", ComplianceKind.CUSTOMER_REDACT: "Customer erasure",
               ComplianceKind.SHOP_REDACT: "Store erasure"}


def _row(request: ComplianceRequest, exportable: set[int]) -> dict:
    export_url = reverse("segments:compliance-export", args=[request.pk]) if request.pk in exportable else None
    return {"id": request.pk, "kind": request.kind, "customer_id": request.customer_shopify_id,
            "request_id": request.request_id, "received_at": request.received_at,
            "completed_at": request.completed_at, "counts": request.summary, "export_url": export_url}


def _page_row(request: ComplianceRequest, exportable: set[int]) -> dict:
    return {**_row(request, exportable), "kind_label": KIND_LABELS.get(request.kind, request.kind),
            "count_list": [(key.replace("_", " "), value) for key, value in sorted(request.summary.items())]}


def compliance_page_rows(*, shop_domain: str, limit: int = LIST_LIMIT) -> list[dict]:
    """The newest requests as the privacy page and the sync page list them."""
    exportable = compliance_exportable_pks(shop_domain=shop_domain)
    return [_page_row(r, exportable) for r in compliance_requests_for_shop(shop_domain=shop_domain)[:limit]]


@embedded_page
def compliance_list(request: HttpRequest) -> HttpResponse:
    return render(request, "segments/compliance.html",
                  {**app_context(request, "compliance"),
                   "requests": compliance_page_rows(shop_domain=request.shop.domain)})


@embedded_page
def compliance_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The export as a JSON download; another shop's request (or an erased export) is a 404."""
    found = compliance_export_for_shop(shop_domain=request.shop.domain, pk=pk)
    if found is None:
        raise Http404("No such export")
    response = HttpResponse(json.dumps(found.export, indent=2), content_type="application/json")
    reference = re.sub(r"[^A-Za-z0-9_-]", "", found.request_id) or found.pk    # Shopify's id, kept header-safe
    name = f"customer-{found.customer_shopify_id}-data-request-{reference}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"   # personal data: no copies in caches
    return response


class ComplianceListView(ShopAPIView):
    """GET /api/compliance: the shop's compliance requests (counts only; exports are downloaded from the page)."""

    def get(self, request):
        domain = self.shop.domain
        exportable = compliance_exportable_pks(shop_domain=domain)
        rows = [_row(r, exportable) for r in compliance_requests_for_shop(shop_domain=domain)[:LIST_LIMIT]]
        return Response({"requests": rows})
