"""Statistical properties by simulation (fixed seeds): unbiasedness, 95% coverage, and
Neyman allocation beating uniform sampling at equal judge budget."""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from samplers import (
    JudgedOutcome,
    Moments,
    Policy,
    PopulationCounts,
    Randomness,
    Sampler,
    TraceRecord,
    estimate,
    parse_policy,
)
from tests.samplers_fixtures import HOUR, T0, record


def population(
    strata: dict[str, tuple[int, float]], seed: int
) -> tuple[list[TraceRecord], list[bool]]:
    """A finite population: per stratum (size, pass probability); fixed once."""
    rng = random.Random(seed)
    recs, ys = [], []
    for name, (n, p) in strata.items():
        for _ in range(n):
            recs.append(record(rng, ts=T0 + HOUR + rng.randrange(HOUR), tags={"s": name}))
            ys.append(rng.random() < p)
    order = sorted(range(len(recs)), key=lambda i: recs[i].timestamp_ms)
    return [recs[i] for i in order], [ys[i] for i in order]


def history(strata: dict[str, tuple[int, float]], rule: str = "main") -> PopulationCounts:
    """Last window's populations and judge outcomes, as a restored snapshot would hold."""
    counts = PopulationCounts(HOUR, "history")
    for name, (n, p) in strata.items():
        counts.add(T0, rule, f"{rule}/s={name}", population=n)
        counts.add_moments(T0, f"{rule}/s={name}", "q", Moments(40, 40 * p, 40 * p))
    return counts


def salted(policy: Policy, salt: str) -> Policy:
    """Same policy, independent randomness: a fresh sample of the same population."""
    return dataclasses.replace(policy, randomness=Randomness(salt=salt))


def draw(policy: Policy, strata: dict[str, tuple[int, float]], recs, ys, method="wilson_kish"):
    """One repetition: a fresh sampler (same history), decisions, judging, the estimate.

    The overall interval of method="auto" is Wilson-Kish for pass rates, so "wilson_kish"
    gives the same overall result without the per-stratum Monte Carlo (checked below)."""
    s = Sampler(policy, counts=history(strata))
    outs = []
    deferred = 0
    for rec, y in zip(recs, ys, strict=True):
        d = s.decide(rec)
        if d.selected:
            outs.append(JudgedOutcome(d.trace_id, "q", d.stratum, y, d.probability, T0 + HOUR))
        deferred += d.reason in ("budget", "pacing")
    assert deferred == 0  # the guard must not interfere with the design under test
    return estimate(outs, s.counts, start_ms=T0 + HOUR, method=method).judge("q")


STRATA = {  # size, true pass probability
    "a": (450, 0.95),
    "b": (220, 0.70),
    "c": (110, 0.90),
    "d": (60, 0.50),
    "e": (35, 0.85),
    "f": (20, 0.30),
    "g": (10, 0.99),
    "h": (6, 0.60),
}
NEYMAN = parse_policy(
    """
name = "sim"
[budget]
window = "1h"
max_traces = 240
pacing = "none"
headroom = 0.2
[[judge]]
name = "q"
scorer = "builtin:Safety"
[[policy]]
name = "main"
type = "stratified"
key_fields = ["tags.s"]
allocation = "neyman"
min_per_stratum = 3
"""
)


def test_estimate_is_unbiased_and_95_percent_interval_covers_in_93_to_97_percent() -> None:
    recs, ys = population(STRATA, seed=20)
    truth = float(np.mean(ys))
    reps = 600
    results = np.array(
        [
            (j.estimate, j.ci_low, j.ci_high, j.n_judged)
            for j in (draw(salted(NEYMAN, f"rep-{i}"), STRATA, recs, ys) for i in range(reps))
        ]
    )
    auto = draw(salted(NEYMAN, "rep-0"), STRATA, recs, ys, method="auto")
    assert (auto.ci_low, auto.ci_high, auto.method) == (*results[0, 1:3], "wilson_kish")
    est, lo, hi, n = results.T
    assert 170 < n.mean() < 215  # ~0.8 x 240 judged per repetition, 21% of the population
    assert abs(est.mean() - truth) < 3 * est.std() / np.sqrt(reps)  # unbiased
    coverage = float(np.mean((lo <= truth) & (truth <= hi)))
    assert 0.93 <= coverage <= 0.97, coverage


HETERO = {"easy1": (2400, 0.99), "easy2": (2400, 0.97), "hard1": (500, 0.5), "hard2": (500, 0.4)}


def test_neyman_is_narrower_than_uniform_at_equal_judge_budget() -> None:
    recs, ys = population(HETERO, seed=21)
    n_total = sum(n for n, _ in HETERO.values())
    uniform = parse_policy(
        f"""
[budget]
window = "1h"
max_traces = 240
pacing = "none"
[[judge]]
name = "q"
scorer = "builtin:Safety"
[[policy]]
name = "uniform"
type = "probabilistic"
rate = {0.8 * 240 / n_total}
"""
    )
    widths: dict[str, list[float]] = {"neyman": [], "uniform": []}
    sizes: dict[str, list[int]] = {"neyman": [], "uniform": []}
    for i in range(30):
        for name, policy in (("neyman", NEYMAN), ("uniform", uniform)):
            j = draw(salted(policy, f"w-{i}"), HETERO, recs, ys)
            widths[name].append(j.ci_high - j.ci_low)
            sizes[name].append(j.n_judged)
    assert np.mean(sizes["neyman"]) <= 1.03 * np.mean(sizes["uniform"])  # same judge spend
    ratio = np.mean(widths["neyman"]) / np.mean(widths["uniform"])
    assert ratio < 0.8, ratio
