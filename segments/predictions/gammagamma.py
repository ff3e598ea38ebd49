"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV: using
iso-value curves for customer base analysis", Journal of Marketing Research 42(4); Fader & Hardie's
note "The Gamma-Gamma model of monetary value", 2013): a customer's transactions vary around their own
mean, which varies across customers; spend is taken as independent of the purchase process (BG/NBD).

A customer is summarised by x (their repeat transactions, at least 1) and m_x (the mean value of those).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    def expected_average_value(self, x, m_x):
        """E[M | x, m_x]: a weighted mean of the population's mean and the customer's own (the note's
        equation 5); with x = 0, the population's mean p·γ/(q−1)."""
        x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
        return (self.gamma + m_x * x) * self.p / (self.p * x + self.q - 1)


def log_likelihood(params, x, m_x) -> np.ndarray:
    """Each customer's log-likelihood of their mean spend m_x over x transactions (the note's equation 3)."""
    p, q, gamma = params
    x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(gamma)
            + (p * x - 1) * np.log(m_x) + p * x * np.log(x) - (p * x + q) * np.log(x * m_x + gamma))


def gammagamma_fit(x, m_x, *, weights=None) -> GammaGamma:
    """The maximum-likelihood (p, q, γ) over customers with repeat transactions and positive spend."""
    x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    keep = (x > 0) & (m_x > 0)
    x, m_x, w = x[keep], m_x[keep], w[keep]

    def objective(log_params):
        return -float(np.sum(w * log_likelihood(np.exp(log_params), x, m_x))) / float(w.sum())

    start = np.log([1.0, 1.0, max(float(np.average(m_x, weights=w)), 1.0)])
    found = optimize.minimize(objective, start, method="Nelder-Mead",
                              options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 20_000})
    found = optimize.minimize(objective, found.x, method="L-BFGS-B")
    p, q, gamma = np.exp(found.x)
    return GammaGamma(p=float(p), q=float(q), gamma=float(gamma))
