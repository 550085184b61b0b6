"""Allocation math: bounded water-filling under several budgets, and shrunk stratum std devs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .counts import Moments

DEFAULT_VARIANCE = 0.25  # p(1-p) at p = 0.5: the uninformed prior for a pass rate


def allocation_shape(
    method: str, population: np.ndarray, std: np.ndarray, cost: np.ndarray
) -> np.ndarray:
    """Relative sample sizes n_h before bounds: proportional N_h, equal 1, Neyman N_h*S_h,
    cost-optimal N_h*S_h/sqrt(c_h)."""
    if method == "proportional":
        return population.astype(float)
    if method == "equal":
        return np.ones_like(population, dtype=float)
    if method == "neyman":
        return population * std
    if method == "cost_optimal":
        return population * std / np.sqrt(np.maximum(cost, 1e-12))
    raise ValueError(f"unknown allocation {method!r}")


def bounded_allocation(
    shape: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    costs: np.ndarray,
    limits: np.ndarray,
    iterations: int = 60,
) -> tuple[np.ndarray, bool]:
    """n_h = clip(lam * shape_h, lower_h, upper_h) with the largest lam such that
    costs.T @ n <= limits for every resource (columns of `costs`, entries of `limits`).

    Returns (n, minimums_met). When even the lower bounds exceed a limit, the lower bounds
    are scaled down to fit and minimums_met is False: the budget wins over minimums.
    """
    lower = np.minimum(lower, upper)
    base = costs.T @ lower
    over = base > limits * (1 + 1e-12)
    if over.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.min(np.where(base > 0, limits / base, np.inf))
        return lower * max(0.0, float(scale)), False
    pos = shape > 0
    if not pos.any():
        return lower.copy(), True

    def spend(lam: float) -> np.ndarray:
        return costs.T @ np.clip(lam * shape, lower, upper)

    lam_hi = float(np.max(upper[pos] / shape[pos]))
    if np.all(spend(lam_hi) <= limits * (1 + 1e-12)):
        return np.clip(lam_hi * shape, lower, upper), True
    lo, hi = 0.0, lam_hi
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if np.all(spend(mid) <= limits):
            lo = mid
        else:
            hi = mid
    return np.clip(lo * shape, lower, upper), True


def is_binary(m: Moments) -> bool:
    """True when every value was 0 or 1 (then sum of squares equals sum)."""
    return m.n > 0 and abs(m.total_sq - m.total) <= 1e-9 * max(1.0, m.n)


def shrunk_variance(stratum: Moments, pooled: Moments, prior_strength: float) -> float:
    """Variance of a stratum's outcomes with its first two moments shrunk toward the pooled
    ones by `prior_strength` pseudo-observations (Beta(k*p, k*(1-p)) for pass rates), so a
    stratum at 0% or 100% keeps a positive variance."""
    if pooled.n <= 0:
        return DEFAULT_VARIANCE
    g1 = pooled.total / pooled.n
    g2 = pooled.total_sq / pooled.n
    k = prior_strength
    denom = stratum.n + k
    if denom <= 0:
        return max(g2 - g1 * g1, 0.0)
    m1 = (stratum.total + k * g1) / denom
    m2 = (stratum.total_sq + k * g2) / denom
    return max(m2 - m1 * m1, 0.0)


def combined_std(
    per_judge: Sequence[tuple[Moments, Moments]],
    prior_strength: float,
    min_std: float,
    combine: str = "mean",
) -> float:
    """S_h for Neyman: combine the judges' shrunk variances (numeric judges are rescaled to
    the pass-rate scale by their pooled variance), floor at `min_std`."""
    if not per_judge:
        return max(math.sqrt(DEFAULT_VARIANCE), min_std)
    variances = []
    for stratum, pooled in per_judge:
        v = shrunk_variance(stratum, pooled, prior_strength)
        if pooled.n > 0 and not is_binary(pooled):
            pv = pooled.total_sq / pooled.n - (pooled.total / pooled.n) ** 2
            v = DEFAULT_VARIANCE * v / pv if pv > 0 else DEFAULT_VARIANCE
        variances.append(v)
    v = max(variances) if combine == "max" else sum(variances) / len(variances)
    return max(math.sqrt(v), min_std)
