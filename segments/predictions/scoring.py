"""Each customer's predictions from a shop's fitted models: P(alive), expected orders over the
horizons merchants ask about, expected value per order and the predicted value over a year.

Histories are grouped before fitting: customers with the same (x, t_x, T) (and the same mean spend,
for Gamma-Gamma) share one likelihood term, weighted by their count, so a shop with a million
customers is fitted on its distinct histories.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.predictions.bgnbd import BgNbd, bgnbd_fit
from segments.predictions.gammagamma import GammaGamma, gammagamma_fit

HORIZONS = (30, 90, 365)       # days


@dataclass(frozen=True)
class Models:
    purchases: BgNbd
    value: GammaGamma


def grouped(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of `columns` and how many customers each stands for."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts


def models_fit(x, t_x, T, m_x) -> Models:
    (gx, gt, gT), n = grouped(x, t_x, T)
    repeat = x > 0
    (vx, vm), vn = grouped(x[repeat], m_x[repeat])
    return Models(purchases=bgnbd_fit(gx, gt, gT, weights=n), value=gammagamma_fit(vx, vm, weights=vn))


def predictions_score(models: Models, x, t_x, T, m_x) -> dict[str, np.ndarray]:
    """Per customer: p_alive, orders_<h>d for each horizon, value_per_order, predicted_value_365d."""
    bg, gg = models.purchases, models.value
    out = {"p_alive": bg.p_alive(x, t_x, T)}
    for horizon in HORIZONS:
        out[f"orders_{horizon}d"] = bg.expected_purchases(horizon, x, t_x, T)
    out["value_per_order"] = gg.expected_average_value(x, np.where(x > 0, m_x, 0.0))
    out["predicted_value_365d"] = out["orders_365d"] * out["value_per_order"]
    return out
