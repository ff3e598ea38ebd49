"""Tag sync's own records: which tags the app owns (per shop and per customer), the audit of every
tag change it made or noticed, and the bulk mutations it runs. Written only by segments.tags.sync.

Tag naming contract: a segment's tag is the shop's prefix (default `seg:`) plus its handle; holdout
members get no segment tag, only the shop's optional holdout tag. Tags compare case-insensitively
(Shopify's rule), so every ledger row keeps the lower-cased `key` beside the spelling written.
"""
from __future__ import annotations

import re

from django.db import models
from django.utils import timezone

MAX_TAG_LENGTH = 255            # Shopify's limit per tag
MAX_TAGS_PER_CUSTOMER = 250     # Shopify's limit per customer
MAX_PREFIX_LENGTH = 40          # leaves room for a 60-character handle and a holdout suffix
HANDLE_PLACEHOLDER = "{handle}"
# A prefix is lower case (tags are case-insensitive, so one spelling avoids look-alikes), starts with
# a letter or digit, and uses characters that need no quoting in Liquid, URLs or Shopify searches.
PREFIX_RE = re.compile(r"[a-z0-9][a-z0-9:_\-./]*")
PREFIX_RULE = "the tag prefix is lower-case letters, digits and : _ - . / (starting with a letter or digit)"
# Characters Shopify refuses or mangles in a tag: the comma separates tags in REST and webhooks.
FORBIDDEN_TAG_CHARS = re.compile(r"[,\x00-\x1f\x7f]")


def tag_key(tag: str) -> str:
    """How Shopify compares tags: trimmed, case-insensitive."""
    return tag.strip().lower()


def tag_problems(tag: str) -> list[str]:
    """Why `tag` cannot be written to Shopify as it is (empty when it can)."""
    problems = []
    if not tag or not tag.strip():
        problems.append("a tag cannot be blank")
    if tag != tag.strip():
        problems.append("a tag cannot start or end with whitespace (Shopify trims it)")
    if len(tag) > MAX_TAG_LENGTH:
        problems.append(f"a tag is at most {MAX_TAG_LENGTH} characters")
    if FORBIDDEN_TAG_CHARS.search(tag):
        problems.append("a tag cannot contain commas or control characters")
    return problems


def tag_prefix_problems(prefix: str) -> list[str]:
    if not PREFIX_RE.fullmatch(prefix or ""):
        return [PREFIX_RULE]
    if len(prefix) > MAX_PREFIX_LENGTH:
        return [f"the tag prefix is at most {MAX_PREFIX_LENGTH} characters"]
    return []


def holdout_tag_problems(holdout_tag: str, prefix: str) -> list[str]:
    """A holdout tag must carry the shop's prefix, so its echo is recognised as ours too."""
    if not holdout_tag:
        return []
    problems = tag_problems(holdout_tag.replace(HANDLE_PLACEHOLDER, "x" * 60))
    if not holdout_tag.lower().startswith(prefix.lower()):
        problems.append(f"the holdout tag must start with the shop's tag prefix {prefix!r}")
    if holdout_tag != holdout_tag.lower():
        problems.append("the holdout tag is lower case")
    return problems


def holdout_tag_for(holdout_tag: str, handle: str) -> str:
    """The holdout tag of one segment: `seg:{handle}-control` per segment, or one shared tag."""
    return holdout_tag.replace(HANDLE_PLACEHOLDER, handle)


class DriftPolicy(models.TextChoices):
    REPAIR = "repair"      # a tag of ours removed by someone else is written again
    REPORT = "report"      # it is recorded in the audit and left as the merchant made it


class OwnedTag(models.Model):
    """The shop-level ledger: every tag name the app has written to this shop."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=MAX_TAG_LENGTH)              # tag_key(tag)
    tag = models.CharField(max_length=MAX_TAG_LENGTH)
    segment = models.ForeignKey("segments.Segment", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    holdout = models.BooleanField(default=False)
    first_written_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "key"], name="ownedtag_unique_per_shop")]


class LedgerState(models.TextChoices):
    PENDING = "pending"        # sent (or about to be): not confirmed yet; a replay resends it
    ACTIVE = "active"          # Shopify confirmed it: ours to remove when no longer wanted
    SUPPRESSED = "suppressed"  # someone removed it and the shop's drift policy is "report": not re-added
    BLOCKED = "blocked"        # wanted, but the customer has 250 tags: reported, retried when room appears


class CustomerTag(models.Model):
    """The customer-level ledger: a tag the app put on a customer. Only these are ever removed."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("segments.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=MAX_TAG_LENGTH)
    tag = models.CharField(max_length=MAX_TAG_LENGTH)
    segment = models.ForeignKey("segments.Segment", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    state = models.CharField(max_length=12, choices=LedgerState.choices, default=LedgerState.PENDING)
    sent_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "key"], name="customertag_unique")]


class TagSource(models.TextChoices):
    MEMBERSHIP = "membership"   # an entry into or exit from a segment
    DRIFT = "drift"             # someone else removed or added one of our tags
    RESYNC = "resync"           # settings changed (prefix, holdout tag) or a periodic check found a gap
    LIMIT = "limit"             # the 250-tag limit kept a tag off


class TagResult(models.TextChoices):
    APPLIED = "applied"               # Shopify confirmed the tagsAdd / tagsRemove
    CUSTOMER_GONE = "customer_gone"   # deleted in Shopify: dropped
    TAG_LIMIT = "tag_limit"           # the customer has 250 tags: not added
    INVALID = "invalid"               # the tag cannot be written (bad characters, too long, a clash)
    FAILED = "failed"                 # gave up after repeated errors
    REPORTED = "reported"             # drift noticed and left alone (policy "report", or not our tag)


class TagAudit(models.Model):
    """Every tag change the app made, or noticed and left alone: who, which tag, why, what happened."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey("segments.Customer", on_delete=models.CASCADE, related_name="+", db_index=False)
    customer_shopify_id = models.BigIntegerField()
    tag = models.CharField(max_length=MAX_TAG_LENGTH)
    add = models.BooleanField()
    segment = models.ForeignKey("segments.Segment", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    segment_version = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=TagSource.choices)
    result = models.CharField(max_length=16, choices=TagResult.choices)
    detail = models.CharField(max_length=255, blank=True)   # Shopify's userError, never personal data
    bulk = models.ForeignKey("segments.TagBulkOperation", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", db_index=False)
    at = models.DateTimeField(default=timezone.now)          # when the change was sent (or noticed)

    class Meta:
        indexes = [models.Index(fields=["shop", "id"], name="tagaudit_shop_id"),
                   models.Index(fields=["customer", "id"], name="tagaudit_customer_id")]


class BulkStatus(models.TextChoices):
    QUEUED = "queued"          # lines chosen, not sent yet
    RUNNING = "running"        # Shopify is running it
    COMPLETED = "completed"    # results applied
    FAILED = "failed"          # Shopify failed it; lines without a result went back to the queue


class TagBulkOperation(models.Model):
    """One bulk tagsAdd or tagsRemove over many customers (a large diff); `lines` maps each JSONL
    line to [customer pk, Shopify id, [tags]] so per-line results can be applied."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    add = models.BooleanField()
    status = models.CharField(max_length=10, choices=BulkStatus.choices, default=BulkStatus.QUEUED)
    shopify_gid = models.CharField(max_length=100, blank=True)
    lines = models.JSONField(default=list)
    line_count = models.PositiveIntegerField(default=0)
    applied = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "status"], name="tagbulk_shop_status")]
