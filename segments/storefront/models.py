"""The storefront as the web pixel sees it: the shop's pixel and its ingest key, visitors (one per
Shopify `clientId`), the raw events (a PostgreSQL table partitioned by day, kept for the shop's
retention) and their rollups per visitor and day, which outlive the raw events.

Pixel events are unauthenticated, low-trust signals: nothing here is ever read to change an order,
a customer or any other purchase fact.
"""
from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

DEFAULT_RETENTION_DAYS = 90


def new_ingest_key() -> str:
    return secrets.token_urlsafe(24)


class Pixel(models.Model):
    """The shop's web pixel: the key its events carry (public: it is in every storefront page, so it
    names the shop and is capped, it does not authenticate), and Shopify's id once activated."""

    shop = models.OneToOneField("segments.Shop", on_delete=models.CASCADE, related_name="pixel")
    ingest_key = models.CharField(max_length=64, unique=True, default=new_ingest_key)
    web_pixel_id = models.CharField(max_length=100, blank=True)          # gid://shopify/WebPixel/…
    activated_at = models.DateTimeField(null=True, blank=True)
    activation_error = models.CharField(max_length=500, blank=True)
    retention_days = models.PositiveIntegerField(default=DEFAULT_RETENTION_DAYS)   # raw events kept this long
    created_at = models.DateTimeField(default=timezone.now)


class IdentifiedBy(models.TextChoices):
    LOGIN = "login"          # the pixel saw a logged-in customer (init.data.customer)
    CHECKOUT = "checkout"    # a completed checkout named the order's customer


class Visitor(models.Model):
    """One browser as Shopify's `clientId` names it; joined to a customer once they log in or buy, and
    from then on their history (from before too) counts for the customer."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    client_id = models.CharField(max_length=64)
    # The customer's Shopify id as the pixel named it, kept until the store copy has the customer.
    customer_shopify_id = models.BigIntegerField(null=True, blank=True)
    customer = models.ForeignKey("segments.Customer", on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="visitors")
    identified_by = models.CharField(max_length=10, choices=IdentifiedBy.choices, blank=True)
    identified_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # Its segments (as an anonymous visitor) may have changed since: set by the rollup and the time
    # sweep, taken by segments.membership.visitors.
    dirty_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "client_id"], name="visitor_unique_client")]
        indexes = [models.Index(fields=["dirty_at"], condition=models.Q(dirty_at__isnull=False),
                                name="visitor_dirty")]


class StorefrontEvent(models.Model):
    """A raw pixel event. The table is partitioned by `day` (the event's UTC date): its migration makes
    it with SQL of its own (Django cannot declare partitions) while Django keeps the model's state, so
    test flushes and the ORM see it like any table; `event_id` (Shopify's) makes a repeated batch
    harmless."""

    id = models.BigAutoField(primary_key=True)
    shop = models.ForeignKey("segments.Shop", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    day = models.DateField()
    event_id = models.CharField(max_length=64)
    visitor = models.ForeignKey(Visitor, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    name = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    seq = models.IntegerField()
    url = models.TextField()
    referrer = models.TextField()
    data = models.JSONField()

    class Meta:
        db_table = "segments_storefrontevent"


class VisitorDay(models.Model):
    """What one visitor did on one day (the shop's calendar), rolled up from the raw events: counts
    and the day's landing pages, referring site and campaign; no personal data beyond the visitor and customer ids."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    events = models.PositiveIntegerField(default=0)
    sessions = models.PositiveIntegerField(default=0)          # 30 minutes without an event end one
    page_views = models.PositiveIntegerField(default=0)
    product_views = models.PositiveIntegerField(default=0)
    collection_views = models.PositiveIntegerField(default=0)
    searches = models.PositiveIntegerField(default=0)
    # Searches that meant to buy: a specific query, or one followed by a product view and an add to cart
    # in the same visit (segments.storefront.rollup).
    high_intent_searches = models.PositiveIntegerField(default=0)
    add_to_carts = models.PositiveIntegerField(default=0)
    cart_removals = models.PositiveIntegerField(default=0)
    cart_views = models.PositiveIntegerField(default=0)
    checkouts_started = models.PositiveIntegerField(default=0)
    checkouts_completed = models.PositiveIntegerField(default=0)
    buying_sessions = models.PositiveIntegerField(default=0)   # visits with a completed checkout
    custom = models.JSONField(default=dict)                    # custom event name -> count
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    landing_path = models.CharField(max_length=255, blank=True)          # the day's first visit's
    last_landing_path = models.CharField(max_length=255, blank=True)     # the day's last visit's
    # Where the day's last visit from elsewhere came from: another site, and its link's UTM parameters.
    referrer_host = models.CharField(max_length=255, blank=True)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["visitor", "day"], name="visitorday_unique")]
        indexes = [models.Index(fields=["shop", "day"], name="visitorday_shop_day")]


class VisitorDayDirty(models.Model):
    """A visitor-day whose rollup is behind its raw events (written by ingest, taken by the rollup)."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "visitor", "day"], name="visitordaydirty_unique")]
