"""Segments: versioned rule documents, their membership with history, exclusive groups, and the tag
changes membership produces for tag sync. Membership is written only by segments.membership.recompute."""
from __future__ import annotations

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from segments.engine.triggers import Trigger

MAX_HOLDOUT_PERCENT = 50


def _new_salt() -> str:
    return secrets.token_hex(16)


class SegmentStatus(models.TextChoices):
    ACTIVE = "active"          # evaluated, members tagged
    PAUSED = "paused"          # membership frozen as it was; nothing evaluated
    ARCHIVED = "archived"      # no members; kept for its history


class ExclusiveGroup(models.Model):
    """A ladder of segments (Gold > Silver > Bronze): a customer is in at most one, the highest
    priority it qualifies for."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="segment_groups")
    name = models.CharField(max_length=100)
    # A customer keeps their tier at least this many days before moving down (0: never held).
    hysteresis_days = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(365)])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "name"], name="segment_group_unique_per_shop")]


class Segment(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=100)
    handle = models.SlugField(max_length=60)               # the tag's suffix: seg:<handle>
    description = models.CharField(max_length=500, blank=True)
    template = models.CharField(max_length=60, blank=True)  # the template it started from, if any
    status = models.CharField(max_length=10, choices=SegmentStatus.choices, default=SegmentStatus.ACTIVE)
    group = models.ForeignKey(ExclusiveGroup, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="segments")
    priority = models.IntegerField(default=0)              # within its group: higher wins
    holdout_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(MAX_HOLDOUT_PERCENT)])
    holdout_salt = models.CharField(max_length=32, default=_new_salt)   # fixed for the segment's life

    current_version = models.PositiveIntegerField(default=1)   # the version members should reflect
    computed_version = models.PositiveIntegerField(null=True, blank=True)   # what they do reflect
    compute_requested_at = models.DateTimeField(null=True, blank=True)
    last_computed_at = models.DateTimeField(null=True, blank=True)
    compute_error = models.TextField(blank=True)
    member_count = models.IntegerField(default=0)
    holdout_count = models.IntegerField(default=0)
    visitor_count = models.IntegerField(default=0)           # anonymous visitors in it (VisitorMembership)
    visitor_holdout_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "handle"], name="segment_handle_unique_per_shop")]
        indexes = [models.Index(fields=["shop", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def tag(self) -> str:
        """The tag members get in Shopify: the shop's prefix and the handle (`seg:vip`)."""
        return f"{self.shop.tag_prefix}{self.handle}"

    @property
    def computing(self) -> bool:
        """True while membership lags the current version (a recompute is queued or running)."""
        return self.status == SegmentStatus.ACTIVE and self.computed_version != self.current_version


class SegmentVersion(models.Model):
    """One edit of a segment's rules, kept forever: who, why, what changed."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    rules = models.JSONField()                   # the canonical rule document (rules.RuleSet.to_document)
    summary = models.TextField(blank=True)       # rules.describe(): the rules in a sentence
    diff = models.JSONField(default=list)        # readable changes from the previous version
    author = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "number"], name="segment_version_unique")]


class Membership(models.Model):
    """A customer currently in a segment (holdout members included, flagged)."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    customer = models.ForeignKey("segments.Customer", on_delete=models.CASCADE, related_name="memberships",
                                 db_index=False)
    holdout = models.BooleanField(default=False)
    entered_at = models.DateTimeField()
    version = models.PositiveIntegerField()       # the segment version that let the customer in

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "customer"], name="membership_unique")]
        # By customer alone: a customer's deletion (redact, shop erasure) checks this foreign key
        # per row, and without a leading customer column each check would scan the table.
        indexes = [models.Index(fields=["customer"], name="membership_customer")]


class VisitorMembership(models.Model):
    """An anonymous visitor (a browser no customer is known for) currently in a segment whose rules read
    browsing (segments.membership.visitors): what the storefront shows logged-out shoppers."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+", db_index=False)
    visitor = models.ForeignKey("segments.Visitor", on_delete=models.CASCADE, related_name="+", db_index=False)
    holdout = models.BooleanField(default=False)
    entered_at = models.DateTimeField()

    class Meta:
        # By visitor first: the storefront asks for one visitor's segments.
        constraints = [models.UniqueConstraint(fields=["visitor", "segment"], name="visitormembership_unique")]
        indexes = [models.Index(fields=["segment"], name="visitormembership_segment")]


class MembershipEvent(models.Model):
    """History: one row per entry into or exit from a segment."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="events", db_index=False)
    customer = models.ForeignKey("segments.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    entered = models.BooleanField()               # True: entry, False: exit
    holdout = models.BooleanField(default=False)
    at = models.DateTimeField()
    version = models.PositiveIntegerField()
    trigger = models.CharField(max_length=12, choices=Trigger.choices)
    cause = models.CharField(max_length=100, blank=True)   # e.g. the webhook topic; never personal data

    class Meta:
        indexes = [models.Index(fields=["segment", "at"], name="membershipevent_segment_at"),
                   models.Index(fields=["customer", "at"], name="membershipevent_customer_at")]


class TagChange(models.Model):
    """The tag sync outbox: a tag membership wants added to or removed from a customer in Shopify.

    Written by segments.membership.recompute (one row per non-holdout entry or exit, and per holdout
    entry or exit when the shop has a holdout tag) and by drift and resync checks; consumed by
    segments.tags.sync, which marks a row processed only after Shopify confirmed the
    customer's diff (a crash before that replays it; tagsAdd and tagsRemove are set operations).
    Columns the raw INSERT does not name have database defaults.
    """

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey("segments.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    tag = models.CharField(max_length=255)
    add = models.BooleanField()
    created_at = models.DateTimeField()
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                db_index=False)
    version = models.PositiveIntegerField(null=True, blank=True)        # the segment version that decided it
    source = models.CharField(max_length=12, db_default="membership")   # models.tags.TagSource
    processed_at = models.DateTimeField(null=True, blank=True)           # NULL: still to do
    result = models.CharField(max_length=16, blank=True, db_default="")  # models.tags.TagResult, or "noop"
    attempts = models.PositiveSmallIntegerField(db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)        # backoff after an error
    last_error = models.CharField(max_length=255, blank=True, db_default="")
    bulk = models.ForeignKey("segments.TagBulkOperation", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", db_index=False)          # claimed by a running bulk mutation

    class Meta:
        indexes = [models.Index(fields=["shop", "id"], name="tagchange_shop_id"),
                   models.Index(fields=["customer"], name="tagchange_customer"),
                   models.Index(fields=["shop", "id"], name="tagchange_pending",
                                condition=models.Q(processed_at__isnull=True))]


class FlowTrigger(models.Model):
    """Shopify Flow's outbox: a customer's entry into or exit from a segment, sent as the app's
    "Customer entered segment" / "Customer left segment" trigger (segments.experiences.flow).

    Written by segments.membership.recompute in the transaction of the change, only for changes a
    customer's own doings caused (incremental runs: an order, a visit, time passing), never for a
    merchant's edit, a backfill or the nightly correction, and never for held-out members. A row is
    sent once: marked in the transaction that holds its lock while Shopify answers.
    """

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey("segments.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    entered = models.BooleanField()
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)           # NULL: still to send
    result = models.CharField(max_length=12, blank=True, db_default="")  # sent | capped | refused | failed
    attempts = models.PositiveSmallIntegerField(db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)        # backoff after an error
    last_error = models.CharField(max_length=255, blank=True, db_default="")

    class Meta:
        indexes = [models.Index(fields=["shop", "id"], name="flowtrigger_pending",
                                condition=models.Q(processed_at__isnull=True)),
                   models.Index(fields=["customer", "segment", "created_at"], name="flowtrigger_customer")]


class SegmentClock(models.Model):
    """Per shop: how far the time sweep has looked for customers whose windows passed."""

    shop = models.OneToOneField("segments.Shop", on_delete=models.CASCADE, related_name="segment_clock")
    swept_until = models.DateTimeField()
