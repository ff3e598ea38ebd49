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


def _distinct(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of a 2-d table in order (as np.unique(axis=0) gives them), how many rows
    each stands for, and each row's distinct row: by a lexsort of the columns, several times faster
    than np.unique's sort of whole rows on a million customers."""
    order = np.lexsort(table.T[::-1])
    ordered = table[order]
    new = np.ones(len(ordered), dtype=bool)
    np.any(ordered[1:] != ordered[:-1], axis=1, out=new[1:])
    starts = np.flatnonzero(new)
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return ordered[starts], np.diff(np.append(starts, len(ordered))), inverse


def grouped(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of `columns` and how many customers each stands for."""
    rows, counts, _ = _distinct(np.column_stack(columns))
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


def next_order_days(bg: BgNbd, x, t_x, T, *, most: int = 365) -> np.ndarray:
    """The fewest whole days d <= `most` in which one more order is expected (E[orders in d] >= 1),
    NaN when not within `most`: a bisection over the distinct histories (E grows with d)."""
    rows, _, inverse = _distinct(np.column_stack((x, t_x, T)).astype(float))
    gx, gt, gT = rows[:, 0], rows[:, 1], rows[:, 2]
    reach = bg.expected_purchases(most, gx, gt, gT) >= 1
    low, high = np.zeros(len(gx)), np.full(len(gx), float(most))      # E(low) < 1 <= E(high)
    while np.any(high - low > 1):
        mid = np.floor((low + high) / 2)
        hit = bg.expected_purchases(mid, gx, gt, gT) >= 1
        high, low = np.where(hit, mid, high), np.where(hit, low, mid)
    return np.where(reach, high, np.nan)[inverse]


def percentiles(values: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Each value's percentile among `values` as spend_percentile ranks spend (floor(100 c / n) / 100,
    c = values at most as large), and the breakpoints p_k (the value at rank ceil(k n / 100), k = 0..100)
    that rank a later value the same way: max{k : p_k <= v} / 100."""
    ordered = np.sort(values)
    n = len(ordered)
    if n == 0:
        return np.zeros(0), []
    at_most = np.searchsorted(ordered, values, side="right")
    ranks = np.maximum(np.ceil(np.arange(101) * n / 100).astype(int), 1) - 1
    return np.floor(100 * at_most / n) / 100, ordered[ranks].tolist()


def percentile_from(breakpoints: list[float], value: float) -> float | None:
    if not breakpoints:
        return None
    return max(k for k, p in enumerate(breakpoints) if p <= value) / 100 if value >= breakpoints[0] else 0.0
