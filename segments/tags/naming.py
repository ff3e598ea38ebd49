"""Tag names: a segment's tag from the shop's prefix and its handle, and the problems a shop's
tag settings or a new segment's handle would cause (invalid, too long, clashing)."""
from __future__ import annotations

import logging

from segments.membership.models import Segment
from segments.shops.models import Shop
from segments.tags.models import (
    DriftPolicy, holdout_tag_for, holdout_tag_problems, tag_key, tag_prefix_problems, tag_problems,
)

log = logging.getLogger(__name__)


def shop_tag_settings_problems(*, shop: Shop) -> list[str]:
    """What is wrong with the shop's tag settings (the admin's settings page shows it)."""
    return tag_prefix_problems(shop.tag_prefix) + holdout_tag_problems(shop.holdout_tag, shop.tag_prefix) + (
        [] if shop.drift_policy in DriftPolicy.values else [f"drift policy is one of {', '.join(DriftPolicy.values)}"])


def segment_tag(*, shop: Shop, handle: str) -> str:
    return f"{shop.tag_prefix}{handle}"


def segment_tag_problems(*, shop: Shop, handle: str, exclude_segment_id: int | None = None) -> list[str]:
    """Whether a handle gives a usable tag: Shopify's characters and length, and unique in the shop
    (case-insensitively) among segment tags and holdout tags."""
    tag = segment_tag(shop=shop, handle=handle)
    problems = tag_problems(tag)
    taken = {key: name for key, name in _shop_tags(shop, exclude_segment_id=exclude_segment_id)}
    if tag_key(tag) in taken:
        problems.append(f"the tag {tag!r} is already used by {taken[tag_key(tag)]}")
    return problems


def _shop_tags(shop: Shop, exclude_segment_id: int | None = None) -> list[tuple[str, str]]:
    """(key, whose) for every tag the shop's segments write."""
    tags = []
    for pk, handle, name in Segment.objects.filter(shop=shop).values_list("pk", "handle", "name"):
        if pk == exclude_segment_id:
            continue
        tags.append((tag_key(segment_tag(shop=shop, handle=handle)), f"segment {name!r}"))
        if shop.holdout_tag:
            tags.append((tag_key(holdout_tag_for(shop.holdout_tag, handle)), f"the holdout of segment {name!r}"))
    return tags


def shop_tag_conflicts(*, shop: Shop) -> list[str]:
    """Tags two segments (or a segment and a holdout) would share: a theme could not tell them apart."""
    seen: dict[str, str] = {}
    conflicts = []
    for key, whose in _shop_tags(shop):
        if key in seen and seen[key] != whose:
            conflicts.append(f"{key!r} is written for both {seen[key]} and {whose}")
        seen.setdefault(key, whose)
    return conflicts
