"""The store mirror: what shopseg knows of each shop's customers, orders, checkouts, carts, products.

Rows are keyed by (shop, Shopify id) and carry Shopify's own `updated_at`, so a late or duplicated
delivery never rolls a row back. Money is in the shop's currency (the `*_set.shop_money` amounts).
"""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class MarketingState(models.TextChoices):
    SUBSCRIBED = "subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PENDING = "pending"
    REDACTED = "redacted"
    INVALID = "invalid"
    UNKNOWN = "unknown"


class Device(models.TextChoices):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    POS = "pos"
    UNKNOWN = "unknown"


class ShippingSpeed(models.TextChoices):
    STANDARD = "standard"
    EXPEDITED = "expedited"      # express, overnight, priority, next-day ...
    PICKUP = "pickup"
    NONE = "none"


class Customer(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="customers")
    shopify_id = models.BigIntegerField()
    email = models.CharField(max_length=320, blank=True, db_index=False)   # lower-cased
    phone = models.CharField(max_length=40, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=20, blank=True)
    email_marketing = models.CharField(max_length=20, choices=MarketingState.choices,
                                       default=MarketingState.UNKNOWN)
    sms_marketing = models.CharField(max_length=20, choices=MarketingState.choices, default=MarketingState.UNKNOWN)
    # Consent topics carry their own consent_updated_at and no customer updated_at: each channel
    # keeps the time of the state it holds, so a late consent delivery cannot roll it back.
    email_consent_at = models.DateTimeField(null=True, blank=True)
    sms_consent_at = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=list)              # as last seen in Shopify (ours and the merchant's)
    # {lower-cased tag: occurredAt} of the latest customer.tags_added/_removed applied per tag: an
    # older event about that tag arriving later (a retried delivery) is dropped, not re-applied.
    # NULL until the first one (rows are also inserted by raw SQL that does not name it).
    tag_events_at = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(null=True)       # Shopify's
    updated_at = models.DateTimeField(null=True)       # Shopify's: the out-of-order guard
    deleted_at = models.DateTimeField(null=True, blank=True)
    merged_into_id = models.BigIntegerField(null=True, blank=True)   # Shopify id of the surviving customer
    # Set when something this customer did changed; the segment engine clears it after recompute.
    dirty_at = models.DateTimeField(null=True, blank=True)
    # What made it dirty, set with dirty_at: a webhook topic ("orders/create"), "backfill",
    # "reconcile"; "" when unknown. Never personal data.
    dirty_cause = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "shopify_id"], name="customer_unique_per_shop")]
        indexes = [models.Index(fields=["shop", "email"]), models.Index(fields=["shop", "dirty_at"])]


class Product(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="products")
    shopify_id = models.BigIntegerField()
    title = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    tags = models.JSONField(default=list)
    updated_at = models.DateTimeField(null=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "shopify_id"], name="product_unique_per_shop")]


class Order(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="orders")
    shopify_id = models.BigIntegerField()
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    email = models.CharField(max_length=320, blank=True)    # lower-cased; attaches guest orders later
    name = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    financial_status = models.CharField(max_length=32, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_discounts = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_shipping = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_refunded = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    discount_codes = models.JSONField(default=list)
    source_name = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=10, choices=Device.choices, default=Device.UNKNOWN)
    shipping_method = models.CharField(max_length=255, blank=True)
    shipping_speed = models.CharField(max_length=10, choices=ShippingSpeed.choices, default=ShippingSpeed.NONE)
    cart_token = models.CharField(max_length=255, blank=True)
    checkout_token = models.CharField(max_length=255, blank=True)
    # Its lines' revenue after discounts and cost of goods, kept by segments.mirror.order_costs.
    line_revenue = models.DecimalField(max_digits=14, decimal_places=2, db_default=0)
    line_cost = models.DecimalField(max_digits=14, decimal_places=2, db_default=0)
    uncosted_revenue = models.DecimalField(max_digits=14, decimal_places=2, db_default=0)
    uncosted_lines = models.IntegerField(db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "shopify_id"], name="order_unique_per_shop")]
        indexes = [models.Index(fields=["shop", "customer", "created_at"]),
                   models.Index(fields=["shop", "email"]), models.Index(fields=["shop", "created_at"])]


class LineItem(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="line_items")
    shopify_id = models.BigIntegerField()
    product_id = models.BigIntegerField(null=True, blank=True)     # Shopify ids; products may be deleted
    variant_id = models.BigIntegerField(null=True, blank=True)
    title = models.CharField(max_length=255, blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    quantity = models.IntegerField(default=1)
    price = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_discount = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "shopify_id"], name="line_item_unique_per_order")]
        indexes = [models.Index(fields=["shop", "product_type"]), models.Index(fields=["shop", "vendor"]),
                   models.Index(fields=["shop", "variant_id"], name="lineitem_variant")]     # a cost edit's orders


class Refund(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    shopify_id = models.BigIntegerField()
    created_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "shopify_id"], name="refund_unique_per_shop")]


class Checkout(models.Model):
    """An online checkout; abandoned when not completed within the merchant's delay."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="checkouts")
    token = models.CharField(max_length=255)
    shopify_id = models.BigIntegerField(null=True, blank=True)
    cart_token = models.CharField(max_length=255, blank=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="checkouts")
    email = models.CharField(max_length=320, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    device = models.CharField(max_length=10, choices=Device.choices, default=Device.UNKNOWN)
    line_item_count = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "token"], name="checkout_unique_per_shop")]
        indexes = [models.Index(fields=["shop", "customer", "created_at"]), models.Index(fields=["shop", "email"]),
                   models.Index(fields=["shop", "cart_token"])]


class Cart(models.Model):
    """An online-store cart: anonymous; linked to a customer through a checkout's cart token."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="carts")
    token = models.CharField(max_length=255)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    line_item_count = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "token"], name="cart_unique_per_shop")]


class BackfillStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"          # bulk operation running in Shopify
    LOADING = "loading"          # streaming the JSONL into the mirror
    DONE = "done"
    FAILED = "failed"


class ShopSync(models.Model):
    """Per shop: history backfill progress and the reconciliation watermark."""

    shop = models.OneToOneField("segments.Shop", on_delete=models.CASCADE, related_name="sync")
    backfill_status = models.CharField(max_length=10, choices=BackfillStatus.choices, default=BackfillStatus.PENDING)
    bulk_operation_id = models.CharField(max_length=100, blank=True)  # the export being (or next to be) loaded
    objects_total = models.BigIntegerField(null=True, blank=True)      # Shopify's objectCounts so far, all stages
    lines_done = models.BigIntegerField(default=0)                     # JSONL lines applied: the resume point
    # The backfill's exports in loading order, each {root, search, operation, status, objects, ...};
    # see segments/mirror/backfill.py.
    stages = models.JSONField(default=list, blank=True)
    backfill_started_at = models.DateTimeField(null=True, blank=True)
    backfill_finished_at = models.DateTimeField(null=True, blank=True)
    backfill_error = models.TextField(blank=True)
    history_since = models.DateTimeField(null=True, blank=True)       # set when read_all_orders is missing
    reconciled_until = models.DateTimeField(null=True, blank=True)    # watermark: changes before this are in
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_repaired = models.IntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)


class ComplianceKind(models.TextChoices):
    DATA_REQUEST = "customers/data_request"
    CUSTOMER_REDACT = "customers/redact"
    SHOP_REDACT = "shop/redact"


class ComplianceRequest(models.Model):
    """A privacy request from Shopify: logged, acted on, and (data requests) exportable."""

    shop_domain = models.CharField(max_length=255, db_index=True)
    kind = models.CharField(max_length=40, choices=ComplianceKind.choices)
    customer_shopify_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    export = models.JSONField(null=True, blank=True)    # the data_request export the merchant downloads
    summary = models.JSONField(default=dict)            # what was erased or exported (counts, never data)


class VariantCost(models.Model):
    """A variant's unit cost as Shopify holds it on the variant's inventory item (`InventoryItem.unitCost`,
    in the shop's currency; null when the merchant entered none). Keyed by the inventory item, which
    the inventory_items/* webhooks name; `variant_id` (Shopify's) comes from the backfill's variant
    export and the products/* webhooks."""

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+")
    inventory_item_id = models.BigIntegerField()
    variant_id = models.BigIntegerField(null=True, blank=True)
    unit_cost = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)     # Shopify's, orders out-of-order updates

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "inventory_item_id"], name="variantcost_unique_item")]
        indexes = [models.Index(fields=["shop", "variant_id"], name="variantcost_variant")]
