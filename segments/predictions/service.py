"""A shop's predictions: fitted nightly from its store copy, every buyer scored; the customers an order
changed rescored right after it with the stored parameters; and how good the models are.

Quality: the same models fitted on the histories as they stood 90 days ago (only customers who had
bought by then), asked for each customer's purchase days in the 90 days since, against what they
did: in total, per customer (mean absolute error) and by how many repeat purchases customers had at
the cut (the calibration chart of Fader & Hardie's paper).

The nightly fit reads both sets of histories and the 90 days' purchases in one pass over the orders,
fits the quality's models on a second thread while the shop's are fitted, scored and written, and
writes the predictions through COPY's binary format, built from the score arrays as they are.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from segments.predictions.bgnbd import BgNbd, bgnbd_fit
from segments.predictions.gammagamma import GammaGamma
from segments.predictions.histories import Histories, histories, shop_histories
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
        with np.errstate(divide="ignore"):      # the stand-in's value for x = 0, replaced below
            scored = predictions_score(Models(models.purchases, GammaGamma(1.0, 1.0, 1.0)), h.x, h.t_x, h.T, h.m_x)
        scored["value_per_order"] = np.where(h.x > 0, h.m_x, np.nan)
        scored["predicted_value_365d"] = scored["orders_365d"] * scored["value_per_order"]
    else:
        scored = predictions_score(models, h.x, h.t_x, h.T, h.m_x)
    scored["next_order_days"] = next_order_days(models.purchases, h.x, h.t_x, h.T)
    return scored


def _cents(values: np.ndarray) -> np.ndarray:
    """100 · round(v, 2) for each v, as Python rounds (the float's exact value to the nearest cent);
    NaN stays NaN. rint(100 v) agrees but where 100 v's own rounding could hide which side of a half
    cent v is on: those few are rounded one by one."""
    hundred = values * 100
    cents = np.rint(hundred)
    with np.errstate(invalid="ignore"):
        doubtful = np.abs(np.abs(hundred - np.trunc(hundred)) - 0.5) < 1e-9 * np.maximum(np.abs(hundred), 1.0)
    cents[doubtful] = [round(round(v, 2) * 100) for v in values[doubtful].tolist()]
    return cents


# COPY's binary format: a signature, flags and an empty header extension; then each row as its field
# count and each field's length and big-endian value; then a field count of -1.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_COPY_BATCH = 100_000      # rows encoded at a time, so the encoding stays small beside the scores
# float8 all but the id; NaN stands for NULL in the nullable ones, money is in cents.
_ROWS_TABLE = ("CREATE TEMPORARY TABLE IF NOT EXISTS prediction_rows (customer_id bigint, p_alive float8, "
               "orders_30d float8, orders_90d float8, orders_365d float8, value_cents float8, predicted_cents float8, "
               "value_percentile float8, next_order_days float8) ON COMMIT DROP")


def _copy_in(cursor, table: str, ids: np.ndarray, columns: list[np.ndarray]) -> None:
    """Rows of an int8 id and float8 values into `table`, encoded by numpy rather than row by row."""
    row = np.dtype([("count", ">i2"), ("id_length", ">i4"), ("id", ">i8")]
                   + [field for i in range(len(columns)) for field in ((f"length{i}", ">i4"), (f"value{i}", ">f8"))])
    with cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
        copy.write(_COPY_SIGNATURE)
        for start in range(0, len(ids), _COPY_BATCH):
            end = min(start + _COPY_BATCH, len(ids))
            rows = np.empty(end - start, dtype=row)
            rows["count"], rows["id_length"], rows["id"] = len(columns) + 1, 8, ids[start:end]
            for i, column in enumerate(columns):
                rows[f"length{i}"], rows[f"value{i}"] = 8, column[start:end]
            copy.write(rows.tobytes())
        copy.write(_COPY_TRAILER)


def _write(shop: Shop, h: Histories, scored: dict[str, np.ndarray], percentile: np.ndarray | list,
           now: dt.datetime) -> None:
    columns = [scored["p_alive"], scored["orders_30d"], scored["orders_90d"], scored["orders_365d"],
               _cents(scored["value_per_order"]), _cents(scored["predicted_value_365d"]),
               np.asarray(percentile, dtype=float), scored["next_order_days"]]
    with connection.cursor() as cursor:
        cursor.execute(_ROWS_TABLE)
        cursor.execute("TRUNCATE prediction_rows")       # an earlier write in the same transaction
        _copy_in(cursor, "prediction_rows", h.customer_ids, columns)
        cursor.execute(
            "INSERT INTO segments_customerprediction (shop_id, customer_id, p_alive, orders_30d, orders_90d, orders_365d, "
            "value_per_order, predicted_value, value_percentile, next_order_days, scored_at) "
            "SELECT %s, customer_id, p_alive, orders_30d, orders_90d, orders_365d, "
            "NULLIF(value_cents, 'NaN')::numeric * 0.01, NULLIF(predicted_cents, 'NaN')::numeric * 0.01, "
            "NULLIF(value_percentile, 'NaN'), NULLIF(next_order_days, 'NaN')::int, %s "
            "FROM prediction_rows ON CONFLICT (customer_id) DO UPDATE SET "
            "p_alive = excluded.p_alive, orders_30d = excluded.orders_30d, orders_90d = excluded.orders_90d, "
            "orders_365d = excluded.orders_365d, value_per_order = excluded.value_per_order, "
            "predicted_value = excluded.predicted_value, value_percentile = excluded.value_percentile, "
            "next_order_days = excluded.next_order_days, scored_at = excluded.scored_at", [shop.pk, now])


def shop_predictions_fit(*, shop: Shop, now: dt.datetime | None = None) -> PredictionModel | None:
    """Fit the shop's models on its whole history, score every buyer, measure the models' quality.
    None (and nothing written) when the shop has too little history."""
    now = now or timezone.now()
    started = time.monotonic()
    seconds = _Stages()
    read = shop_histories(shop=shop, until=now, cut=now - dt.timedelta(days=QUALITY_DAYS))
    h = read.now
    seconds.lap("histories")
    # The quality's models are fitted on a second thread meanwhile: numpy and scipy let go of the GIL
    # in their loops over the histories, and the writes below only wait on the database.
    with ThreadPoolExecutor(max_workers=1) as pool:
        measured = pool.submit(_quality, read.at_cut, read.since_cut)
        models = _fit(h)
        seconds.lap("fit")
        if models is None:
            log.info("predictions for shop %s: %s buyers, too few to fit", shop.pk, len(h))
            return None
        scored = _score(models, h)
        value = np.nan_to_num(scored["predicted_value_365d"], nan=0.0)
        ranked, breakpoints = percentiles(value)
        seconds.lap("score")
        bg, gg = models.purchases, models.value
        with transaction.atomic():
            _write(shop, h, scored, ranked, now)
            with connection.cursor() as cursor:     # buyers no longer (every order cancelled, customer deleted)
                cursor.execute("DELETE FROM segments_customerprediction p WHERE p.shop_id = %s AND NOT EXISTS "
                               "(SELECT 1 FROM prediction_rows r WHERE r.customer_id = p.customer_id)", [shop.pk])
            seconds.lap("write")
            quality = measured.result()
            seconds.lap("quality (waited for)")
            model, _ = PredictionModel.objects.update_or_create(shop=shop, defaults={
                "r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p if gg else None,
                "q": gg.q if gg else None, "gamma": gg.gamma if gg else None, "customers": len(h), "fitted_at": now,
                "value_breakpoints": breakpoints, "seconds": 0.0, "quality": quality})
    model.seconds = round(time.monotonic() - started, 2)
    model.save(update_fields=["seconds"])
    log.info("predictions for shop %s: %s buyers fitted and scored in %.1f s (%s)", shop.pk, len(h), model.seconds,
             seconds, extra={"stages": seconds.seconds})
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


def _quality(h: Histories, actual: np.ndarray, days: int = QUALITY_DAYS) -> dict:
    """Predicted against actual purchase days over the `days` after the histories `h` (as they stood
    `days` ago, of the customers who had bought by then), from models fitted on `h` alone."""
    models = _fit(h)
    if models is None:
        return {"days": days, "customers": len(h), "enough": False}
    predicted = models.purchases.expected_purchases(days, h.x, h.t_x, h.T)
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


class _Stages:
    """The seconds each stage of the fit took, for the log (and the benchmark)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._since = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.seconds[stage] = round(now - self._since, 2)
        self._since = now

    def __str__(self) -> str:
        return ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in self.seconds.items())
