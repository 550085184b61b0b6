"""Two-phase allocation for backfills: pilot (proportional) then Neyman on the pilot's shrunk
variances, with leave-one-out probabilities for the pilot traces. Simulated (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from samplers import JudgedOutcome, Moments, PopulationCounts, estimate
from samplers.two_phase import pilot_plan, second_phase, selected, waterfill

H = 20
BUDGET = 600


def _population() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """23,324 traces in 20 strata: 4 passing 30-70%, 16 passing 97-99.5%."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(200, 2000, H)
    rates = np.concatenate([rng.uniform(0.3, 0.7, 4), rng.uniform(0.97, 0.995, H - 4)])
    strata = np.repeat(np.arange(H), sizes)
    y = (rng.random(len(strata)) < rates[strata]).astype(float)
    return strata, y, [f"m/s={h}" for h in range(H)]


def _estimate(strata, y, names, counts, sel, pi) -> tuple[float, float, float]:
    outs = [JudgedOutcome(str(i), "q", names[strata[i]], bool(y[i]), float(pi[i]), 0)
            for i in sel.tolist()]  # fmt: skip
    j = estimate(outs, counts, method="wilson_kish").judge("q")
    return j.estimate, j.ci_low, j.ci_high  # type: ignore[return-value]


def test_waterfill_meets_the_budget_within_bounds() -> None:
    n = waterfill(np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0]),
                  np.array([10.0, 10.0, 5.0]), 12.0)  # fmt: skip
    assert n.sum() == pytest.approx(12.0) and n[2] == 5.0 and n[1] == pytest.approx(2 * n[0])


def test_pilot_is_nested_in_the_final_sample() -> None:
    plan = pilot_plan({"a": 1000, "b": 1000}, 200)
    assert plan.pilot_rates["a"] == pytest.approx(0.04)
    moments = {"a": Moments(40, 40, 40), "b": Moments(40, 20, 20)}  # a: all pass, b: 50%
    final = second_phase(plan, 200, moments)
    assert final.rates["b"] > final.rates["a"] >= plan.pilot_rates["a"]
    ids = [f"t{i}" for i in range(3000)]
    assert all(selected(t, final.rates["a"]) for t in ids if selected(t, plan.pilot_rates["a"]))
    # leave-one-out: the one failure of a stratum is weighted as if it had not been seen
    one_fail = second_phase(plan, 200, {"a": Moments(40, 39, 39), "b": Moments(40, 20, 20)})
    assert one_fail.probability("a", 0.0) < one_fail.rates["a"]
    assert one_fail.probability("a", 1.0) >= one_fail.rates["a"]


def test_two_phase_is_narrower_than_uniform_and_covers() -> None:
    """Equal total budget (600 of 23,324): half-width <= 0.85x uniform, coverage 93-97%."""
    strata, y, names = _population()
    truth, n_all = float(y.mean()), len(y)
    pops = {names[h]: int((strata == h).sum()) for h in range(H)}
    counts = PopulationCounts(3_600_000, "x")
    for name, n in pops.items():
        counts.add(0, "m", name, population=n)
    counts.register_rule("m", "stratified", ["q"])
    plan = pilot_plan(pops, BUDGET)
    pi1 = np.array([plan.pilot_rates[n] for n in names])[strata]
    res: dict[str, list] = {"uniform": [], "two_phase": []}
    sizes: list[int] = []
    for rep in range(300):
        u = np.random.default_rng(rep).random(n_all)  # one uniform per trace: nested draws
        pi_u = np.full(n_all, BUDGET / n_all)
        res["uniform"].append(_estimate(strata, y, names, counts, np.flatnonzero(u < pi_u), pi_u))
        pilot = u < pi1
        moments = {}
        for h, name in enumerate(names):
            m = pilot & (strata == h)
            moments[name] = Moments(float(m.sum()), float(y[m].sum()), float(y[m].sum()))
        final = second_phase(plan, BUDGET, moments)
        pi = np.array([final.rates[n] for n in names])[strata]
        sel = np.flatnonzero(u < pi)
        sizes.append(len(sel))
        pw = pi.copy()
        for i in np.flatnonzero(pilot).tolist():
            pw[i] = final.probability(names[strata[i]], float(y[i]))
        res["two_phase"].append(_estimate(strata, y, names, counts, sel, pw))
    arr = {k: np.array(v) for k, v in res.items()}
    cover = {k: float(np.mean((a[:, 1] <= truth) & (truth <= a[:, 2]))) for k, a in arr.items()}
    width = {k: float(np.mean(a[:, 2] - a[:, 1])) for k, a in arr.items()}
    assert abs(np.mean(sizes) - BUDGET) < 0.03 * BUDGET  # equal total budget
    assert width["two_phase"] <= 0.85 * width["uniform"], width
    assert 0.93 <= cover["two_phase"] <= 0.97, cover
