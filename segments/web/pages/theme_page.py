"""Theme: every segment's Liquid snippet, ready to copy, and the tag naming contract."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from segments.membership.models import Segment, SegmentStatus
from segments.tags.models import HANDLE_PLACEHOLDER
from segments.tags.snippets import segment_snippets
from segments.web.embedded import app_context, embedded_page


@embedded_page
def theme(request: HttpRequest) -> HttpResponse:
    shop = request.shop
    # Archived segments have no members and their tags are being removed: no snippet to paste.
    segments = (Segment.objects.filter(shop=shop).exclude(status=SegmentStatus.ARCHIVED)
                .select_related("shop").order_by("name", "pk"))
    context = {**app_context(request, "theme"), "snippets": [(s, segment_snippets(segment=s)) for s in segments],
               "per_segment_holdout": HANDLE_PLACEHOLDER in shop.holdout_tag}
    return render(request, "segments/theme.html", context)
