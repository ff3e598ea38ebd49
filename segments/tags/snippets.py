"""Liquid a theme developer pastes to show something to a segment's members (and something else to
everyone else, logged-out visitors included), built from the segment's tag.

Shopify exposes a logged-in customer's tags to themes as `customer.tags`, an array of strings, and
Liquid's `contains` compares its elements exactly (case-sensitively): the snippet therefore names the
tag exactly as tag sync writes it (the shop's lower-case prefix and the segment's handle).
Holdout members never carry the segment tag, so they see the fallback, as a control group should.
"""
from __future__ import annotations

import re

from segments.membership.models import Segment
from segments.tags.models import holdout_tag_for

_UNSAFE = re.compile(r"[{}%]")   # nothing a name could use to close or open a Liquid tag early


def _label(text: str) -> str:
    return _UNSAFE.sub("", text).replace("\n", " ").strip()[:100]


def _literal(tag: str) -> str:
    """A Liquid string literal for a tag (tags we write have no quotes; be safe anyway)."""
    return f"'{tag}'" if "'" not in tag else f'"{tag}"'


def liquid_condition(tag: str) -> str:
    return f"customer and customer.tags contains {_literal(tag)}"


def segment_snippet(*, segment: Segment) -> str:
    """The if/else block for one segment: members first, then the fallback."""
    name, tag = _label(segment.name), segment.tag
    return (
        f"{{%- comment -%}}\n"
        f"  shopseg segment \"{name}\": customers in it carry the tag {tag}.\n"
        f"  Logged-out visitors, holdout members and everyone else see the fallback.\n"
        f"{{%- endcomment -%}}\n"
        f"{{%- if {liquid_condition(tag)} -%}}\n"
        f"  {{%- comment -%}} Shown to customers in \"{name}\". {{%- endcomment -%}}\n"
        f"  <div class=\"shopseg-{segment.handle}\">…</div>\n"
        f"{{%- else -%}}\n"
        f"  {{%- comment -%}} Fallback: everyone else, including logged-out visitors. {{%- endcomment -%}}\n"
        f"{{%- endif -%}}\n"
    )


def holdout_snippet(*, segment: Segment) -> str | None:
    """When the shop tags holdout members, the block that recognises this segment's control group."""
    if not segment.shop.holdout_tag:
        return None
    tag = holdout_tag_for(segment.shop.holdout_tag, segment.handle)
    return (
        f"{{%- if {liquid_condition(tag)} -%}}\n"
        f"  {{%- comment -%}} The holdout (control group) of \"{_label(segment.name)}\". {{%- endcomment -%}}\n"
        f"{{%- endif -%}}\n"
    )


def segment_snippets(*, segment: Segment) -> dict:
    """What GET /api/segments/<id>/snippet answers."""
    holdout = holdout_snippet(segment=segment)
    return {"segment": segment.pk, "tag": segment.tag, "liquid": segment_snippet(segment=segment),
            "holdout_tag": holdout_tag_for(segment.shop.holdout_tag, segment.handle) if holdout else None,
            "holdout_liquid": holdout}
