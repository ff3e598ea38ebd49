"""What the merchant sees of a shop's predictions: the models, how good they were on the 90 days they
did not see, and how the shop's buyers spread over the chance of still being active."""
from __future__ import annotations

from django.db.models import Count, Sum

from segments.predictions.models import CustomerPrediction, PredictionModel
from segments.shops.models import Shop

# P(alive) bands, as merchants read them: likely lost, in doubt, active.
BANDS = (("Likely lost", 0.0, 0.3), ("In doubt", 0.3, 0.7), ("Active", 0.7, 1.01))


def predictions_summary(*, shop: Shop) -> dict:
    model = PredictionModel.objects.filter(shop=shop).first()
    if model is None:
        return {"fitted": False}
    rows = CustomerPrediction.objects.filter(shop=shop)
    bands = []
    for label, low, high in BANDS:
        found = rows.filter(p_alive__gte=low, p_alive__lt=high).aggregate(
            customers=Count("pk"), value=Sum("predicted_value"), orders=Sum("orders_90d"))
        bands.append({"band": label, "low": low, "high": min(high, 1.0), "customers": found["customers"],
                      "predicted_value_365d": float(found["value"] or 0), "orders_90d": float(found["orders"] or 0)})
    return {"fitted": True, "fitted_at": model.fitted_at.isoformat(), "customers": model.customers,
            "seconds": model.seconds,
            "purchases": {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b},
            "spend": None if model.p is None else {"p": model.p, "q": model.q, "gamma": model.gamma},
            "quality": model.quality, "bands": bands}
