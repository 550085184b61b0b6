"""Expected precision of a pass-rate estimate before any trace is judged.

The designer shows these next to a policy's cost: the expected half-width of the
post-stratified overall pass rate (what `estimate()` reports) and that of a uniform random
sample of the same expected size, both from per-stratum populations, expected samples and
assumed pass rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .estimators import z_value


@dataclass(frozen=True, slots=True)
class StratumDesign:
    """One stratum over the estimation horizon: population, expected judged traces and the
    pass rate assumed for it (from past verdicts, else a prior)."""

    population: float
    expected_sample: float
    pass_rate: float


def _bernoulli_var(p: float) -> float:
    p = min(1.0, max(0.0, p))
    return p * (1.0 - p)


def stratified_half_width(strata: Iterable[StratumDesign], confidence: float = 0.95) -> float:
    """Expected half-width of the post-stratified pass rate `sum W_h p_h`.

    Var = sum W_h^2 p_h q_h (1 - f_h) E[1/n_h]; under Bernoulli selection the sample size
    is random, and E[1/n_h] ~ (1 + 1/n_h) / n_h (second-order delta method). A stratum with
    population but no expected sample makes the estimate unidentifiable: infinity.
    """
    rows = [s for s in strata if s.population > 0]
    total = sum(s.population for s in rows)
    if total <= 0:
        return math.inf
    var = 0.0
    for s in rows:
        if s.expected_sample <= 0:
            return math.inf
        w = s.population / total
        f = min(1.0, s.expected_sample / s.population)
        n = s.expected_sample
        var += w * w * _bernoulli_var(s.pass_rate) * (1.0 - f) * (1.0 + 1.0 / n) / n
    return z_value(confidence) * math.sqrt(var)


def uniform_half_width(
    strata: Iterable[StratumDesign], sample: float, confidence: float = 0.95
) -> float:
    """Expected half-width of the plain mean of a uniform random sample of size `sample`
    drawn from the same strata (the policy nobody has to design)."""
    rows = [s for s in strata if s.population > 0]
    total = sum(s.population for s in rows)
    if total <= 0 or sample <= 0:
        return math.inf
    p = sum(s.population * s.pass_rate for s in rows) / total
    # Total variance = within-stratum + between-stratum.
    within = sum(s.population * _bernoulli_var(s.pass_rate) for s in rows) / total
    between = sum(s.population * (s.pass_rate - p) ** 2 for s in rows) / total
    f = min(1.0, sample / total)
    var = (within + between) * (1.0 - f) * (1.0 + 1.0 / sample) / sample
    return z_value(confidence) * math.sqrt(var)


def shrunk_rate(passes: float, judged: float, prior: float, strength: float = 4.0) -> float:
    """A stratum's pass rate from its past verdicts, shrunk toward `prior` with `strength`
    pseudo-observations (a stratum with two verdicts does not claim 0% or 100%)."""
    return (passes + strength * prior) / (judged + strength)
