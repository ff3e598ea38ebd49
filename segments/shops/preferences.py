"""The merchant's settings: tag prefix, holdout tag, drift policy, the JSON metafield, the nightly
recompute hour, the cart-abandonment delay, payload retention and the inactive-customer retention.

`shop_settings` reads them with what the settings page needs to explain them; `shop_settings_update`
checks what a partial change means for the shop's tags (nothing is saved when it is refused) and applies what it
implies: a new prefix or holdout tag rewrites every tag the app owns (the outbox's resync path, so
the diff decides what is actually called), a new abandonment delay rebuilds the metrics and every
segment over them, and turning the metafield on queues every member for a write.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db import transaction

from segments.engine.rules import Problem, SettingsError
from segments.engine.triggers import Trigger
from segments.shops.models import Shop
from segments.tags.models import DriftPolicy, holdout_tag_problems, tag_prefix_problems
from segments.tags.naming import shop_tag_conflicts
from segments.tags.plans import shop_tags_resync
from shopseg.enqueue import enqueue_on_commit

log = logging.getLogger(__name__)

# field: (type, low, high) for the numbers; the bounds are what the product supports, not Django's.
NUMBERS = {
    "recompute_hour": (0, 23),                   # shop-local hour of the nightly full recompute
    "checkout_abandon_minutes": (5, 7 * 24 * 60),
    "payload_retention_days": (1, 365),
    "inactive_customer_days": (0, 3650),         # 0: never; else at least OFF_OR_AT_LEAST
    "default_margin_percent": (0, 95),           # 0: none assumed for lines without a unit cost
}
# Numbers where 0 turns the feature off and anything else has a floor above the range's minimum: an
# inactivity period under a month would anonymise customers who simply buy monthly.
OFF_OR_AT_LEAST = {"inactive_customer_days": 30}
FIELDS = ("tag_prefix", "holdout_tag", "drift_policy", "tag_metafield", *NUMBERS)


def shop_settings(*, shop: Shop) -> dict:
    """The settings as the admin edits them, with their allowed values."""
    return {
        **{name: getattr(shop, name) for name in FIELDS},
        "choices": {"drift_policy": list(DriftPolicy.values)},
        "ranges": {name: _range(name, low, high) for name, (low, high) in NUMBERS.items()},
        "timezone": shop.iana_timezone,
    }


def _range(name: str, low: int, high: int) -> dict:
    """{min, max}, and `off` (0) for a number that 0 turns off: then min is the lowest value besides it."""
    if name in OFF_OR_AT_LEAST:
        return {"min": OFF_OR_AT_LEAST[name], "max": high, "off": low}
    return {"min": low, "max": high}


def _problems(shop: Shop, changes: Mapping[str, object]) -> list[Problem]:
    """What the prefix and holdout tag, as they would be, break: a holdout tag is checked against the
    prefix it would live under."""
    prefix = changes.get("tag_prefix", shop.tag_prefix)
    problems = [Problem("tag_prefix", p) for p in tag_prefix_problems(prefix)]
    if not problems:
        holdout = changes.get("holdout_tag", shop.holdout_tag)
        problems += [Problem("holdout_tag", p) for p in holdout_tag_problems(holdout, prefix)]
    return problems


def shop_settings_update(*, shop: Shop, changes: Mapping[str, object], author: str = "") -> dict:
    """Apply a partial change of settings, of the types and bounds the API's SettingsFieldsSerializer
    checks. Raises SettingsError (nothing saved) when the tags they imply cannot be used."""
    problems = _problems(shop, changes)
    if problems:
        raise SettingsError(problems)
    changed = {name: value for name, value in changes.items() if getattr(shop, name) != value}
    if not changed:
        return shop_settings(shop=shop)
    with transaction.atomic():
        locked = Shop.objects.select_for_update().get(pk=shop.pk)
        for name, value in changed.items():
            setattr(locked, name, value)
        conflicts = shop_tag_conflicts(shop=locked)
        if conflicts and ({"tag_prefix", "holdout_tag"} & set(changed)):
            raise SettingsError([Problem("holdout_tag" if "holdout_tag" in changed else "tag_prefix", c)
                                 for c in conflicts])
        locked.save(update_fields=[*changed, "updated_at"])
        if {"tag_prefix", "holdout_tag", "tag_metafield"} & set(changed):
            shop_tags_resync(shop=locked)
        if {"checkout_abandon_minutes", "default_margin_percent"} & set(changed):
            enqueue_on_commit("segments.metrics.tasks.customer_metrics_rebuild_task", locked.pk, Trigger.DEFINITION, "settings")
    log.info("shop %s settings changed by %s: %s", shop.pk, author or "merchant", ", ".join(sorted(changed)))
    for name, value in changed.items():
        setattr(shop, name, value)
    return shop_settings(shop=shop)
