"""Two-phase allocation for one-shot backfills, where no outcome is known before sampling.

Phase 1 (pilot): a `pilot_share` of the budget, proportional: every stratum at the same rate
pi1 = pilot_share x n / N. The pilot is judged first. Phase 2: the whole budget n is
re-allocated by Neyman on the pilot's shrunk standard deviations (`combined_std`, as the
sampler's planner does), with each stratum's pilot size as its lower bound, giving final
rates pi_h >= pi1. A trace is selected iff R >= T(pi_h), R the hashed randomness of its id,
so the pilot (R >= T(pi1)) is nested in the final sample and phase 2 adds the traces with
T(pi_h) <= R < T(pi1): conditionally on the pilot, a Bernoulli((pi_h - pi1)/(1 - pi1)) draw
of the rest. Every selected trace of stratum h, pilot or not, has inclusion probability
pi_h = pi1 + (1 - pi1) q_h; use it as `JudgedOutcome.probability` and the stratum sizes as
the population counts, and `estimate()` gives the two-phase estimate and variance (see
docs/statistics.md for why, and the small bias of a data-dependent q_h).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .allocation import DEFAULT_VARIANCE
from .counts import Moments
from .randomness import hashed_randomness, threshold, threshold_probability


@dataclass(frozen=True)
class TwoPhasePlan:
    """Per stratum: population N_h, pilot rate pi1_h and (after phase 2) final rate pi_h."""

    populations: Mapping[str, int]
    pilot_rates: Mapping[str, float]
    rates: Mapping[str, float] | None = None
    std: Mapping[str, float] | None = None
    loo: Mapping[tuple[str, float], float] | None = None

    def probability(self, stratum: str, pilot_value: float | None = None) -> float:
        """The inclusion probability to record for a selected trace of `stratum`: for a
        pilot trace with pass/fail outcome `pilot_value` (1.0/0.0), pi1 + (1 - pi1) q_h
        with q_h as it would have been without that trace in the pilot (leave-one-out: it
        removes the bias of an allocation that depends on the pilot's own outcomes)."""
        if self.rates is None:
            return self.pilot_rates[stratum]
        if pilot_value is not None and self.loo is not None:
            p = self.loo.get((stratum, float(pilot_value)))
            if p is not None:
                return p
        return self.rates[stratum]


def pilot_plan(populations: Mapping[str, int], budget: float, pilot_share: float = 0.4,
               min_per_stratum: int = 2) -> TwoPhasePlan:  # fmt: skip
    """Phase 1: the same rate pi1 = pilot_share x budget / N in every stratum, raised where
    a stratum would expect fewer than `min_per_stratum` pilot traces (so each has a variance
    to shrink)."""
    if not 0 < pilot_share <= 1:
        raise ValueError(f"expected 0 < pilot_share <= 1, got {pilot_share!r}")
    total = sum(populations.values())
    base = min(1.0, pilot_share * budget / total) if total else 0.0
    rates = {
        s: _q(min(1.0, max(base, min_per_stratum / n))) if n else 0.0
        for s, n in populations.items()
    }
    return TwoPhasePlan(dict(populations), rates)


def second_phase(plan: TwoPhasePlan, budget: float,
                 pilot_moments: Mapping[str, Moments], *, prior_strength: float = 2.0,
                 min_std: float = 0.05) -> TwoPhasePlan:  # fmt: skip
    """Phase 2: Neyman over the whole `budget` on the pilot's shrunk std devs (pilot outcome
    moments per stratum, e.g. `Moments(n, passes, passes)`), never below the pilot rates."""
    names = sorted(plan.populations)
    pop = np.array([plan.populations[s] for s in names], float)
    lower = np.array([plan.pilot_rates[s] for s in names]) * pop
    limit = max(budget, float(lower.sum()))

    given = [pilot_moments.get(s, Moments()) for s in names]
    mom = np.array([[m.n, m.total, m.total_sq] for m in given], float).reshape(-1, 3)

    def allocate(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        std = _shrunk_std(m, prior_strength, min_std)
        n = waterfill(pop * std, lower, pop, limit)
        return np.where(pop > 0, np.maximum(n, lower) / np.maximum(pop, 1), 0.0), std

    final, std = allocate(mom)
    rates = {s: _q(min(1.0, float(r))) for s, r in zip(names, final, strict=True)}
    loo: dict[tuple[str, float], float] = {}
    for i, s in enumerate(names):
        m = pilot_moments.get(s)
        if m is None or m.n < 1:
            continue
        for v in (0.0, 1.0):  # pass/fail pilot outcomes present in the stratum
            if (v == 1.0 and m.total < 1) or (v == 0.0 and m.n - m.total < 1):
                continue
            without = mom.copy()
            without[i] -= (1.0, v, v * v)
            alt, _ = allocate(without)
            loo[(s, v)] = _q(min(1.0, float(alt[i])))
    return TwoPhasePlan(plan.populations, plan.pilot_rates, rates,
                        dict(zip(names, std.tolist(), strict=True)), loo)  # fmt: skip


def _shrunk_std(m: np.ndarray, k: float, min_std: float) -> np.ndarray:
    """`combined_std` of one judge for every stratum at once: rows of m are (n, sum, sum of
    squares); moments shrunk by k pseudo-observations toward the pooled ones."""
    pooled = m.sum(axis=0)
    if pooled[0] <= 0:
        return np.full(len(m), max(0.5, min_std))
    g1, g2 = pooled[1] / pooled[0], pooled[2] / pooled[0]
    denom = m[:, 0] + k
    m1 = (m[:, 1] + k * g1) / denom
    m2 = (m[:, 2] + k * g2) / denom
    var = np.maximum(m2 - m1 * m1, 0.0)
    if abs(pooled[2] - pooled[1]) > 1e-9 * max(1.0, pooled[0]):  # scores: rescale to 0.25
        pv = g2 - g1 * g1
        var = DEFAULT_VARIANCE * var / pv if pv > 0 else np.full(len(m), DEFAULT_VARIANCE)
    return np.maximum(np.sqrt(var), min_std)


def waterfill(shape: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              total: float) -> np.ndarray:  # fmt: skip
    """n_h = clip(lam x shape_h, lower_h, upper_h) with sum n_h = total (or as close as the
    bounds allow), solved exactly: the sum is piecewise linear in lam between the
    breakpoints lower/shape and upper/shape (the one-budget case of `bounded_allocation`)."""
    pos = shape > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        knots = np.unique(np.concatenate([lower[pos] / shape[pos], upper[pos] / shape[pos]]))
    if len(knots) == 0:
        return lower.copy()
    sums = np.clip(knots[:, None] * shape[None, :], lower, upper).sum(axis=1)
    lam = float(np.interp(total, sums, knots))
    return np.clip(lam * shape, lower, upper)


def selected(trace_id: str, rate: float, salt: str = "backfill") -> bool:
    """Whether a trace is in the sample at `rate` (nested: pilot rate <= final rate)."""
    return hashed_randomness(trace_id, salt) >= threshold(rate)


def _q(p: float) -> float:
    return threshold_probability(threshold(p))
