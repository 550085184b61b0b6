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

from .allocation import bounded_allocation, combined_std
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


def pilot_plan(populations: Mapping[str, int], budget: float, pilot_share: float = 0.3,
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
    limit = np.array([max(budget, float(lower.sum()))])
    ones = np.ones((len(names), 1))

    def allocate(moments: Mapping[str, Moments]) -> tuple[np.ndarray, np.ndarray]:
        pooled = Moments()
        for s in names:
            pooled = pooled + moments.get(s, Moments())
        std = np.array([combined_std([(moments.get(s, Moments()), pooled)] if pooled.n else [],
                                     prior_strength, min_std) for s in names])  # fmt: skip
        n, _ = bounded_allocation(pop * std, lower, pop.copy(), ones, limit)
        return np.where(pop > 0, np.maximum(n / np.maximum(pop, 1), lower / np.maximum(pop, 1)),
                        0.0), std  # fmt: skip

    final, std = allocate(pilot_moments)
    rates = {s: _q(min(1.0, float(r))) for s, r in zip(names, final, strict=True)}
    loo: dict[tuple[str, float], float] = {}
    for i, s in enumerate(names):
        m = pilot_moments.get(s)
        if m is None or m.n < 1:
            continue
        for v in (0.0, 1.0):  # pass/fail pilot outcomes present in the stratum
            if (v == 1.0 and m.total < 1) or (v == 0.0 and m.n - m.total < 1):
                continue
            without = dict(pilot_moments)
            without[s] = Moments(m.n - 1, m.total - v, m.total_sq - v * v)
            alt, _ = allocate(without)
            loo[(s, v)] = _q(min(1.0, float(alt[i])))
    return TwoPhasePlan(plan.populations, plan.pilot_rates, rates,
                        dict(zip(names, std.tolist(), strict=True)), loo)  # fmt: skip


def selected(trace_id: str, rate: float, salt: str = "backfill") -> bool:
    """Whether a trace is in the sample at `rate` (nested: pilot rate <= final rate)."""
    return hashed_randomness(trace_id, salt) >= threshold(rate)


def _q(p: float) -> float:
    return threshold_probability(threshold(p))
