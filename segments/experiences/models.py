"""A segment's playbook: what the team does for its members, and the KPI it should move.

One per segment. Written only by segments.experiences.playbooks; the admin's playbook page and the
JSON API read and edit it through that service, and the measurement pages judge it against the
segment's holdout.
"""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class PlaybookKpi(models.TextChoices):
    """The KPIs a playbook can aim at; each is measured by the daily snapshots (models.kpis)."""
    CONVERSION = "conversion", "Conversion rate"
    REVENUE_PER_MEMBER = "revenue_per_member", "Revenue per member"
    AOV = "aov", "Average order value"
    REPEAT_RATE = "repeat_rate", "Repeat rate"
    RETENTION = "retention", "Members retained"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    ONSITE = "onsite", "On-site (theme)"
    PUSH = "push", "Push"
    ADS = "ads", "Paid ads"
    DIRECT_MAIL = "direct_mail", "Direct mail"


class Playbook(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.OneToOneField("segments.Segment", on_delete=models.CASCADE, related_name="playbook")
    goal = models.CharField(max_length=300, blank=True)
    message = models.TextField(max_length=2000, blank=True)
    channels = models.JSONField(default=list)                 # Channel values
    offer = models.CharField(max_length=300, blank=True)
    campaign_ideas = models.JSONField(default=list)           # short strings, in the team's order
    cadence = models.CharField(max_length=100, blank=True)    # e.g. "weekly, Tuesday morning"
    frequency_cap = models.PositiveSmallIntegerField(null=True, blank=True)   # messages per member per week
    owner = models.CharField(max_length=100, blank=True)
    kpi = models.CharField(max_length=24, choices=PlaybookKpi.choices, default=PlaybookKpi.CONVERSION)
    # The on-site experience picked for the segment: {} for none, else a preset and its fields
    # (segments.experiences.presets, which checks it).
    experience = models.JSONField(default=dict, blank=True)
    # A real discount code for the members, this percentage off (null: none); see offers.
    offer_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"playbook for segment {self.segment_id}"


class OfferState(models.TextChoices):
    LIVE = "live", "Live in Shopify"
    PENDING = "pending", "Waiting to be written to Shopify"
    REFUSED = "refused", "Refused by Shopify"
    ENDED = "ended", "Ended (deleted in Shopify)"


class NativeSegment(models.Model):
    """The Shopify customer segment that mirrors a segment's tag (`customer_tags CONTAINS '<tag>'`), so a
    discount can be limited to it. Held-out members carry no tag, so they are never in it. The row
    outlives its segment (segment set to null) until the sweep has deleted it from Shopify."""
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    segment = models.OneToOneField("segments.Segment", on_delete=models.SET_NULL, null=True, related_name="+")
    shopify_id = models.CharField(max_length=100)
    query = models.CharField(max_length=300)
    name = models.CharField(max_length=255)


class Offer(models.Model):
    """A discount code a playbook wants for its segment's members, and what Shopify holds for it.

    `spec` is what the playbook wants ({"kind": "percentage"|"free_shipping", "percent", "minimum"}),
    `synced` what was last written; the sweep writes the difference. An offer its playbook no longer
    wants (segment archived or deleted, offer removed) is deleted in Shopify and kept here as ended,
    so its code still counts in the segment's lift: a discount never outlives its playbook."""
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey("segments.Segment", on_delete=models.SET_NULL, null=True, related_name="offers")
    key = models.CharField(max_length=40)          # which of the playbook's offers: offers.OFFER_KEYS
    code = models.CharField(max_length=64)
    title = models.CharField(max_length=255)
    spec = models.JSONField(default=dict)
    synced = models.JSONField(null=True, blank=True)
    discount_id = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=10, choices=OfferState.choices, default=OfferState.PENDING)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "key"], name="offer_segment_key_unique")]


class StorefrontSync(models.Model):
    """A shop's storefront state to write to Shopify: offers (native segments and discounts) and the
    experiences metafield. Services set `wanted_at` in the transaction of the change; the sweep
    writes the shop when wanted_at is past published_at, so a change is never lost to a dead worker
    or broker and a burst of changes is written once."""
    shop = models.OneToOneField("segments.Shop", on_delete=models.CASCADE, related_name="+")
    wanted_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    error = models.CharField(max_length=500, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)    # of what was last written (publish._fingerprint)
