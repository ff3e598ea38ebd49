"""A shop that installed shopseg, its encrypted tokens, and the one-time OAuth state nonces."""
from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils import timezone

from segments.shops.crypto import EncryptedTextField


class ShopStatus(models.TextChoices):
    INSTALLED = "installed"
    NEEDS_REAUTH = "needs_reauth"      # refresh failed; the merchant must open the app again
    UNINSTALLED = "uninstalled"


class Shop(models.Model):
    domain = models.CharField(max_length=255, unique=True)          # validated *.myshopify.com
    shopify_gid = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    iana_timezone = models.CharField(max_length=64, default="UTC")
    plan_name = models.CharField(max_length=64, blank=True)
    shopify_plus = models.BooleanField(default=False)

    status = models.CharField(max_length=20, choices=ShopStatus.choices, default=ShopStatus.INSTALLED)
    status_reason = models.CharField(max_length=255, blank=True)
    scopes = models.CharField(max_length=500, blank=True)           # as granted, comma-separated
    # When the scopes held, and the time zone, currency and plan held, were true: a grant or token
    # refresh, an app/scopes_update, a shop/update (segments.shops.details orders them).
    scopes_at = models.DateTimeField(null=True, blank=True)
    details_at = models.DateTimeField(null=True, blank=True)
    access_token = EncryptedTextField(blank=True, null=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = EncryptedTextField(blank=True, null=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)

    # Merchant settings that the mirror needs (the admin's settings page edits them).
    payload_retention_days = models.PositiveIntegerField(default=30)   # raw webhook payloads kept this long
    # A customer with no order, checkout or profile change for this long is anonymised in the store
    # copy (segments.privacy.compliance); 0: never.
    inactive_customer_days = models.PositiveIntegerField(default=730)
    checkout_abandon_minutes = models.PositiveIntegerField(default=60)  # a checkout not completed by then is abandoned
    recompute_hour = models.PositiveSmallIntegerField(default=3)        # local hour of the nightly full recompute
    # The margin assumed for a line whose variant has no unit cost in Shopify (0: none assumed, so a
    # customer with such a line has no gross profit); whole percent of the line's revenue.
    default_margin_percent = models.PositiveSmallIntegerField(default=0)

    # Tag sync (segments.tags.sync; contract in models/tags.py and the README's "Tag sync").
    tag_prefix = models.CharField(max_length=40, default="seg:")        # segment tags are prefix + handle
    holdout_tag = models.CharField(max_length=255, blank=True)          # "" none; "seg:{handle}-control" per segment
    drift_policy = models.CharField(max_length=10, default="repair")    # models.tags.DriftPolicy: repair | report
    tag_metafield = models.BooleanField(default=False)                  # also write the JSON segments metafield

    installed_at = models.DateTimeField(default=timezone.now)
    # The latest OAuth grant (install, reinstall, re-authorization): an app/uninstalled that happened
    # before it belongs to an earlier installation and must not undo this one.
    granted_at = models.DateTimeField(default=timezone.now)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_active(self) -> bool:
        return self.status == ShopStatus.INSTALLED

    @property
    def granted_scopes(self) -> set[str]:
        return {s for s in self.scopes.split(",") if s}

    @property
    def scope_list(self) -> list[str]:
        return sorted(self.granted_scopes)

    def has_scope(self, scope: str) -> bool:
        granted = self.granted_scopes
        return scope in granted or scope.replace("read_", "write_", 1) in granted

    def token_fresh(self, skew: dt.timedelta, now: dt.datetime | None = None) -> bool:
        if not self.access_token:
            return False
        if self.access_token_expires_at is None:     # legacy non-expiring token
            return True
        return self.access_token_expires_at - skew > (now or timezone.now())


class OAuthState(models.Model):
    """A single-use `state` nonce, bound to the browser that started the install."""

    nonce = models.CharField(max_length=64, unique=True)
    shop = models.CharField(max_length=255)
    browser_key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]
