"""The on-site experiences a merchant picks in a playbook: four presets, each a set of fields with
defaults and bounds. A playbook's `experience` is `{}` (none) or `{"preset": key, <field>: value…}`;
`experience_clean` is the one place that checks it, for the API and the admin's form alike.

The theme shows an experience through the "Segment experience" app block (extensions/shopseg-theme),
which reads it from the app-data metafield the app publishes (segments.experiences.publish): members
of the segment, by their tag, see the member side; everyone else, held-out members (who carry no tag)
and visitors the app does not know, sees the default side.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")      # a collection's handle
CAMPAIGN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")   # a utm_campaign value
MAX_CAMPAIGNS = 10
TEXT_MOST = 200


@dataclass(frozen=True)
class Field:
    kind: str          # text | link | collection | money | percent | campaigns
    label: str
    default: Any
    help: str = ""
    low: float = 0     # money and percent bounds
    high: float = 0


@dataclass(frozen=True)
class Preset:
    label: str
    summary: str
    fields: dict[str, Field]


def _text(label: str, default: str, help: str = "") -> Field:
    return Field("text", label, default, help)


PRESETS: dict[str, Preset] = {
    "vip_hero": Preset(
        "VIP hero", "Your best customers see new arrivals where everyone else sees the discount banner.", {
            "heading": _text("Members' heading", "New arrivals, first for our VIPs"),
            "text": _text("Members' text", "The season's newest pieces, before anyone else."),
            "collection": Field("collection", "New arrivals collection (handle)", "all",
                                "Its first four products are shown to members."),
            "default_heading": _text("Everyone else's heading", "Winter sale: 20% off"),
            "default_text": _text("Everyone else's text", "On everything in store, while it lasts."),
            "link": Field("link", "Button link (a path on your store)", "/collections/all"),
        }),
    "cart_value": Preset(
        "Cart abandoners by cart value", "Shoppers who left a cart get free shipping on a large cart, a "
        "percentage off a small one; both are real discount codes limited to the segment.", {
            "threshold": Field("money", "Free shipping from (cart value)", 100, "In the store's currency.",
                               low=1, high=100_000),
            "percent": Field("percent", "Discount below it (%)", 10, low=1, high=90),
            "above_heading": _text("Heading above the threshold", "Free shipping on your cart",
                                   "{threshold} and {percent} are replaced by the values above."),
            "below_heading": _text("Heading below the threshold", "{percent}% off your cart"),
            "default_heading": _text("Everyone else's heading", "", "Leave empty to show nothing."),
        }),
    "category": Preset(
        "Category loyalists", "Shoppers loyal to one category land on it: a heading, its products and "
        "a link into it.", {
            "collection": Field("collection", "Their category (collection handle)", "", "e.g. outerwear"),
            "heading": _text("Members' heading", "Back for more? The latest in your favourite category"),
            "default_heading": _text("Everyone else's heading", "", "Leave empty to show nothing."),
        }),
    "utm_campaign": Preset(
        "Ad-driven visitors", "Visitors who came from an ad see the hero and headline of the campaign "
        "they clicked (its utm_campaign).", {
            "campaigns": Field("campaigns", "Campaigns", [], "One per line: utm_campaign | heading | link"),
            "heading": _text("Members' heading for any other campaign", "Welcome! Here is what you came for"),
            "default_heading": _text("Everyone else's heading", "", "Leave empty to show nothing."),
        }),
}


class ExperienceError(ValueError):
    """`problems`: {field: message}, `preset` for the choice itself."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def _clean_field(field: Field, value: Any) -> Any:
    if field.kind in ("text", "link"):
        if not isinstance(value, str) or "\x00" in value or len(value.strip()) > TEXT_MOST:
            raise ValueError(f"must be text of at most {TEXT_MOST} characters")
        value = value.strip()
        if field.kind == "link" and value and not re.fullmatch(r"/[^\s\\]*", value):
            raise ValueError("must be a path on your store, starting with /")
        return value
    if field.kind == "collection":
        if not isinstance(value, str) or not HANDLE.fullmatch(value.strip().lower()):
            raise ValueError("must be a collection handle: lower-case letters, digits and dashes")
        return value.strip().lower()
    if field.kind in ("money", "percent"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not field.low <= value <= field.high:
            raise ValueError(f"must be a number from {field.low:g} to {field.high:g}")
        return round(float(value), 2) if field.kind == "money" else int(value)
    return _clean_campaigns(value)


def _clean_campaigns(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > MAX_CAMPAIGNS:
        raise ValueError(f"must be a list of at most {MAX_CAMPAIGNS} campaigns")
    cleaned, seen = [], set()
    for item in value:
        if not isinstance(item, dict) or set(item) - {"campaign", "heading", "link"}:
            raise ValueError("each campaign is {campaign, heading, link}")
        campaign = item.get("campaign")
        if not isinstance(campaign, str) or not CAMPAIGN.fullmatch(campaign.strip()):
            raise ValueError("a campaign's utm_campaign is letters, digits and _.+- (up to 100)")
        if campaign.strip().lower() in seen:
            raise ValueError(f"campaign {campaign.strip()!r} is listed twice")
        seen.add(campaign.strip().lower())
        cleaned.append({"campaign": campaign.strip(),
                        "heading": _clean_field(Field("text", "", ""), item.get("heading", "")),
                        "link": _clean_field(Field("link", "", ""), item.get("link", ""))})
    return cleaned


def experience_clean(value: Any) -> dict[str, Any]:
    """The experience as stored: `{}` for none, else the preset with every field, given or default.
    Raises ExperienceError naming each field that is wrong."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise ExperienceError({"preset": "must be an object with a preset, or {} for none"})
    preset = PRESETS.get(value.get("preset"))
    if preset is None:
        raise ExperienceError({"preset": f"must be one of {', '.join(PRESETS)}"})
    unknown = set(value) - {"preset", *preset.fields}
    problems = {key: "is not a field of this preset" for key in sorted(unknown)}
    cleaned: dict[str, Any] = {"preset": value["preset"]}
    for key, field in preset.fields.items():
        try:
            cleaned[key] = _clean_field(field, value.get(key, field.default))
        except ValueError as error:
            problems[key] = f"{field.label} {error}"
    if value["preset"] == "category" and not problems.get("collection") and not cleaned["collection"]:
        problems["collection"] = "Name the category's collection (its handle)"
    if problems:
        raise ExperienceError(problems)
    return cleaned


def experience_texts(experience: dict[str, Any]) -> dict[str, Any]:
    """The experience with {threshold} and {percent} filled in its texts, as the theme shows it."""
    if experience.get("preset") != "cart_value":
        return dict(experience)
    values = {"threshold": f"{experience['threshold']:,.2f}".removesuffix(".00"), "percent": str(experience["percent"])}
    return {key: (re.sub(r"\{(threshold|percent)\}", lambda m: values[m.group(1)], value)
                  if isinstance(value, str) else value) for key, value in experience.items()}
