"""What every page view shares: the shop's segment or a 404, and query parameters read safely."""
from __future__ import annotations

from django.http import Http404, HttpRequest

from segments.membership.models import Segment


def shop_segment(request: HttpRequest, pk: int) -> Segment:
    """The authenticated shop's segment; another shop's is a 404, like one that does not exist."""
    segment = Segment.objects.filter(shop=request.shop, pk=pk).select_related("shop", "group").first()
    if segment is None:
        raise Http404("No such segment")
    return segment


def query_int(request: HttpRequest, name: str, default: int, *, low: int = 0, high: int = 2**63 - 1) -> int:
    """A whole-number query parameter; anything else (a hand-edited URL) reads as the default."""
    raw = request.GET.get(name, "")
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else default
