"""A segment's page: header, members with search and pages, entries and exits per day, versions."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from segments.shops.admin_api import admin_url
from segments.web.embedded import app_context, embedded_page, page_url
from segments.web.overview import (
    segment_badges, segment_member_page, segment_movement, segment_summary, segment_takes_visitors, segment_versions,
    sync_error_segment_ids,
)
from segments.web.pages.charts import movement_chart
from segments.web.pages.common import query_int, shop_segment

MAX_SEARCH = 100             # as GET /api/segments/<id>/members?q=
MOVEMENT_DAYS = (30, 90)


@embedded_page
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = shop_segment(request, pk)
    q = request.GET.get("q", "").strip()[:MAX_SEARCH]
    after = query_int(request, "after", 0)
    days = query_int(request, "days", MOVEMENT_DAYS[0])
    days = days if days in MOVEMENT_DAYS else MOVEMENT_DAYS[0]
    members, next_after = segment_member_page(segment=segment, q=q, after=after)
    context = {
        **app_context(request, "segment-detail"), "segment": segment,
        "summary": segment_summary(segment=segment), "takes_visitors": segment_takes_visitors(segment=segment),
        "badges": segment_badges(segment, sync_error_segment_ids(shop=request.shop)),
        "members": members, "next_after": next_after, "q": q, "after": after,
        "customer_admin": admin_url(request.shop.domain, "customers/"),
        "versions": segment_versions(segment=segment),
        "chart": movement_chart(segment_movement(segment=segment, days=days)), "days": days,
        "day_choices": MOVEMENT_DAYS,
        "edit_url": page_url("segment-edit", segment.pk), "lift_url": page_url("segment-lift", segment.pk),
        "playbook_url": page_url("playbook", segment.pk),
    }
    return render(request, "segments/segment_detail.html", context)
