"""BG/NBD against its published result: on Fader and Hardie's CDNOW sample (2,357 customers, 39-week
calibration; the summary as the `lifetimes` package ships it, data/PROVENANCE.md) the fit reproduces
the paper's r = 0.243, α = 4.414, a = 0.793, b = 2.426, and the paper's figures that follow from them."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from segments.predictions.bgnbd import BgNbd, bgnbd_fit, log_likelihood

DATA = Path(__file__).parent / "data" / "cdnow_customers_summary.csv"
PUBLISHED = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def cdnow():
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    return tuple(np.array([float(row[k]) for row in rows]) for k in ("frequency", "recency", "T"))


@pytest.fixture(scope="module")
def fitted(cdnow):
    return bgnbd_fit(*cdnow)


def test_the_sample_is_the_papers(cdnow):
    x, t_x, T = cdnow
    assert len(x) == 2357 and int(x.sum()) == 2457          # 2,357 customers, 2,457 repeat purchases


def test_the_fit_reproduces_the_published_parameters_to_three_significant_digits(fitted):
    for name in ("r", "alpha", "a", "b"):
        assert f"{getattr(fitted, name):.3g}" == f"{getattr(PUBLISHED, name):.3g}", (name, fitted)


def test_the_maximum_is_the_papers_log_likelihood(cdnow, fitted):
    ll = float(np.sum(log_likelihood((fitted.r, fitted.alpha, fitted.a, fitted.b), *cdnow)))
    assert round(ll, 1) == -9582.4                           # the paper's LL at the optimum


def test_the_papers_conditional_expectation_for_a_customer(fitted):
    """The paper's worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the next
    39 weeks."""
    assert round(float(fitted.expected_purchases(39, 2, 30.43, 38.86)), 3) == pytest.approx(1.226, abs=0.002)


def test_p_alive_is_one_for_a_customer_who_never_came_back_and_falls_with_silence(fitted):
    assert float(fitted.p_alive(0, 0, 38.86)) == 1.0
    recent, silent = fitted.p_alive(3, 38.0, 38.86), fitted.p_alive(3, 5.0, 38.86)
    assert 0 < silent < recent < 1


def test_the_fits_likelihood_is_the_mean_of_each_customers(cdnow):
    """The fit evaluates each special function once per distinct value; it must add up to the same."""
    from segments.predictions.bgnbd import _Likelihood

    params = (PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b)
    weights = np.arange(1, len(cdnow[0]) + 1, dtype=float) % 3 + 1
    expected = float(np.sum(weights * log_likelihood(params, *cdnow)) / weights.sum())
    assert _Likelihood(*cdnow, weights)(params) == pytest.approx(expected, rel=1e-12)
