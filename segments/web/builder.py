"""The segment builder pages: a new segment (blank or from a template) and the edit of an existing one.

The page is a shell: builder.js loads the catalog, templates, groups and the segment through the JSON
API and previews every edit with the dry-run, so the rules are read and checked in one place (the API).
"""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from segments.engine.templates import TEMPLATE_BY_KEY
from segments.engine.windows import HOLIDAY_LABELS
from segments.membership.models import Segment
from segments.web.embedded import app_context, embedded_page

# A pk no segment has: reversed into the detail URL, then replaced by the saved segment's pk in the page.
DETAIL_PLACEHOLDER = 987654321


def _after_save_url(shop_domain: str) -> str:
    """Where a saved segment goes: its detail page, or home while that page does not exist."""
    try:
        url = reverse("segments:segment-detail", args=[DETAIL_PLACEHOLDER])
    except NoReverseMatch:
        url = reverse("segments:home")
    return f"{url}?shop={shop_domain}"


def _builder(request: HttpRequest, *, segment: Segment | None, template_key: str, unknown_template: str = ""):
    shop = request.shop
    config = {
        "segment": segment.pk if segment else None,
        "template": template_key,
        "tag_prefix": shop.tag_prefix,
        "tag": segment.tag if segment else "",
        "holidays": [{"key": key, "label": label} for key, label in HOLIDAY_LABELS.items()],
        "after_save_url": _after_save_url(shop.domain),
        "detail_placeholder": str(DETAIL_PLACEHOLDER),
    }
    context = {**app_context(request), "segment": segment, "config": config,
               "unknown_template": unknown_template,
               "home_url": f"{reverse('segments:home')}?shop={shop.domain}"}
    return render(request, "segments/builder.html", context)


@embedded_page
def segment_new(request: HttpRequest) -> HttpResponse:
    """`?template=<key>` starts from that template; without one, from a blank rule."""
    key = request.GET.get("template", "").strip()
    if key and key not in TEMPLATE_BY_KEY:
        return _builder(request, segment=None, template_key="", unknown_template=key[:60])
    return _builder(request, segment=None, template_key=key)


@embedded_page
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The segment's current version in the builder; another shop's segment is a 404."""
    segment = Segment.objects.filter(shop=request.shop, pk=pk).select_related("shop").first()
    if segment is None:
        raise Http404("No such segment.")
    return _builder(request, segment=segment, template_key="")
