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
    updated_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"playbook for segment {self.segment_id}"
