"""Playbooks: what the team does for a segment's members, edited with checks on every field, and the
printable Markdown document the team shares."""
from __future__ import annotations

import re
from collections.abc import Mapping

from django.db import transaction

from segments.experiences.models import Channel, Playbook, PlaybookKpi
from segments.experiences.presets import PRESETS, experience_clean
from segments.experiences.publish import storefront_wanted
from segments.membership.models import Segment, SegmentVersion

MAX_CAMPAIGN_IDEAS = 20
MAX_IDEA_LENGTH = 200
FREQUENCY_CAP_RANGE = (1, 50)
# Free-text fields and their longest value (the model's column sizes).
TEXT_FIELDS = {"goal": 300, "message": 2000, "offer": 300, "cadence": 100, "owner": 100}
FIELDS = (*TEXT_FIELDS, "channels", "campaign_ideas", "frequency_cap", "kpi", "experience", "offer_percent")
OFFER_PERCENT_RANGE = (1, 90)
# What the storefront shows or Shopify holds for the playbook: a change is written there (publish).
STOREFRONT_FIELDS = {"experience", "offer_percent"}


def playbook_get_or_default(*, segment: Segment) -> Playbook:
    """The segment's playbook, or an unsaved one with the defaults when the team has not written it yet."""
    found = Playbook.objects.filter(segment=segment).first()
    return found if found is not None else Playbook(shop_id=segment.shop_id, segment=segment)


def playbook_update(*, segment: Segment, changes: Mapping[str, object], author: str) -> Playbook:
    """Set the given fields of the segment's playbook (created on first write); the others keep their values.

    `changes` are values of the fields' types and bounds, as the API's PlaybookFieldsSerializer checks them.
    """
    with transaction.atomic():
        # The segment row serialises two first writes, which would otherwise both try to insert.
        Segment.objects.select_for_update().filter(pk=segment.pk).values("pk").get()
        playbook = Playbook.objects.filter(segment=segment).first() or Playbook(shop_id=segment.shop_id,
                                                                                segment=segment)
        for key, value in changes.items():
            if key in TEXT_FIELDS:
                value = value.strip()
            elif key == "channels":
                value = list(dict.fromkeys(value))      # one mention each, in the team's order
            elif key == "campaign_ideas":
                value = [idea.strip() for idea in value]
            elif key == "experience":
                value = experience_clean(value)
            setattr(playbook, key, value)
        playbook.updated_by = author[:255]
        playbook.save()
        if STOREFRONT_FIELDS & set(changes):
            storefront_wanted(shop_id=segment.shop_id)
    return playbook


def playbook_row(*, playbook: Playbook) -> dict:
    """The playbook as JSON-ready data (`saved` is false for the defaults of an unwritten playbook)."""
    return {"segment": playbook.segment_id, "saved": playbook.pk is not None,
            **{key: getattr(playbook, key) for key in FIELDS},
            "updated_by": playbook.updated_by, "updated_at": playbook.updated_at if playbook.pk else None}


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    """Merchant text shown as written: Markdown and HTML characters escaped, so it cannot restyle the page."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def playbook_markdown(*, playbook: Playbook) -> str:
    """The playbook as a printable, shareable Markdown document."""
    segment = playbook.segment
    version = SegmentVersion.objects.filter(segment=segment, number=segment.current_version).first()
    summary = version.summary if version is not None else ""
    none = "_not set_"
    channels = ", ".join(Channel(c).label for c in playbook.channels) or none
    cap = (f"{playbook.frequency_cap} message{'s' if playbook.frequency_cap != 1 else ''} per member per week"
           if playbook.frequency_cap else "no cap")
    lines = [
        f"# Playbook: {_md(segment.name)}", "",
        f"- **Tag:** `{segment.tag}`",
        f"- **Who:** {_md(summary) or none}",
        f"- **Members:** {segment.member_count:,}" + (f" (plus {segment.holdout_count:,} held out)"
                                                      if segment.holdout_count else ""),
        f"- **Status:** {segment.status}", "",
        "## Goal", "", _md(playbook.goal) or none, "",
        "## Message", "", _md(playbook.message) or none, "",
        "## Channels", "", channels, "",
        "## Offer", "", _md(playbook.offer) or none, "",
        *([f"- **Discount code:** {playbook.offer_percent}% off for members", ""] if playbook.offer_percent else []),
        "## On-site experience", "",
        (PRESETS[playbook.experience["preset"]].label if playbook.experience else none), "",
        "## Campaign ideas", "",
        *([f"{i}. {_md(idea)}" for i, idea in enumerate(playbook.campaign_ideas, 1)] or [none]), "",
        "## Cadence", "",
        f"- **Cadence:** {_md(playbook.cadence) or none}",
        f"- **Frequency cap:** {cap}", "",
        "## Ownership and measurement", "",
        f"- **Owner:** {_md(playbook.owner) or none}",
        f"- **KPI:** {PlaybookKpi(playbook.kpi).label}",
    ]
    if playbook.pk is not None:
        lines.append(f"- **Last edited:** {playbook.updated_at:%Y-%m-%d %H:%M} UTC"
                     + (f" by {_md(playbook.updated_by)}" if playbook.updated_by else ""))
    return "\n".join(lines) + "\n"
