"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting your customers the easy
way", Marketing Science 24(2)): each customer buys at a Poisson rate drawn from Gamma(r, α) while
alive, and after each purchase drops out with a probability drawn from Beta(a, b).

A customer is summarised by (x, t_x, T): repeat purchases x, the time of the last one t_x and the
time they have been watched T, all in the same unit (time from their first purchase). Pure numpy and
scipy: fitted per shop by maximum likelihood, then used to score every customer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def _dropout_odds(self, x, t_x, T):
        """a/(b+x−1) · ((α+T)/(α+t_x))^(r+x) for repeat buyers, 0 for the others (their last purchase
        was their first: they cannot have dropped out after it)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = self.a / (self.b + x - 1) * np.exp((self.r + x) * (np.log(self.alpha + T)
                                                                     - np.log(self.alpha + t_x)))
        return np.where(x > 0, odds, 0.0)

    def p_alive(self, x, t_x, T):
        """P(the customer is still alive at T | x, t_x, T) (the paper's equation 13)."""
        return 1.0 / (1.0 + self._dropout_odds(x, t_x, T))

    def expected_purchases(self, t, x, t_x, T):
        """E[purchases in (T, T+t] | x, t_x, T] (the paper's equation 10)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
        return first * second / (1 + self._dropout_odds(x, t_x, T))

    def expected_purchases_new(self, t):
        """E[X(t)] for a customer just acquired (the paper's equation 7)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                        * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood under (r, α, a, b) (the paper's equation 6, in logs)."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    still = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        gone = np.where(x > 0, special.betaln(a + 1, b + np.maximum(x, 1) - 1) - special.betaln(a, b)
                        - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(still, gone)


class _Likelihood:
    """The mean log-likelihood of many customers, as log_likelihood computes it, with each special
    function evaluated once per distinct x, t_x or T (a shop has a few dozen purchase counts and a
    few hundred days, however many customers) and gathered by index."""

    def __init__(self, x, t_x, T, w):
        (self.ux, self.ix), (self.ut, self.it), (self.uT, self.iT) = (
            np.unique(v, return_inverse=True) for v in (x, t_x, T))
        self.x, self.w, self.total = x, w, float(w.sum())
        self.repeat = x > 0

    def __call__(self, params) -> float:
        r, alpha, a, b = params
        ux = self.ux
        by_x = (special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
                + special.betaln(a, b + ux) - special.betaln(a, b))
        gone_x = special.betaln(a + 1, b + np.maximum(ux, 1) - 1) - special.betaln(a, b + ux)
        x = self.x
        still = by_x[self.ix] - (r + x) * np.log(alpha + self.uT)[self.iT]
        # the "dropped out after the last purchase" term, relative to the "still alive" one
        gap = np.where(self.repeat, gone_x[self.ix] + (r + x) * (np.log(alpha + self.uT)[self.iT]
                                                                 - np.log(alpha + self.ut)[self.it]), -np.inf)
        return float(np.dot(self.w, still + np.logaddexp(0.0, gap))) / self.total


def bgnbd_fit(x, t_x, T, *, weights=None) -> BgNbd:
    """The maximum-likelihood (r, α, a, b), searched in logs (all four are positive). `weights` counts
    each (x, t_x, T) that many times, so identical customers can be grouped."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    scale = max(float(T.max()), 1.0)      # α in the data's time unit: start it near the spans observed
    mean_log_likelihood = _Likelihood(x, t_x, T, w)

    def objective(log_params):
        return -mean_log_likelihood(np.exp(log_params))

    start = np.log([1.0, scale / 10, 1.0, 1.0])
    found = optimize.minimize(objective, start, method="Nelder-Mead",
                              options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 20_000})
    found = optimize.minimize(objective, found.x, method="L-BFGS-B")   # polish from Nelder-Mead's basin
    r, alpha, a, b = np.exp(found.x)
    return BgNbd(r=float(r), alpha=float(alpha), a=float(a), b=float(b))
