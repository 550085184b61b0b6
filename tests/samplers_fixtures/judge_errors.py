"""A finite population with human truth and a judge wrong in known ways (simulations)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samplers import JudgedOutcome, PopulationCounts
from samplers.corrected import HumanLabel
from samplers.review import review_decision, review_rate
from samplers.schema import Review

T0 = 1_700_000_000_000
HOUR = 3_600_000

# stratum: (size, human pass rate, judge false-pass rate on bad, judge false-fail rate on good)
STRATA: dict[str, tuple[int, float, float, float]] = {
    "a": (5000, 0.95, 0.05, 0.01),
    "b": (4000, 0.70, 0.25, 0.01),  # passes 25% of bad traces
    "c": (800, 0.60, 0.02, 0.05),  # fails 5% of good ones
    "d": (200, 0.30, 0.03, 0.03),
}
STRATUM = {name: f"main/s={name}" for name in STRATA}
JUDGED_RATE = {"a": 0.04, "b": 0.1, "c": 0.2, "d": 0.5}  # ~900 judged traces


@dataclass(frozen=True)
class Population:
    strata: np.ndarray  # stratum index per trace
    names: list[str]
    human: np.ndarray  # 0/1
    judge: np.ndarray  # 0/1
    ids: list[str]

    @property
    def truth(self) -> float:
        return float(self.human.mean())

    @property
    def judge_truth(self) -> float:
        return float(self.judge.mean())


def population(seed: int = 0, strata: dict = STRATA) -> Population:
    rng = np.random.default_rng(seed)
    names = list(strata)
    idx, human, judge = [], [], []
    for h, (n, p, fp, fn) in enumerate(strata.values()):
        y = rng.random(n) < p
        flip = np.where(y, rng.random(n) < fn, rng.random(n) < fp)
        idx.append(np.full(n, h))
        human.append(y.astype(float))
        judge.append((y ^ flip).astype(float))
    s = np.concatenate(idx)
    ids = [f"tr-{seed:08x}{i:024x}" for i in range(len(s))]
    return Population(s, names, np.concatenate(human), np.concatenate(judge), ids)


def draw(
    pop: Population, rng: np.random.Generator, review: Review,
    rates: dict[str, float] = JUDGED_RATE, hashed: bool = False,
) -> tuple[list[JudgedOutcome], list[HumanLabel], PopulationCounts]:  # fmt: skip
    """One repetition: a stratified Bernoulli judged sample, then the review draw on it at
    `review_rate` (by `review_decision` on the ids if `hashed`, else by `rng`: the same
    Bernoulli draw, faster)."""
    pi = np.array([rates[n] for n in pop.names])[pop.strata]
    sel = np.flatnonzero(rng.random(len(pi)) < pi)
    counts = PopulationCounts(HOUR, "sim")
    n_sel = np.bincount(pop.strata[sel], minlength=len(pop.names))
    for h, name in enumerate(pop.names):
        counts.add(T0, "main", f"main/s={name}", population=int((pop.strata == h).sum()),
                   selected=int(n_sel[h]))  # fmt: skip
    counts.register_rule("main", "stratified", ["q"])
    r = np.array([review_rate(review, int(n)) for n in n_sel])
    u = rng.random(len(sel))
    judged, labels = [], []
    for i, ui in zip(sel.tolist(), u.tolist(), strict=True):
        h = int(pop.strata[i])
        stratum = STRATUM[pop.names[h]]
        tid = pop.ids[i]
        judged.append(JudgedOutcome(tid, "q", stratum, bool(pop.judge[i]), float(pi[i]), T0))
        if hashed:
            d = review_decision(tid, stratum, int(n_sel[h]), review)
            chosen, rh = d.selected, d.probability
        else:
            chosen, rh = ui < r[h], float(r[h])
        if chosen:
            labels.append(HumanLabel(tid, "q", bool(pop.human[i]), rh))
    return judged, labels, counts
