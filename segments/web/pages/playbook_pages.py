"""Playbook pages: one segment's playbook as a form (saved through PUT /api/segments/<id>/playbook),
printable, and the list of every segment's playbook."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django.conf import settings

from segments.experiences.models import Channel, Offer, Playbook, PlaybookKpi
from segments.experiences.playbooks import playbook_get_or_default
from segments.experiences.presets import PRESETS
from segments.web.embedded import app_context, embedded_page
from segments.web.overview import segment_playbooks, segment_summary
from segments.web.pages.common import shop_segment


@embedded_page
def playbook(request: HttpRequest, pk: int) -> HttpResponse:
    segment = shop_segment(request, pk)
    book = playbook_get_or_default(segment=segment)
    context = {**app_context(request, "playbook"), "segment": segment, "playbook": book,
               "summary": segment_summary(segment=segment),
               "channels": [(value, label, value in book.channels) for value, label in Channel.choices],
               "kpis": PlaybookKpi.choices, "ideas_text": "\n".join(book.campaign_ideas),
               "presets": _preset_forms(book), "offers": Offer.objects.filter(segment=segment).order_by("key"),
               # Shopify's deep link that adds the app block to the home page in the theme editor.
               "theme_link": f"https://{request.shop.domain}/admin/themes/current/editor?template=index"
                             f"&addAppBlockId={settings.SHOPIFY_API_KEY}/segment-experience&target=newAppsSection"}
    return render(request, "segments/playbook.html", context)


def _preset_forms(book: Playbook) -> list[dict]:
    """Each preset's fields for the form, holding the playbook's values for the preset it has."""
    forms = []
    for key, preset in PRESETS.items():
        mine = book.experience if book.experience.get("preset") == key else {}
        fields = []
        for name, field in preset.fields.items():
            value = mine.get(name, field.default)
            if field.kind == "money":
                value = f"{value:.2f}".removesuffix(".00")
            elif field.kind == "campaigns":
                value = "\n".join(f"{c['campaign']} | {c['heading']} | {c['link']}" for c in value)
            fields.append({"name": name, "field": field, "value": value})
        forms.append({"key": key, "preset": preset, "selected": bool(mine), "fields": fields})
    return forms


@embedded_page
def playbooks(request: HttpRequest) -> HttpResponse:
    rows = [{"segment": s, "playbook": p, "channels": [Channel(c).label for c in p.channels if c in Channel.values],
             "kpi": PlaybookKpi(p.kpi).label if p.kpi in PlaybookKpi.values else p.kpi}
            for s, p in segment_playbooks(shop=request.shop)]
    return render(request, "segments/playbooks.html", {**app_context(request, "playbooks"), "rows": rows})
