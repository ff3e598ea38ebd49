"""Why membership is evaluated again: the cause recorded on every entry and exit. It lives in the
engine, below every domain, because the store copy, the metrics, the shop's settings and the clock
all ask for a recompute and say why."""
from __future__ import annotations

from django.db import models


class Trigger(models.TextChoices):
    EVENT = "event"              # the customer's data changed (a webhook, the backfill, reconciliation)
    TIME = "time"                # a time window passed
    DEFINITION = "definition"    # the segment's rules or settings changed
    NIGHTLY = "nightly"          # the nightly full recompute (a correction)
    REMOVED = "removed"          # the customer was deleted in Shopify
