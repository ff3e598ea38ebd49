"""Gamma-Gamma against its published result: on the CDNOW sample's 946 repeat buyers (data/PROVENANCE.md)
the fit reproduces Fader & Hardie's p = 6.25, q = 3.74, γ = 15.44."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from segments.predictions.gammagamma import GammaGamma, gammagamma_fit

DATA = Path(__file__).parent / "data" / "cdnow_customers_summary_with_transactions.csv"
PUBLISHED = GammaGamma(p=6.25, q=3.74, gamma=15.44)


@pytest.fixture(scope="module")
def cdnow():
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    return np.array([float(r["x"]) for r in rows]), np.array([float(r["zbar"]) for r in rows])


@pytest.fixture(scope="module")
def fitted(cdnow):
    return gammagamma_fit(*cdnow)


def test_the_repeat_buyers_are_the_notes(cdnow):
    x, m_x = cdnow
    assert int(((x > 0) & (m_x > 0)).sum()) == 946


def test_the_fit_reproduces_the_published_parameters_to_three_significant_digits(fitted):
    for name in ("p", "q", "gamma"):
        assert f"{getattr(fitted, name):.3g}" == f"{getattr(PUBLISHED, name):.3g}", (name, fitted)


def test_a_customers_expected_value_lies_between_theirs_and_the_populations(fitted):
    population = fitted.expected_average_value(0, 0)
    assert float(population) == pytest.approx(fitted.p * fitted.gamma / (fitted.q - 1))
    for x, m_x in ((1, 10.0), (2, 100.0), (10, 100.0)):
        value = float(fitted.expected_average_value(x, m_x))
        assert min(population, m_x) < value < max(population, m_x)
    # more transactions pull the estimate towards the customer's own mean
    assert abs(fitted.expected_average_value(10, 100.0) - 100) < abs(fitted.expected_average_value(2, 100.0) - 100)
