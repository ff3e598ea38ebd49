"""Settings: the shop's settings as segments.shops.preferences reads them, edited through
PATCH /api/settings from the page's script."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from segments.mirror.selectors import variant_cost_coverage
from segments.shops.preferences import shop_settings
from segments.web.embedded import app_context, embedded_page


@embedded_page
def settings_page(request: HttpRequest) -> HttpResponse:
    values = shop_settings(shop=request.shop)
    context = {**app_context(request, "settings"), "values": values, "costs": variant_cost_coverage(shop=request.shop),
               "hours": [(h, f"{h:02d}:00") for h in range(values["ranges"]["recompute_hour"]["min"],
                                                           values["ranges"]["recompute_hour"]["max"] + 1)]}
    return render(request, "segments/settings.html", context)
