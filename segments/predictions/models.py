"""A shop's fitted prediction models and each customer's predictions from them.

Written only by segments.predictions.service: fitted nightly per shop (PredictionModel), every
customer scored then, and the customers an order changed rescored right after it with the stored
parameters. Segment rules read CustomerPrediction through the metrics registry's "predictions"
family (the compiler joins it as `pr`).
"""
from __future__ import annotations

from django.db import models


class PredictionModel(models.Model):
    """The shop's BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma) parameters, time in days, and
    how well the same models predicted the last 90 days when fitted without them (`quality`)."""
    shop = models.OneToOneField("segments.Shop", on_delete=models.CASCADE, related_name="+")
    r = models.FloatField()
    alpha = models.FloatField()
    a = models.FloatField()
    b = models.FloatField()
    p = models.FloatField(null=True)          # null: too few repeat buyers to fit spend per order
    q = models.FloatField(null=True)
    gamma = models.FloatField(null=True)
    customers = models.PositiveIntegerField(default=0)
    fitted_at = models.DateTimeField()
    seconds = models.FloatField(default=0)
    # The value breakpoints: the predicted value at each whole percentile (0..100) of the shop's
    # buyers, so a customer rescored after an order is ranked as the nightly scoring ranked them.
    value_breakpoints = models.JSONField(default=list)
    quality = models.JSONField(default=dict)


class CustomerPrediction(models.Model):
    shop = models.ForeignKey("segments.Shop", on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.OneToOneField("segments.Customer", on_delete=models.CASCADE, related_name="prediction")
    p_alive = models.FloatField()
    orders_30d = models.FloatField()
    orders_90d = models.FloatField()
    orders_365d = models.FloatField()
    value_per_order = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    predicted_value = models.DecimalField(max_digits=14, decimal_places=2, null=True)   # next 365 days
    value_percentile = models.FloatField(null=True)      # among the shop's buyers, 0..1 (whole percents)
    next_order_days = models.PositiveIntegerField(null=True)   # days until one more order is expected
    scored_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["shop", "customer"], name="prediction_shop_customer")]
