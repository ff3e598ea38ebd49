"""Daily KPI snapshots per segment: what a segment is worth, day by day.

Written only by segments.measurement.snapshots (nightly, and backfilled from history when a
segment is created); `day` is the shop's local calendar day. Money is in the shop's currency.
Members exclude the holdout; the holdout's own figures sit beside them so lift can be read off.
A `backfilled` row was estimated from history when the segment was created: today's members'
past orders, with today's member count and no entries or exits (there was no membership then).
"""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class SegmentKpiSnapshot(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.ForeignKey("segments.Segment", on_delete=models.CASCADE, related_name="kpi_snapshots",
                                db_index=False)
    day = models.DateField()
    members = models.IntegerField(default=0)             # treated members at the end of the day
    holdout_members = models.IntegerField(default=0)
    entries = models.IntegerField(default=0)
    exits = models.IntegerField(default=0)
    orders = models.IntegerField(default=0)              # orders placed that day by members
    buyers = models.IntegerField(default=0)              # members with at least one order that day
    repeat_buyers = models.IntegerField(default=0)       # buyers of the day with an earlier order too
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    store_revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)   # every customer's
    clv_total = models.DecimalField(max_digits=18, decimal_places=2, default=0)       # members' observed spend
    predicted_clv_total = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    holdout_orders = models.IntegerField(default=0)
    holdout_buyers = models.IntegerField(default=0)
    holdout_revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    # The day's orders' gross profit (segments.mirror.order_costs), at the shop's default margin then;
    # NULL when some line had no cost and no default margin was set (`uncosted_lines` says how many).
    gross_profit = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    holdout_gross_profit = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    uncosted_lines = models.IntegerField(default=0)
    backfilled = models.BooleanField(default=False)   # estimated from today's members, not observed
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "day"], name="kpi_snapshot_segment_day")]
        indexes = [models.Index(fields=["shop", "day"])]
