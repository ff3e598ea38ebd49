"""Every webhook delivery Shopify made to us, recorded before it is processed (an outbox)."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class EventStatus(models.TextChoices):
    PENDING = "pending"        # recorded, waiting for a worker
    PROCESSED = "processed"
    IGNORED = "ignored"        # unknown topic, or a shop we no longer serve
    FAILED = "failed"          # kept failing; visible to the merchant and the operator


class WebhookEvent(models.Model):
    webhook_id = models.CharField(max_length=100, unique=True)     # X-Shopify-Webhook-Id: the dedupe key
    event_id = models.CharField(max_length=100, blank=True)        # shared by one action's deliveries
    shop_domain = models.CharField(max_length=255, db_index=True)
    topic = models.CharField(max_length=100)
    api_version = models.CharField(max_length=20, blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    status = models.CharField(max_length=20, choices=EventStatus.choices, default=EventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"
