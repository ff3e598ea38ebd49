"""Fitting and scoring a shop of 1,000,000 customers (segments.predictions), against the same fit
ungrouped, measured in the same run.

    .venv/bin/python bench/predictions_bench.py [--customers 1000000] [--seed 7] [--no-baseline]

Simulates the customers from known models (BG/NBD: r 0.3, α 40 days, a 0.8, b 2.5; Gamma-Gamma: p 6,
q 4, γ 15), each watched 1 to 730 days and summarised in whole days, as the store copy keeps them.
Then times the grouped fit of both models (segments.predictions.scoring.models_fit), the scoring of
every customer (P(alive), orders in 30/90/365 days, value per order, predicted value) and the peak
RSS of the process; the baseline is the BG/NBD fit over every customer's row, ungrouped. Prints the
parameters recovered beside the true ones: the fit must find the model the data came from.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from segments.predictions.bgnbd import bgnbd_fit  # noqa: E402
from segments.predictions.scoring import models_fit, predictions_score  # noqa: E402

TRUE = {"r": 0.3, "alpha": 40.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 15.0}
TARGET_SECONDS, TARGET_RSS_MB = 60.0, 1024.0


def simulate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(x, t_x, T, m_x) for n customers: repeat orders, day of the last, days watched, mean repeat spend."""
    T = rng.integers(1, 731, n).astype(float)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)          # orders per day while alive
    drop = rng.beta(TRUE["a"], TRUE["b"], n)                   # chance of leaving after each order
    x, t_x, clock = np.zeros(n), np.zeros(n), np.zeros(n)
    going = np.ones(n, dtype=bool)
    while going.any():
        idx = np.flatnonzero(going)
        clock[idx] += rng.exponential(1 / np.maximum(rate[idx], 1e-12))
        bought = clock[idx] <= T[idx]
        buyers = idx[bought]
        x[buyers] += 1
        t_x[buyers] = clock[buyers]
        going[idx[~bought]] = False
        going[buyers[rng.random(buyers.size) < drop[buyers]]] = False
    mean = 1 / rng.gamma(TRUE["q"], 1 / TRUE["gamma"], n)       # each customer's mean spend scale ν⁻¹
    m_x = np.where(x > 0, rng.gamma(TRUE["p"] * np.maximum(x, 1), mean) / np.maximum(x, 1), 0.0)
    return x, np.floor(t_x), T, np.round(m_x, 2)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-baseline", action="store_true")
    opts = parser.parse_args()
    started = time.perf_counter()
    x, t_x, T, m_x = simulate(opts.customers, np.random.default_rng(opts.seed))
    simulated = time.perf_counter() - started
    rss_before = rss_mb()

    started = time.perf_counter()
    models = models_fit(x, t_x, T, m_x)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    scores = predictions_score(models, x, t_x, T, m_x)
    scored = time.perf_counter() - started
    total = fitted + scored
    distinct = len(np.unique(np.column_stack((x, t_x, T)), axis=0))

    print(f"{opts.customers:,} customers simulated in {simulated:.1f} s ({int((x > 0).sum()):,} repeat buyers, "
          f"{int(x.sum()):,} repeat orders; {distinct:,} distinct (x, t_x, T) histories)")
    bg, gg = models.purchases, models.value
    print(f"recovered BG/NBD r {bg.r:.3f} (true {TRUE['r']}), alpha {bg.alpha:.2f} ({TRUE['alpha']}), "
          f"a {bg.a:.3f} ({TRUE['a']}), b {bg.b:.3f} ({TRUE['b']})")
    print(f"recovered Gamma-Gamma p {gg.p:.3f} (true {TRUE['p']}), q {gg.q:.3f} ({TRUE['q']}), "
          f"gamma {gg.gamma:.2f} ({TRUE['gamma']})")
    print(f"fit (grouped) {fitted:.2f} s; scoring every customer {scored:.2f} s; total {total:.2f} s "
          f"= {total / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target")
    print(f"peak RSS {rss_mb():,.0f} MB (after simulating: {rss_before:,.0f} MB) = "
          f"{rss_mb() / TARGET_RSS_MB:.2f} of the 1 GB target")
    print("mean P(alive) {:.3f}; mean orders in 30/90/365 days {:.3f} / {:.3f} / {:.3f}; mean value per order "
          "{:.2f}; mean predicted value in a year {:.2f}".format(
              *(float(np.mean(scores[k])) for k in ("p_alive", "orders_30d", "orders_90d", "orders_365d",
                                                    "value_per_order", "predicted_value_365d"))))
    if not opts.no_baseline:
        started = time.perf_counter()
        ungrouped = bgnbd_fit(x, t_x, T)
        baseline = time.perf_counter() - started
        print(f"baseline: the BG/NBD fit over every row, ungrouped, {baseline:.2f} s (r {ungrouped.r:.3f}); "
              f"grouped fit of both models / ungrouped BG/NBD fit: {fitted / baseline:.2f}")


if __name__ == "__main__":
    main()
