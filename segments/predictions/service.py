"""A shop's predictions: fitted nightly from its store copy, every buyer scored; the customers an order
changed rescored right after it with the stored parameters; and how good the models are.

Quality: the same models fitted on the histories as they stood 90 days ago (only customers who had
bought by then), asked for each customer's purchase days in the 90 days since, against what they
did: in total, per customer (mean absolute error) and by how many repeat purchases customers had at
the cut (the calibration chart of Fader & Hardie's paper).
"""
from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from segments.predictions.bgnbd import BgNbd, bgnbd_fit
from segments.predictions.gammagamma import GammaGamma
from segments.predictions.histories import Histories, histories, purchase_days_between
from segments.predictions.models import CustomerPrediction, PredictionModel
from segments.predictions.scoring import (
    Models, grouped, models_fit, next_order_days, percentile_from, percentiles, predictions_score,
)
from segments.shops.models import Shop

log = logging.getLogger(__name__)

MIN_BUYERS = 50            # fewer, and four parameters are not worth fitting
MIN_REPEAT_BUYERS = 10     # for spend per order; below it, each customer's own average stands in
QUALITY_DAYS = 90
QUALITY_BUCKETS = 7        # repeat purchases at the cut: 0, 1, …, 5, and 6 or more


class NotEnoughHistory(ValueError):
    pass


def _fit(h: Histories) -> Models | None:
    repeat = int((h.x > 0).sum())
    if len(h) < MIN_BUYERS or repeat == 0:
        return None
    if repeat < MIN_REPEAT_BUYERS:
        (gx, gt, gT), n = grouped(h.x, h.t_x, h.T)
        return Models(purchases=bgnbd_fit(gx, gt, gT, weights=n), value=None)
    return models_fit(h.x, h.t_x, h.T, np.maximum(h.m_x, 0.01))    # Gamma-Gamma needs positive spend


def _score(models: Models, h: Histories) -> dict[str, np.ndarray]:
    if models.value is None:     # no spend model: the customer's own average repeat value
        scored = predictions_score(Models(models.purchases, GammaGamma(1.0, 1.0, 1.0)), h.x, h.t_x, h.T, h.m_x)
        scored["value_per_order"] = np.where(h.x > 0, h.m_x, np.nan)
        scored["predicted_value_365d"] = scored["orders_365d"] * scored["value_per_order"]
    else:
        scored = predictions_score(models, h.x, h.t_x, h.T, h.m_x)
    scored["next_order_days"] = next_order_days(models.purchases, h.x, h.t_x, h.T)
    return scored


def _money(values: np.ndarray) -> list:
    return [None if np.isnan(v) else round(float(v), 2) for v in values]


def _write(shop: Shop, h: Histories, scored: dict[str, np.ndarray], percentile: np.ndarray | list,
           now: dt.datetime) -> None:
    rows = zip(h.customer_ids.tolist(), scored["p_alive"].tolist(), scored["orders_30d"].tolist(),
               scored["orders_90d"].tolist(), scored["orders_365d"].tolist(), _money(scored["value_per_order"]),
               _money(scored["predicted_value_365d"]), list(percentile),
               [None if np.isnan(d) else int(d) for d in scored["next_order_days"]])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS prediction_rows (customer_id bigint, p_alive float8, "
                       "orders_30d float8, orders_90d float8, orders_365d float8, value_per_order numeric, "
                       "predicted_value numeric, value_percentile float8, next_order_days int) ON COMMIT DROP")
        cursor.execute("TRUNCATE prediction_rows")       # an earlier write in the same transaction
        with cursor.copy("COPY prediction_rows FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO segments_customerprediction (shop_id, customer_id, p_alive, orders_30d, orders_90d, orders_365d, "
            "value_per_order, predicted_value, value_percentile, next_order_days, scored_at) "
            "SELECT %s, r.* , %s FROM prediction_rows r ON CONFLICT (customer_id) DO UPDATE SET "
            "p_alive = excluded.p_alive, orders_30d = excluded.orders_30d, orders_90d = excluded.orders_90d, "
            "orders_365d = excluded.orders_365d, value_per_order = excluded.value_per_order, "
            "predicted_value = excluded.predicted_value, value_percentile = excluded.value_percentile, "
            "next_order_days = excluded.next_order_days, scored_at = excluded.scored_at", [shop.pk, now])


def shop_predictions_fit(*, shop: Shop, now: dt.datetime | None = None) -> PredictionModel | None:
    """Fit the shop's models on its whole history, score every buyer, measure the models' quality.
    None (and nothing written) when the shop has too little history."""
    now = now or timezone.now()
    started = time.monotonic()
    h = histories(shop=shop, until=now)
    models = _fit(h)
    if models is None:
        log.info("predictions for shop %s: %s buyers, too few to fit", shop.pk, len(h))
        return None
    scored = _score(models, h)
    value = np.nan_to_num(scored["predicted_value_365d"], nan=0.0)
    ranked, breakpoints = percentiles(value)
    bg, gg = models.purchases, models.value
    with transaction.atomic():
        _write(shop, h, scored, ranked.tolist(), now)
        with connection.cursor() as cursor:     # buyers no longer (every order cancelled, customer deleted)
            cursor.execute("DELETE FROM segments_customerprediction p WHERE p.shop_id = %s AND NOT EXISTS "
                           "(SELECT 1 FROM prediction_rows r WHERE r.customer_id = p.customer_id)", [shop.pk])
        model, _ = PredictionModel.objects.update_or_create(shop=shop, defaults={
            "r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p if gg else None,
            "q": gg.q if gg else None, "gamma": gg.gamma if gg else None, "customers": len(h), "fitted_at": now,
            "value_breakpoints": breakpoints, "seconds": 0.0, "quality": quality(shop=shop, now=now)})
    model.seconds = round(time.monotonic() - started, 2)
    model.save(update_fields=["seconds"])
    log.info("predictions for shop %s: %s buyers fitted and scored in %.1f s", shop.pk, len(h), model.seconds)
    return model


def customers_rescore(*, shop: Shop, customer_ids: list[int], now: dt.datetime | None = None) -> int:
    """Rescore these customers with the shop's stored parameters (after their orders changed); a
    customer left without orders loses their predictions. 0 when the shop has no fitted models."""
    model = PredictionModel.objects.filter(shop=shop).first()
    if model is None or not customer_ids:
        return 0
    now = now or timezone.now()
    h = histories(shop=shop, until=now, customer_ids=customer_ids)
    gg = GammaGamma(model.p, model.q, model.gamma) if model.p is not None else None
    models = Models(purchases=BgNbd(model.r, model.alpha, model.a, model.b), value=gg)
    with transaction.atomic():
        CustomerPrediction.objects.filter(shop=shop, customer_id__in=customer_ids).exclude(
            customer_id__in=h.customer_ids.tolist()).delete()
        if len(h):
            scored = _score(models, h)
            value = np.nan_to_num(scored["predicted_value_365d"], nan=0.0)
            _write(shop, h, scored, [percentile_from(model.value_breakpoints, v) for v in value.tolist()], now)
    return len(h)


def quality(*, shop: Shop, now: dt.datetime, days: int = QUALITY_DAYS) -> dict:
    """Predicted against actual purchase days over the last `days`, from models fitted without them."""
    cut = now - dt.timedelta(days=days)
    h = histories(shop=shop, until=cut, first_before=cut)
    models = _fit(h)
    if models is None:
        return {"days": days, "customers": len(h), "enough": False}
    predicted = models.purchases.expected_purchases(days, h.x, h.t_x, h.T)
    actual = purchase_days_between(shop=shop, start=cut, end=now, customer_ids=h.customer_ids)
    buckets = np.minimum(h.x, QUALITY_BUCKETS - 1).astype(int)
    by_repeat = [{"repeat": k, "label": f"{k}+" if k == QUALITY_BUCKETS - 1 else str(k),
                  "customers": int((buckets == k).sum()),
                  "predicted": round(float(predicted[buckets == k].mean()), 4) if (buckets == k).any() else None,
                  "actual": round(float(actual[buckets == k].mean()), 4) if (buckets == k).any() else None}
                 for k in range(QUALITY_BUCKETS)]
    total_p, total_a = float(predicted.sum()), float(actual.sum())
    return {"days": days, "customers": len(h), "enough": True, "predicted": round(total_p, 1), "actual": int(total_a),
            "error": round((total_p - total_a) / total_a, 4) if total_a else None,
            "mae": round(float(np.abs(predicted - actual).mean()), 4), "by_repeat": by_repeat}
