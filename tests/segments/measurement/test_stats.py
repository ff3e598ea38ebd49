"""segments.engine.stats against scipy.stats (a test dependency only) on many inputs, edge cases included."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import special, stats as sp

from segments.engine import stats


@pytest.mark.parametrize("a,b,x", [(0.5, 0.5, 0.3), (1, 1, 0.7), (2.5, 0.5, 0.99), (50, 0.5, 0.2),
                                   (0.5, 30, 0.01), (1000, 0.5, 0.999), (3, 7, 0.5), (1e-3, 2, 0.4)])
def test_regularized_incomplete_beta_matches_scipy(a, b, x):
    assert stats.regularized_incomplete_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("df", [1, 1.5, 2, 3.7, 10, 29.2, 200, 10_000])
@pytest.mark.parametrize("t", [0.0, 0.1, 1.0, 1.96, 2.5, -3.3, 8.0])
def test_t_distribution_matches_scipy(t, df):
    assert stats.t_two_sided_p(t, df) == pytest.approx(2 * sp.t.sf(abs(t), df), rel=1e-8, abs=1e-15)
    assert stats.t_cdf(t, df) == pytest.approx(sp.t.cdf(t, df), rel=1e-8, abs=1e-15)


@pytest.mark.parametrize("df", [1, 2.5, 7, 30.3, 1000])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(p, df):
    assert stats.t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-8)


def _z_reference(x1, n1, x2, n2):
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    crit = sp.norm.ppf(0.975)
    return p1 - p2, p1 - p2 - crit * se, p1 - p2 + crit * se, 2 * sp.norm.sf(abs(z))


@pytest.mark.parametrize("x1,n1,x2,n2", [(120, 1000, 100, 1000), (5, 20, 2, 25), (1, 3, 0, 4), (500, 10_000, 450, 9_000),
                                         (30, 30, 29, 30), (0, 50, 3, 50), (7, 7, 3, 10)])
def test_two_proportion_test_matches_independent_computation(x1, n1, x2, n2):
    got = stats.two_proportion_test(x1, n1, x2, n2)
    diff, low, high, p = _z_reference(x1, n1, x2, n2)
    assert (got.diff, got.ci_low, got.ci_high) == pytest.approx((diff, low, high), rel=1e-10, abs=1e-12)
    assert got.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)


def test_two_proportion_p_value_equals_scipy_chi_square_without_continuity():
    """The pooled z test is the 2x2 chi-square test: z squared is chi2."""
    rng = random.Random(3)
    for _ in range(50):
        n1, n2 = rng.randint(20, 5000), rng.randint(20, 5000)
        x1, x2 = rng.randint(1, n1 - 1), rng.randint(1, n2 - 1)
        chi2, p, _, _ = sp.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
        got = stats.two_proportion_test(x1, n1, x2, n2)
        assert got.p_value == pytest.approx(p, rel=1e-8, abs=1e-300)
        assert got.statistic ** 2 == pytest.approx(chi2, rel=1e-9)


def test_two_proportion_all_or_none_converting_and_empty_groups():
    none = stats.two_proportion_test(0, 100, 0, 80)
    assert (none.diff, none.p_value, none.ci_low, none.ci_high) == (0.0, 1.0, 0.0, 0.0)
    everyone = stats.two_proportion_test(100, 100, 80, 80)
    assert (everyone.diff, everyone.p_value) == (0.0, 1.0)
    empty = stats.two_proportion_test(3, 10, 0, 0)
    assert empty.p_value is None and empty.diff is None and empty.treatment == 0.3 and not empty.significant


def test_welch_matches_scipy_on_many_random_samples():
    rng = np.random.default_rng(7)
    for trial in range(60):
        n1, n2 = int(rng.integers(2, 400)), int(rng.integers(2, 400))
        a = rng.gamma(2.0, 30.0, n1) * (rng.random(n1) < 0.3)
        b = rng.gamma(2.0, 25.0 + trial, n2) * (rng.random(n2) < 0.3)
        if a.var() == 0 and b.var() == 0:
            continue
        ref = sp.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(0.95)
        got = stats.welch_test(a.tolist(), b.tolist())
        assert got.p_value == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-14)
        assert got.statistic == pytest.approx(ref.statistic, rel=1e-9)
        assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-7)
        assert got.df == pytest.approx(ref.df, rel=1e-9)


def test_welch_tiny_samples_and_zero_variance():
    tiny = stats.welch_test([2.0, 4.0], [1.0, 1.5])
    ref = sp.ttest_ind([2.0, 4.0], [1.0, 1.5], equal_var=False)
    assert tiny.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    one = stats.welch_test([5.0], [1.0, 2.0, 3.0])
    assert one.p_value is None and one.ci_low is None and one.diff == 3.0
    flat_same = stats.welch_test([3.0] * 5, [3.0] * 8)
    assert (flat_same.diff, flat_same.p_value, flat_same.ci_low) == (0.0, 1.0, 0.0)
    flat_apart = stats.welch_test([3.0] * 5, [1.0] * 8)
    assert (flat_apart.diff, flat_apart.p_value) == (2.0, 0.0)
    one_flat = stats.welch_test([0.0] * 10, [0.0, 1.0, 0.0, 2.0, 0.0])   # one group constant: still a test
    ref = sp.ttest_ind([0.0] * 10, [0.0, 1.0, 0.0, 2.0, 0.0], equal_var=False)
    assert one_flat.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert stats.welch_test([], [1.0, 2.0]).p_value is None


@pytest.mark.parametrize("t,c,share", [(900, 100, 0.1), (880, 120, 0.1), (5000, 5300, 0.5), (9500, 420, 0.05),
                                       (3, 1, 0.25), (10_000, 0, 0.1)])
def test_sample_ratio_mismatch_matches_scipy_chisquare(t, c, share):
    n = t + c
    ref = sp.chisquare([t, c], [n * (1 - share), n * share])
    got = stats.sample_ratio_test(t, c, share)
    assert got.chi2 == pytest.approx(ref.statistic, rel=1e-10)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    assert got.mismatch == (ref.pvalue < 0.001)


def test_sample_ratio_without_a_holdout_or_members_is_not_a_test():
    assert stats.sample_ratio_test(100, 0, 0.0).p_value is None
    assert stats.sample_ratio_test(0, 0, 0.1).p_value is None


def test_minimum_detectable_effect_matches_the_power_it_promises():
    """At the MDE, a two-sided z test at alpha 5% has power 80% (computed with scipy's normal)."""
    for sd, n1, n2 in [(1.0, 100, 100), (40.0, 9000, 1000), (0.3, 50, 10)]:
        mde = stats.minimum_detectable_effect(sd, n1, n2)
        se = sd * math.sqrt(1 / n1 + 1 / n2)
        crit = sp.norm.ppf(0.975)
        power = sp.norm.sf(crit - mde / se) + sp.norm.cdf(-crit - mde / se)
        assert power == pytest.approx(0.80, abs=2e-4)
    assert stats.proportion_mde(0.1, 1000, 1000) == pytest.approx(
        (sp.norm.ppf(0.975) + sp.norm.ppf(0.8)) * math.sqrt(0.09 * 2 / 1000))
    assert stats.minimum_detectable_effect(1.0, 0, 10) is None


def test_cuped_matches_numpy_regression_and_reduces_variance():
    rng = np.random.default_rng(11)
    x = rng.gamma(2.0, 20.0, 2000)
    y = 0.8 * x + rng.normal(0, 10, 2000)
    adjusted, theta = stats.cuped_adjust(y.tolist(), x.tolist())
    ref_theta = np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1)
    assert theta == pytest.approx(ref_theta, rel=1e-10)
    assert np.allclose(adjusted, y - ref_theta * (x - x.mean()))
    assert np.mean(adjusted) == pytest.approx(np.mean(y))
    assert np.var(adjusted) < 0.5 * np.var(y)
    same, theta0 = stats.cuped_adjust([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert (same, theta0) == ([1.0, 2.0, 3.0], 0.0)
    with pytest.raises(ValueError):
        stats.cuped_adjust([1.0], [1.0, 2.0])


def test_cuped_from_moments_equals_welch_on_adjusted_values():
    rng = np.random.default_rng(5)
    x_t, x_c = rng.gamma(2, 20, 300), rng.gamma(2, 20, 250)
    y_t, y_c = 0.5 * x_t + rng.normal(3, 8, 300), 0.5 * x_c + rng.normal(0, 8, 250)
    x, y = np.concatenate([x_t, x_c]), np.concatenate([y_t, y_c])
    adjusted, theta = stats.cuped_adjust(y.tolist(), x.tolist())
    reference = sp.ttest_ind(adjusted[:300], adjusted[300:], equal_var=False)

    def moments(xs, ys):
        return stats.Moments(len(xs), ys.mean(), ys.var(ddof=1), xs.mean(), xs.var(ddof=1), np.cov(xs, ys)[0, 1])

    got = stats.cuped_welch(moments(x_t, y_t), moments(x_c, y_c), theta, x.mean())
    assert got.p_value == pytest.approx(reference.pvalue, rel=1e-7)
    assert got.diff == pytest.approx(np.mean(adjusted[:300]) - np.mean(adjusted[300:]), rel=1e-9)
    plain = stats.welch_test(y_t.tolist(), y_c.tolist())
    assert (got.ci_high - got.ci_low) < 0.7 * (plain.ci_high - plain.ci_low)   # the point of CUPED
