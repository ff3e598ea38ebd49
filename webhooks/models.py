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
    webhook_id = models.CharField(max_length=100)                  # X-Shopify-Webhook-Id: the dedupe key
    event_id = models.CharField(max_length=100, blank=True)        # shared by one action's deliveries
    shop_domain = models.CharField(max_length=255)
    topic = models.CharField(max_length=100)
    api_version = models.CharField(max_length=20, blank=True)
    api_deprecated_reason = models.CharField(max_length=255, blank=True, default="")   # X-Shopify-API-Deprecated-Reason
    triggered_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField()
    # The customer the body names (its Shopify id), read by the recording statement; deliveries
    # about one customer go to one drain (webhooks.services.FAIR_BATCH_SQL). None: no customer.
    customer_key = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    status = models.CharField(max_length=20, choices=EventStatus.choices, default=EventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Declared here rather than as unique=True / db_index=True, which on PostgreSQL also build a
        # `varchar_pattern_ops` index per column for LIKE queries nobody makes: two index inserts
        # less per delivery on the endpoint's hot path (BENCHMARKS.md, "Webhook endpoint").
        constraints = [models.UniqueConstraint(fields=["webhook_id"], name="webhooks_event_webhook_id_uniq")]
        # The pending deliveries by shop, for the drain's round-robin across shops (and any check
        # for pending work); partial, so it holds only what waits, and the endpoint still
        # maintains two indexes per delivery.
        indexes = [models.Index(fields=["shop_domain", "id"], condition=models.Q(status="pending"),
                                name="webhooks_event_pending_idx"),
                   models.Index(fields=["shop_domain"], name="webhooks_event_shop_idx")]

    def __str__(self) -> str:
        return f"{self.topic} {self.webhook_id}"
