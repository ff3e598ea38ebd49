"""Statistics for holdout experiments, in pure Python (math and the standard library only).

Two-proportion z test, Welch's t test (t distribution through the regularized incomplete beta),
the sample-ratio-mismatch chi-square test, the minimum detectable effect and CUPED. Unit-tested
against scipy.stats, which is a test dependency only: the web process never imports it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.80
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Comparison:
    """Treatment minus control: the difference, its 95% interval and the two-sided p-value.

    `p_value` (and the interval) are None when the samples cannot support a test (a group empty,
    or fewer than two observations for a mean)."""
    treatment: float | None
    control: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    statistic: float | None = None
    df: float | None = None

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def to_dict(self) -> dict:
        return {"treatment": self.treatment, "control": self.control, "diff": self.diff,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
                "significant": self.significant}


def normal_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(p)


def normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


# -- the t distribution ----------------------------------------------------------------------------
def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's method for the continued fraction of I_x(a, b) (Numerical Recipes, betacf)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom (df may be fractional)."""
    if math.isinf(df):
        return normal_two_sided_p(t)
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    tail = t_two_sided_p(t, df) / 2.0
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t value with P(T <= t) = p: bisection on the CDF (monotone), started from the normal."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, max(2.0 * normal_quantile(p), 1.0)
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


# -- tests -----------------------------------------------------------------------------------------
def two_proportion_test(successes_t: int, n_t: int, successes_c: int, n_c: int,
                        alpha: float = ALPHA) -> Comparison:
    """Rates: z with the pooled standard error for the p-value (the null says the rates are equal),
    the unpooled one for the interval around the difference (Wald)."""
    if n_t <= 0 or n_c <= 0:
        p_t = successes_t / n_t if n_t > 0 else None
        p_c = successes_c / n_c if n_c > 0 else None
        return Comparison(p_t, p_c, None, None, None, None)
    p_t, p_c = successes_t / n_t, successes_c / n_c
    diff = p_t - p_c
    pooled = (successes_t + successes_c) / (n_t + n_c)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    z_crit = normal_quantile(1 - alpha / 2)
    if se_pooled == 0:   # everybody or nobody converted in both groups: no difference to see
        return Comparison(p_t, p_c, diff, diff, diff, 1.0, 0.0)
    z = diff / se_pooled
    return Comparison(p_t, p_c, diff, diff - z_crit * se, diff + z_crit * se, normal_two_sided_p(z), z)


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, var


def welch_from_summary(mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int,
                       alpha: float = ALPHA) -> Comparison:
    """Means: Welch's t with Welch–Satterthwaite degrees of freedom (sample variances, ddof=1)."""
    if n_t < 2 or n_c < 2:
        return Comparison(mean_t if n_t else None, mean_c if n_c else None,
                          mean_t - mean_c if n_t and n_c else None, None, None, None)
    diff = mean_t - mean_c
    a, b = var_t / n_t, var_c / n_c
    se = math.sqrt(a + b)
    if se == 0:   # both groups constant: the difference is exact
        return Comparison(mean_t, mean_c, diff, diff, diff, 1.0 if diff == 0 else 0.0)
    df = (a + b) ** 2 / (a * a / (n_t - 1) + b * b / (n_c - 1))
    t = diff / se
    t_crit = t_quantile(1 - alpha / 2, df)
    return Comparison(mean_t, mean_c, diff, diff - t_crit * se, diff + t_crit * se, t_two_sided_p(t, df), t, df)


def welch_test(treatment: Sequence[float], control: Sequence[float], alpha: float = ALPHA) -> Comparison:
    if not treatment or not control:
        return welch_from_summary(_mean_var(treatment)[0] if treatment else 0.0, 0.0, len(treatment),
                                  _mean_var(control)[0] if control else 0.0, 0.0, len(control), alpha)
    mean_t, var_t = _mean_var(treatment)
    mean_c, var_c = _mean_var(control)
    return welch_from_summary(mean_t, var_t, len(treatment), mean_c, var_c, len(control), alpha)


@dataclass(frozen=True)
class SampleRatio:
    """Did the holdout get the share it was configured for? A tiny p-value says assignment is broken."""
    treatment: int
    control: int
    expected_control_share: float
    observed_control_share: float | None
    chi2: float | None
    p_value: float | None

    @property
    def mismatch(self) -> bool:
        # 0.001, not 0.05: an SRM check runs on every experiment, and a false alarm stops a good one.
        return self.p_value is not None and self.p_value < 0.001

    def to_dict(self) -> dict:
        return {"treatment": self.treatment, "control": self.control,
                "expected_control_share": self.expected_control_share,
                "observed_control_share": self.observed_control_share, "chi2": self.chi2,
                "p_value": self.p_value, "mismatch": self.mismatch}


def sample_ratio_test(treatment: int, control: int, control_share: float) -> SampleRatio:
    """Pearson's chi-square, one degree of freedom, against the configured holdout share."""
    n = treatment + control
    if n == 0 or not 0.0 < control_share < 1.0:
        return SampleRatio(treatment, control, control_share, control / n if n else None, None, None)
    expected_c, expected_t = n * control_share, n * (1 - control_share)
    chi2 = (control - expected_c) ** 2 / expected_c + (treatment - expected_t) ** 2 / expected_t
    # The chi-square survival function with one degree of freedom is erfc(sqrt(x / 2)).
    return SampleRatio(treatment, control, control_share, control / n, chi2, math.erfc(math.sqrt(chi2 / 2)))


def minimum_detectable_effect(sd: float, n_t: int, n_c: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest absolute difference of means (or rates, with sd = sqrt(p(1-p))) a two-sided test
    at `alpha` finds with probability `power`, for groups of these sizes (normal approximation)."""
    if n_t <= 0 or n_c <= 0:
        return None
    return (normal_quantile(1 - alpha / 2) + normal_quantile(power)) * sd * math.sqrt(1 / n_t + 1 / n_c)


def proportion_mde(baseline: float, n_t: int, n_c: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    return minimum_detectable_effect(math.sqrt(max(baseline * (1 - baseline), 0.0)), n_t, n_c, alpha, power)


def cuped_adjust(outcomes: Sequence[float], covariates: Sequence[float]) -> tuple[list[float], float]:
    """CUPED: Y - theta * (X - mean X), theta = cov(X, Y) / var(X) over both groups together (so the
    adjustment is the same for treatment and control and the difference stays unbiased). Returns
    the adjusted outcomes and theta (0 when the covariate does not vary)."""
    if len(outcomes) != len(covariates):
        raise ValueError("outcomes and covariates must be the same length")
    n = len(outcomes)
    if n < 2:
        return list(outcomes), 0.0
    mean_x, mean_y = math.fsum(covariates) / n, math.fsum(outcomes) / n
    var_x = math.fsum((x - mean_x) ** 2 for x in covariates)
    if var_x == 0:
        return list(outcomes), 0.0
    theta = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(covariates, outcomes)) / var_x
    return [y - theta * (x - mean_x) for x, y in zip(covariates, outcomes)], theta


@dataclass(frozen=True)
class Moments:
    """A group's summary for CUPED from an aggregate query: outcome Y, pre-period covariate X."""
    n: int
    mean_y: float
    var_y: float
    mean_x: float
    var_x: float
    cov_xy: float


def cuped_welch(treatment: Moments, control: Moments, theta: float, mean_x_all: float,
                alpha: float = ALPHA) -> Comparison:
    """Welch's test on CUPED-adjusted outcomes, from group moments: the adjusted mean is
    mean Y - theta (mean X - overall mean X), the adjusted variance var Y + theta^2 var X - 2 theta cov."""
    def adjusted(m: Moments) -> tuple[float, float]:
        var = m.var_y + theta * theta * m.var_x - 2 * theta * m.cov_xy
        return m.mean_y - theta * (m.mean_x - mean_x_all), max(var, 0.0)

    (mean_t, var_t), (mean_c, var_c) = adjusted(treatment), adjusted(control)
    return welch_from_summary(mean_t, var_t, treatment.n, mean_c, var_c, control.n, alpha)
