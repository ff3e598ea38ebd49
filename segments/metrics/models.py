"""The per-customer metrics table that segment rules read, and the per-shop breakpoints behind its
shop-relative columns. Written only by segments.engine.metrics_table (see there for definitions)."""
from __future__ import annotations

from django.db import models


class RfmGroup(models.TextChoices):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALIST = "potential_loyalist"
    NEW = "new"
    PROMISING = "promising"
    NEEDS_ATTENTION = "needs_attention"
    AT_RISK = "at_risk"
    CANNOT_LOSE = "cannot_lose"
    HIBERNATING = "hibernating"
    LOST = "lost"


class CustomerMetrics(models.Model):
    """One row per live customer: what the segment engine knows of their behaviour, as of computed_at.

    Customers without orders have a row too (counts 0, order-derived values NULL); deleted
    customers have none.
    """

    customer = models.OneToOneField("segments.Customer", on_delete=models.CASCADE, primary_key=True,
                                    related_name="metrics")
    # (shop, customer) below serves per-shop scans; a separate shop index would only slow the rebuild.
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)

    orders_count = models.IntegerField(default=0)
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    aov = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    first_order_at = models.DateTimeField(null=True)
    last_order_at = models.DateTimeField(null=True)
    largest_order = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    spend_percentile = models.FloatField(null=True)
    rfm_recency = models.SmallIntegerField(null=True)
    rfm_frequency = models.SmallIntegerField(null=True)
    rfm_monetary = models.SmallIntegerField(null=True)
    rfm_group = models.CharField(max_length=20, choices=RfmGroup.choices, null=True)
    discounted_orders = models.IntegerField(default=0)
    full_price_orders = models.IntegerField(default=0)
    refund_rate = models.FloatField(null=True)
    distinct_product_types = models.IntegerField(default=0)
    abandoned_checkouts = models.IntegerField(default=0)
    last_abandoned_at = models.DateTimeField(null=True)
    last_abandoned_value = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    abandoned_not_purchased_since = models.BooleanField(default=False)
    median_order_gap_days = models.FloatField(null=True)
    expedited_share = models.FloatField(null=True)
    discount_dependence = models.FloatField(null=True)
    premium_share = models.FloatField(null=True)
    mobile_share = models.FloatField(null=True)
    desktop_share = models.FloatField(null=True)
    pos_share = models.FloatField(null=True)
    top_source = models.CharField(max_length=64, null=True)
    customer_created_at = models.DateTimeField(null=True)
    computed_at = models.DateTimeField()

    class Meta:
        # On PostgreSQL the table's fillfactor is 50 (set in its migration): rebuilds rewrite every row.
        indexes = [models.Index(fields=["shop", "customer"], name="customermetrics_shop")]


class ShopMetricsBreakpoints(models.Model):
    """Percentile `position` (1-100) of a shop's distributions, as of its last full rebuild.

    Each column holds the nearest-rank percentile: the value at rank ceil(position * n / 100) of the
    ascending values (NULL when the distribution is empty). Incremental refreshes rank a customer
    against these instead of re-reading the whole shop.
    """

    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    position = models.SmallIntegerField()
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, null=True)   # customers with orders
    last_order_at = models.DateTimeField(null=True)                                 # customers with orders
    orders_count = models.IntegerField(null=True)                                   # customers with orders
    line_item_price = models.DecimalField(max_digits=14, decimal_places=2, null=True)  # every line item
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "position"], name="breakpoint_unique_per_shop")]
