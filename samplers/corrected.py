"""Judge-error-corrected estimates: prediction-powered inference on the review subsample.

Per judge, three estimates of the *human* pass rate (or mean score), each with an interval:

- judge-only: today's post-stratified estimate of the judge's verdicts (`estimate()`);
- human-only: the reviewed traces alone, weighted by 1/(pi x r);
- corrected: judge mean on the judged sample + (human - lambda x judge) on the reviewed
  subsample, stratified and design-weighted; lambda in [0, 1] is power-tuned (PPI++) to
  minimise the variance (lambda = 0 is human-only, lambda = 1 is plain PPI).

Within a stratum (or a group of collapsed strata) G, with judged sample S (pi_i), reviewed
subsample R (r_i = P(i in R | i in S)), w = 1/pi, v = w/r, judge value f, human value y:

    theta_G(lambda) = ybar_R + lambda (fbar_S - fbar_R)       (Hajek means: w over S, v over R)
    V_G = V1 + V2(lambda)
    V1  = n/(n-1) sum_R (1-pi)/(pi^2 r) (y - ybar_R)^2 / Nhat_S^2          (phase 1: S)
    V2  = n/(n-1) sum_R (1-r)/r^2 w^2 (e - ebar_R)^2 / Nhat_S^2, e = y - lambda f  (phase 2)

and theta = sum_G W_G theta_G, V = sum_G W_G^2 V_G with W_G the population shares. Both
components are smoothed with `smoothing` pseudo-observations toward the pooled ones (as in
`estimate()`), so a stratum whose few reviews all agree does not claim zero variance. The
derivation, the collapsing rule and the simulated coverage are in docs/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .counts import PopulationCounts
from .estimators import (
    EstimateReport,
    JudgeEstimate,
    collect,
    df_adjusted,
    estimate,
    latest_by_judge,
    t_value,
    wilson_interval,
    z_value,
)
from .outcomes import JudgedOutcome, outcome_value
from .verdicts import PassRule

COLLAPSED = "__collapsed__"


@dataclass(frozen=True, slots=True)
class HumanLabel:
    """A human's answer to judge `judge`'s question on a reviewed trace. `review_probability`
    is r from `review_decision` (the conditional probability of review given judged)."""

    trace_id: str
    judge: str
    value: object
    review_probability: float


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval; all None when there is no data. `n`: the traces it
    rests on (judged for judge-only, reviewed otherwise)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    variance: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_INTERVAL = Interval(None, None, None, None, 0)


@dataclass(frozen=True)
class CorrectedStratum:
    """One stratum: `group` is the stratum itself, or COLLAPSED when it had fewer than
    `min_reviewed` reviewed traces and shares its correction with other such strata (its
    human-only and corrected rows are then empty: see the judge's overall figures)."""

    stratum: str
    rule: str
    group: str
    population: float
    n_judged: int
    n_reviewed: int
    judge_only: Interval
    human_only: Interval
    corrected: Interval


@dataclass(frozen=True)
class CorrectedEstimate:
    """One judge's three estimates. `power` is the lambda used (None: no reviewed trace);
    `judged_share`: population share of the judged strata the estimates cover;
    `n_unmatched`: human labels on traces without a usable verdict of this judge."""

    judge: str
    metric: str
    judge_only: Interval
    human_only: Interval
    corrected: Interval
    n_judged: int
    n_reviewed: int
    power: float | None
    judged_share: float
    n_unmatched: int = 0
    strata: list[CorrectedStratum] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report_entry(self) -> dict[str, Any]:
        """The report's per-judge keys: `corrected` {estimate, ci_low, ci_high, n_reviewed}
        plus `human_only`, `judge_only` (same shape) and `power`."""

        def short(i: Interval, n: int) -> dict[str, Any]:
            return {"estimate": i.estimate, "ci_low": i.ci_low, "ci_high": i.ci_high,
                    "n_reviewed": n}  # fmt: skip

        return {
            "corrected": short(self.corrected, self.n_reviewed),
            "human_only": short(self.human_only, self.n_reviewed),
            "judge_only": {**short(self.judge_only, self.n_reviewed), "n_judged": self.n_judged},
            "power": self.power,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- groups


@dataclass
class _Group:
    """Arrays of one stratum or collapsed group: S (pi, f) and R (indices into S, y, r)."""

    name: str
    weight: float  # population share W_G
    pi: np.ndarray
    f: np.ndarray
    ri: np.ndarray  # indices of reviewed units in S
    y: np.ndarray
    r: np.ndarray

    @property
    def n_reviewed(self) -> int:
        return len(self.ri)


@dataclass
class _Parts:
    """theta(lambda) = ybar + lambda (mf - fbar); V(lambda) = v1 + ayy - 2 lambda ayf +
    lambda^2 aff (all smoothed)."""

    mf: float
    ybar: float
    fbar: float
    v1: float
    ayy: float
    ayf: float
    aff: float
    n: int

    def theta(self, lam: float) -> float:
        return self.ybar + lam * (self.mf - self.fbar)

    def var(self, lam: float) -> float:
        return max(self.v1 + self.ayy - 2 * lam * self.ayf + lam * lam * self.aff, 0.0)


def _raw_sums(g: _Group) -> tuple[float, float, float, float, np.ndarray, np.ndarray]:
    """(mf, ybar, fbar, nhat, a1, a2) of a group; a1, a2 per reviewed unit."""
    w = 1.0 / g.pi
    nhat = float(w.sum())
    mf = float((w * g.f).sum() / nhat)
    wr = w[g.ri]
    v = wr / g.r
    ybar = float((v * g.y).sum() / v.sum())
    fbar = float((v * g.f[g.ri]).sum() / v.sum())
    pir = g.pi[g.ri]
    a1 = (1 - pir) / (pir * pir * g.r) / (nhat * nhat)
    a2 = (1 - g.r) / (g.r * g.r) * wr * wr / (nhat * nhat)
    return mf, ybar, fbar, nhat, a1, a2


def _parts(g: _Group, prior: np.ndarray, k: float) -> _Parts:
    """Variance components of a group, smoothed toward `prior` = pooled (s_yy, s_yf, s_ff)."""
    mf, ybar, fbar, _, a1, a2 = _raw_sums(g)
    n = g.n_reviewed
    dy = g.y - ybar
    df = g.f[g.ri] - fbar
    c = n / (n - 1) if n > 1 else 0.0
    raw = np.array([c * (a1 * dy * dy).sum(), c * (a2 * dy * dy).sum(),
                    c * (a2 * dy * df).sum(), c * (a2 * df * df).sum()])  # fmt: skip
    pri = np.array([a1.sum() * prior[0], a2.sum() * prior[0], a2.sum() * prior[1],
                    a2.sum() * prior[2]])  # fmt: skip
    sm = (n * raw + k * pri) / (n + k)
    return _Parts(mf, ybar, fbar, float(sm[0]), float(sm[1]), float(sm[2]), float(sm[3]), n)


def _pooled_prior(groups: list[_Group], binary: bool) -> np.ndarray:
    """Pooled (s_yy, s_yf, s_ff) of the reviewed pairs (weights v); for pass rates the
    disagreement variance is floored at d~(1-d~), d~ = (disagreements + 1/2)/(n + 1)."""
    ys, fs, vs = [], [], []
    for g in groups:
        ys.append(g.y)
        fs.append(g.f[g.ri])
        vs.append(1.0 / (g.pi[g.ri] * g.r))
    y, f, v = np.concatenate(ys), np.concatenate(fs), np.concatenate(vs)
    if len(y) == 0:
        return np.array([0.25, 0.0, 0.25])
    v = v / v.sum()
    my, mf = (v * y).sum(), (v * f).sum()
    syy = float((v * (y - my) ** 2).sum())
    syf = float((v * (y - my) * (f - mf)).sum())
    sff = float((v * (f - mf) ** 2).sum())
    if binary:
        d = (float((y != f).sum()) + 0.5) / (len(y) + 1)
        short = d * (1 - d) - (syy - 2 * syf + sff)
        if short > 0:
            syy += short / 2
            sff += short / 2
        p = (float(y.sum()) + 0.5) / (len(y) + 1)
        syy = max(syy, p * (1 - p))
    return np.array([syy, syf, sff])


def _interval(est: float, var: float, n: int, binary: bool, confidence: float) -> Interval:
    if binary:
        p = min(max(est, 0.0), 1.0)
        if var <= 0:
            return Interval(p, p, p, var, n)
        n_eff = max(p * (1 - p), 1e-12) / var
        lo, hi = wilson_interval(p, df_adjusted(n_eff, max(n - 1, 1), confidence),
                                 z_value(confidence))  # fmt: skip
        return Interval(p, lo, hi, var, n)
    half = t_value(confidence, max(n - 1, 1)) * math.sqrt(max(var, 0.0))
    return Interval(est, est - half, est + half, var, n)


def _from_judge(j: JudgeEstimate | None) -> Interval:
    if j is None:
        return NO_INTERVAL
    return Interval(j.estimate, j.ci_low, j.ci_high, j.variance, j.n_judged)


# --------------------------------------------------------------------------- estimates


def corrected_estimates(
    judged: Iterable[JudgedOutcome],
    labels: Iterable[HumanLabel],
    counts: PopulationCounts,
    confidence: float = 0.95,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    include_dropped: bool = False,
    rules: Mapping[str, PassRule] | None = None,
    power_tuning: bool = True,
    min_reviewed: int = 2,
    smoothing: float = 2.0,
    judge_only: EstimateReport | None = None,
    **estimate_options: Any,
) -> list[CorrectedEstimate]:
    """Judge-only, human-only and corrected estimates per judge (sorted by judge name).

    `judged` and `counts` are what `estimate()` takes; `labels` are the human labels of the
    reviewed traces (a label on a trace without a usable verdict of its judge is counted in
    `n_unmatched` and otherwise ignored; the last label of a trace counts). Strata with fewer
    than `min_reviewed` reviewed traces are collapsed into one group that shares one
    correction (with more groups added, fewest reviews first, until it has `min_reviewed`).
    `power_tuning=False` fixes lambda = 1 (plain PPI). `judge_only`: a report already
    computed with the same arguments, else `estimate(..., **estimate_options)` is run.
    """
    judged = list(judged)
    by_judge = latest_by_judge(judged, start_ms, end_ms)
    human: dict[str, dict[str, HumanLabel]] = {}
    for lab in labels:
        human.setdefault(lab.judge, {})[lab.trace_id] = lab
    if judge_only is None:
        judge_only = estimate(judged, counts, confidence, start_ms=start_ms, end_ms=end_ms,
                              include_dropped=include_dropped, rules=rules, smoothing=smoothing,
                              **estimate_options)  # fmt: skip
    j_only = {j.judge: j for j in judge_only.judges}
    cells = counts.cells(start_ms, end_ms)
    out = []
    for judge in sorted(set(by_judge) | set(human)):
        col = collect(judge, by_judge.get(judge, {}).values(), counts, cells, include_dropped,
                      rules)  # fmt: skip
        out.append(_one_judge(judge, col.strata, col.binary, human.get(judge, {}),
                              j_only.get(judge), (rules or {}).get(judge), confidence,
                              power_tuning, min_reviewed, smoothing))  # fmt: skip
    return out


def _one_judge(
    judge: str, strata: Mapping[str, Any], binary: bool, labels: Mapping[str, HumanLabel],
    j_est: JudgeEstimate | None, rule: PassRule | None, confidence: float,
    power_tuning: bool, min_reviewed: int, k: float,
) -> CorrectedEstimate:  # fmt: skip
    judged_strata = [st for st in strata.values() if st.y]
    total_pop = sum(st.population for st in strata.values())
    pop_j = sum(st.population for st in judged_strata)
    j_rows = {s.stratum: s for s in j_est.strata} if j_est is not None else {}
    groups: list[_Group] = []
    matched: set[str] = set()
    for st in sorted(judged_strata, key=lambda s: s.name):
        ri, ys, rs = [], [], []
        for i, tid in enumerate(st.ids):
            lab = labels.get(tid)
            if lab is None:
                continue
            v = outcome_value(lab.value, rule)
            if v is None or not 0 < lab.review_probability <= 1:
                continue
            matched.add(tid)
            binary = binary and v[1]
            ri.append(i)
            ys.append(v[0])
            rs.append(lab.review_probability)
        pi = np.minimum(np.asarray(st.pi, float), 1.0)
        groups.append(_Group(st.name, st.population / pop_j if pop_j else 0.0, pi,
                             np.asarray(st.y, float), np.asarray(ri, int),
                             np.asarray(ys, float), np.asarray(rs, float)))  # fmt: skip
    n_unmatched = len(set(labels) - matched)
    metric = "pass_rate" if binary else "mean"
    n_judged = sum(len(g.pi) for g in groups)
    n_reviewed = sum(g.n_reviewed for g in groups)
    share = pop_j / total_pop if total_pop else 0.0
    notes: list[str] = []

    def empty_rows() -> list[CorrectedStratum]:
        return [CorrectedStratum(g.name, strata[g.name].rule, g.name, strata[g.name].population,
                                 len(g.pi), g.n_reviewed, _from_judge_row(j_rows.get(g.name)),
                                 NO_INTERVAL, NO_INTERVAL) for g in groups]  # fmt: skip

    if n_reviewed < max(min_reviewed, 1):
        notes.append(f"{n_reviewed} reviewed trace(s): at least {max(min_reviewed, 1)} needed")
        return CorrectedEstimate(judge, metric, _from_judge(j_est), NO_INTERVAL, NO_INTERVAL,
                                 n_judged, n_reviewed, None, share, n_unmatched, empty_rows(),
                                 notes)  # fmt: skip

    own = [g for g in groups if g.n_reviewed >= min_reviewed]
    poor = [g for g in groups if g.n_reviewed < min_reviewed]
    own.sort(key=lambda g: (g.n_reviewed, g.name))
    while poor and sum(g.n_reviewed for g in poor) < min_reviewed and own:
        poor.append(own.pop(0))
    final: list[tuple[str, list[_Group]]] = [(g.name, [g]) for g in own]
    if poor:
        final.append((COLLAPSED, poor))
        notes.append(f"{len(poor)} strata with fewer than {min_reviewed} reviewed traces share "
                     f"one correction ({COLLAPSED})")  # fmt: skip
    merged = [_merge(name, gs) for name, gs in final]
    prior = _pooled_prior(merged, binary)
    parts = [_parts(g, prior, k) for g in merged]
    weights = np.array([g.weight for g in merged])
    weights = weights / weights.sum()

    lam = 1.0
    if power_tuning:
        num = float(sum(w * w * p.ayf for w, p in zip(weights, parts, strict=True)))
        den = float(sum(w * w * p.aff for w, p in zip(weights, parts, strict=True)))
        lam = min(max(num / den, 0.0), 1.0) if den > 0 else 1.0

    def combine(lam_: float) -> Interval:
        est = float(sum(w * p.theta(lam_) for w, p in zip(weights, parts, strict=True)))
        var = float(sum(w * w * p.var(lam_) for w, p in zip(weights, parts, strict=True)))
        df_n = n_reviewed - len(parts) + 1
        return _interval(est, var, max(df_n, 2), binary, confidence)

    rows = []
    by_name = {name: p for (name, _), p in zip(final, parts, strict=True)}
    for g in groups:
        p = by_name.get(g.name)
        if p is None:
            ho = co = NO_INTERVAL
            group = COLLAPSED
        else:
            ho = _interval(p.theta(0.0), p.var(0.0), p.n, binary, confidence)
            co = _interval(p.theta(lam), p.var(lam), p.n, binary, confidence)
            group = g.name
        rows.append(CorrectedStratum(g.name, strata[g.name].rule, group,
                                     strata[g.name].population, len(g.pi), g.n_reviewed,
                                     _from_judge_row(j_rows.get(g.name)), ho, co))  # fmt: skip
    return CorrectedEstimate(
        judge, metric, _from_judge(j_est), combine(0.0), combine(lam), n_judged, n_reviewed,
        lam, share, n_unmatched, rows, notes,
    )  # fmt: skip


def _from_judge_row(s: Any) -> Interval:
    if s is None or s.estimate is None:
        return NO_INTERVAL
    return Interval(s.estimate, s.ci_low, s.ci_high, s.variance, s.n_judged)


def _merge(name: str, gs: list[_Group]) -> _Group:
    if len(gs) == 1:
        g = gs[0]
        return _Group(name, g.weight, g.pi, g.f, g.ri, g.y, g.r)
    offsets = np.cumsum([0] + [len(g.pi) for g in gs[:-1]])
    return _Group(
        name, sum(g.weight for g in gs),
        np.concatenate([g.pi for g in gs]), np.concatenate([g.f for g in gs]),
        np.concatenate([g.ri + o for g, o in zip(gs, offsets, strict=True)]),
        np.concatenate([g.y for g in gs]), np.concatenate([g.r for g in gs]),
    )  # fmt: skip
