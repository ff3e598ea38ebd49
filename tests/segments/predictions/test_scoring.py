"""Scoring a shop: the models fitted on grouped histories are the models fitted on every row, and
each customer gets every prediction, consistent with the models' own formulas."""
from __future__ import annotations

import numpy as np
import pytest

from segments.predictions.bgnbd import bgnbd_fit
from segments.predictions.scoring import HORIZONS, grouped, models_fit, predictions_score
from tests.segments.predictions.test_gammagamma import cdnow as spend  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def shop(spend):
    x, m_x = spend
    rng = np.random.default_rng(3)
    T = np.full(x.shape, 38.86)
    t_x = np.where(x > 0, np.round(rng.uniform(0, 38.86, x.shape), 1), 0.0)
    return x, t_x, T, m_x


def test_grouping_keeps_every_customer_once():
    (a, b), counts = grouped(np.array([1.0, 1.0, 0.0, 1.0]), np.array([2.0, 2.0, 0.0, 3.0]))
    assert sorted(zip(a, b, counts)) == [(0.0, 0.0, 1), (1.0, 2.0, 2), (1.0, 3.0, 1)]


def test_grouping_finds_numpys_distinct_rows_in_its_order():
    rng = np.random.default_rng(5)
    x, t_x = rng.integers(0, 4, 5000).astype(float), rng.choice([0.0, 0.5, 7.25, 1e6], 5000)
    T = rng.integers(0, 3, 5000) + t_x
    (a, b, c), counts = grouped(x, t_x, T)
    rows, expected = np.unique(np.column_stack((x, t_x, T)), axis=0, return_counts=True)
    assert np.array_equal(np.column_stack((a, b, c)), rows) and np.array_equal(counts, expected)


def test_the_grouped_fit_is_the_fit_on_every_row(shop):
    x, t_x, T, m_x = shop
    models = models_fit(x, t_x, T, m_x)
    every = bgnbd_fit(x, t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(models.purchases, name) == pytest.approx(getattr(every, name), rel=1e-3)


def test_every_customer_gets_every_prediction(shop):
    x, t_x, T, m_x = shop
    models = models_fit(x, t_x, T, m_x)
    scores = predictions_score(models, x, t_x, T, m_x)
    assert set(scores) == {"p_alive", "value_per_order", "predicted_value_365d", *(f"orders_{h}d" for h in HORIZONS)}
    assert all(v.shape == x.shape and np.isfinite(v).all() for v in scores.values())
    assert ((0 < scores["p_alive"]) & (scores["p_alive"] <= 1)).all()
    assert (scores["orders_30d"] <= scores["orders_90d"]).all() and (scores["orders_90d"] <= scores["orders_365d"]).all()
    np.testing.assert_allclose(scores["predicted_value_365d"], scores["orders_365d"] * scores["value_per_order"])
    never = x == 0
    assert np.allclose(scores["value_per_order"][never], models.value.expected_average_value(0, 0))
