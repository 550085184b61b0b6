"""Post-stratified (Hajek) estimates of judge pass rates / mean scores with intervals.

Per stratum h, with pi_i the trace's inclusion probability (times the share of its window
cell's rate-selected traces the budget guard did not defer, when the outcome carries its
window):
  y_h = sum(y_i/pi_i) / sum(1/pi_i)                                     (Hajek)
  V_h = n/(n-1) * sum((1-pi_i)/pi_i^2 * (y_i - y_h)^2) / (sum 1/pi_i)^2
  V_h <- (n V_h + k V0_h) / (n + k),  V0_h = (1 - n/sum(1/pi_i)) s0^2 / n      (smoothing k)
  s0^2 = p~(1-p~), p~ = (n y_h + k p_pooled) / (n + k) for pass rates; the pooled variance
  for scores. A stratum with one judged trace or all-equal verdicts keeps a positive variance.
Overall: y = sum(W_h y_h), V = sum(W_h^2 V_h) over judged strata, W_h = N_h / N_judged with
N_h from the sampler's counts. Intervals: Wilson with the Kish effective sample size
n_eff = y(1-y)/V; per stratum Jeffreys Beta posteriors from exact quantiles (overall
Jeffreys: Monte Carlo over the sum). Judge-error-corrected estimates: samplers/corrected.py;
formulas and their derivations: docs/statistics.md.

Over 500 lines on purpose: the estimator, its variance, smoothing and interval choices are one
derivation (docs/statistics.md section 1); split, the formulas would be read apart.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from .counts import CellCount, PopulationCounts
from .outcomes import JudgedOutcome, outcome_value
from .verdicts import PassRule

METHODS = ("wilson_kish", "jeffreys", "auto")
OVERALL = "__overall__"


@dataclass(frozen=True)
class StratumEstimate:
    """One stratum of one judge; estimate is None when no trace of it was judged."""

    stratum: str
    rule: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    variance: float | None
    n_judged: int
    n_eff: float | None
    population: float
    population_share: float
    method: str | None
    population_source: str = "counts"


@dataclass(frozen=True)
class JudgeEstimate:
    """Overall estimate of one judge. `judged_share` is the population share of judged strata;
    `bound_low/high` widen the interval to any value of the unjudged strata (pass rates)."""

    judge: str
    metric: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    variance: float | None
    n_judged: int
    n_eff: float | None
    population: float
    judged_share: float
    bound_low: float | None
    bound_high: float | None
    method: str | None
    n_invalid: int = 0
    strata: list[StratumEstimate] = field(default_factory=list)
    n_excluded: int = 0  # verdicts on strata outside this judge's population (drop rules...)


@dataclass(frozen=True)
class EstimateReport:
    judges: list[JudgeEstimate]
    confidence: float

    def judge(self, name: str) -> JudgeEstimate:
        for j in self.judges:
            if j.judge == name:
                return j
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """{'confidence', 'judges': [{judge, estimate, ci_low, ..., 'strata': [...]}]}"""
        return {"confidence": self.confidence, "judges": [asdict(j) for j in self.judges]}

    def to_frame(self):  # -> pandas.DataFrame; pandas is imported lazily (slow import)
        """One row per judge overall (stratum '__overall__') and per judge x stratum."""
        import pandas as pd

        rows = []
        for j in self.judges:
            rows.append({
                "judge": j.judge, "level": "overall", "stratum": OVERALL, "rule": None,
                "metric": j.metric, "estimate": j.estimate, "ci_low": j.ci_low,
                "ci_high": j.ci_high, "variance": j.variance, "n_judged": j.n_judged,
                "n_eff": j.n_eff, "population": j.population, "population_share": 1.0,
                "judged_share": j.judged_share, "method": j.method,
            })  # fmt: skip
            for s in j.strata:
                rows.append({
                    "judge": j.judge, "level": "stratum", "stratum": s.stratum, "rule": s.rule,
                    "metric": j.metric, "estimate": s.estimate, "ci_low": s.ci_low,
                    "ci_high": s.ci_high, "variance": s.variance, "n_judged": s.n_judged,
                    "n_eff": s.n_eff, "population": s.population,
                    "population_share": s.population_share,
                    "judged_share": 1.0 if s.n_judged else 0.0, "method": s.method,
                })  # fmt: skip
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- intervals


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@lru_cache(maxsize=4096)
def t_value(confidence: float, df: float) -> float:
    """Student t quantile with `df` degrees of freedom (exact, scipy; df below 1 is read as
    1, infinite df gives the normal quantile)."""
    if math.isinf(df):
        return z_value(confidence)
    # lazily, and scipy.special rather than scipy.stats (seconds to import): `import samplers`
    # must not load scipy
    from scipy.special import stdtrit

    return float(stdtrit(max(df, 1.0), 0.5 + confidence / 2))


def beta_interval(a: float, b: float, confidence: float) -> tuple[float, float]:
    """Equal-tailed interval of Beta(a, b) from its exact quantiles (scipy, lazily)."""
    from scipy.special import betaincinv

    alpha = 1 - confidence
    return float(betaincinv(a, b, alpha / 2)), float(betaincinv(a, b, 1 - alpha / 2))


def satterthwaite_df(parts: list[tuple[float, int]]) -> float:
    """Degrees of freedom of a sum of variance components (component, judged traces)."""
    total = sum(v for v, _ in parts)
    denom = sum(v * v / max(n - 1, 1) for v, n in parts if v > 0)
    return total * total / denom if denom > 0 else math.inf


def df_adjusted(n_eff: float, df: float, confidence: float) -> float:
    """Korn-Graubard: shrink the effective sample size so that a z-based interval gets the
    width a t interval with `df` degrees of freedom would have."""
    if math.isinf(df) or math.isinf(n_eff):
        return n_eff
    return n_eff * (z_value(confidence) / t_value(confidence, df)) ** 2


def wilson_interval(p: float, n_eff: float, z: float) -> tuple[float, float]:
    """Wilson score interval for proportion p with (effective) sample size n_eff."""
    if n_eff <= 0 or math.isinf(n_eff):
        return p, p
    z2 = z * z
    denom = 1 + z2 / n_eff
    centre = (p + z2 / (2 * n_eff)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


# --------------------------------------------------------------------------- strata


@dataclass
class _Stratum:
    name: str
    rule: str
    population: float
    y: list[float] = field(default_factory=list)
    pi: list[float] = field(default_factory=list)
    estimated_population: bool = False
    ids: list[str] = field(default_factory=list)
    selected: int = 0  # traces of the stratum selected for judging (from the counts)

    def hajek(
        self, pooled_mean: float, pooled_var: float, binary: bool, smoothing: float
    ) -> tuple[float, float, float, bool]:
        """(estimate, variance, Kish n_eff, census). The variance is smoothed with `smoothing`
        pseudo-observations (see the module docstring)."""
        y = np.asarray(self.y)
        pi = np.minimum(np.asarray(self.pi), 1.0)
        n = len(y)
        if np.all(pi >= 1.0) and n < self.population - 1e-9:
            # every judged trace had pi = 1 yet the stratum holds more traces (selected but not
            # judged yet, judge errors): not a census. The judged ones stand for the stratum at
            # the response rate n / N_h (nonresponse adjustment), so the interval keeps a width.
            pi = np.full(n, n / self.population)
        w = 1.0 / pi
        nhat = w.sum()
        est = float((w * y).sum() / nhat)
        census = bool(np.all(pi >= 1.0))
        kish = float(nhat * nhat / (w * w).sum())
        if census:
            return est, 0.0, kish, census
        var = 0.0
        if n >= 2:
            var = float(((1 - pi) * w * w * (y - est) ** 2).sum() / nhat**2 * n / (n - 1))
        if binary:  # the stratum's own rate, shrunk toward the pooled one: p(1-p) > 0
            p = (est * n + smoothing * pooled_mean) / (n + smoothing)
            s2 = p * (1 - p)
        else:
            s2 = pooled_var
        prior = max(0.0, 1.0 - n / nhat) * s2 / n
        var = (n * var + smoothing * prior) / (n + smoothing)
        return est, var, kish, census


_Judged = tuple[_Stratum, float, float, float, int, bool]  # stratum, est, var, kish, n, census


def estimate(
    judged: Iterable[JudgedOutcome],
    counts: PopulationCounts,
    confidence: float = 0.95,
    method: str = "auto",
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    include_dropped: bool = False,
    small_n: int = 20,
    mc_draws: int = 4000,
    seed: int = 0,
    smoothing: float = 2.0,
    rules: Mapping[str, PassRule] | None = None,
) -> EstimateReport:
    """Post-stratified estimates per judge, overall and per stratum.

    `counts` provides each stratum's population N_h (windows in [start_ms, end_ms)). Strata
    of drop rules are out of scope unless `include_dropped`; strata of rules that do not run a
    judge are not part of that judge's population. `method`: 'wilson_kish', 'jeffreys'
    (Monte Carlo) or 'auto' (per stratum: Jeffreys where it has fewer than `small_n` judged
    traces or sits at 0%/100%, else Wilson-Kish; overall: Wilson-Kish). Mean scores always use
    a normal interval. Stratum variances are smoothed toward the judge's pooled variance with
    `smoothing` pseudo-observations (0 gives the textbook formula), so a stratum with one
    judged trace or all-equal verdicts does not claim zero variance. A trace judged twice by
    the same judge counts once (the last outcome). `rules`: judge -> its PassRule (how its
    values read, samplers/verdicts.py); a judge without one reads values undeclared.
    """
    if method not in METHODS:
        raise ValueError(f"expected method in {', '.join(METHODS)}, got {method!r}")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"expected 0.5 <= confidence < 1, got {confidence!r}")
    z = z_value(confidence)
    by_judge = latest_by_judge(judged, start_ms, end_ms)
    cells = counts.cells(start_ms, end_ms)
    rng = np.random.default_rng(seed)
    ctx = _Ctx(z, confidence, method, small_n, mc_draws, rng, smoothing, rules)
    out = [
        _estimate_judge(judge, list(by_judge[judge].values()), counts, cells, include_dropped, ctx)
        for judge in sorted(by_judge)
    ]
    return EstimateReport(out, confidence)


@dataclass
class _Ctx:
    z: float
    confidence: float
    method: str
    small_n: int
    draws: int
    rng: np.random.Generator
    smoothing: float
    rules: Mapping[str, PassRule] | None = None


def _in_scope(counts: PopulationCounts, rule: str, judge: str, include_dropped: bool) -> bool:
    info = counts.rules.get(rule)
    if info is None:
        return True
    if info.get("type") == "drop":
        return include_dropped
    if info.get("type") == "unmatched":
        return True  # traffic no rule covered: reported as unjudged, it is part of the population
    return judge in info.get("judges", [judge])


@dataclass
class Collected:
    """One judge's verdicts grouped by stratum, with design probabilities (see `collect`)."""

    strata: dict[str, _Stratum]
    binary: bool
    n_invalid: int
    n_excluded: int


def collect(
    judge: str,
    outcomes: Iterable[JudgedOutcome],
    counts: PopulationCounts,
    cells: list[CellCount],
    include_dropped: bool = False,
    rules: Mapping[str, PassRule] | None = None,
) -> Collected:
    """Group one judge's outcomes by stratum: values, inclusion probabilities (scaled by the
    share of the window cell the budget guard did not defer) and population N_h from `cells`
    (Horvitz-Thompson sum(1/pi) for a stratum missing from the counts)."""
    rule = (rules or {}).get(judge)
    parsed = []
    n_invalid = 0
    binary = True
    memo: dict[tuple[type, object], tuple[float, bool] | None] = {}
    for o in outcomes:
        key = (type(o.value), o.value)
        try:
            v = memo[key]
        except KeyError:
            v = memo[key] = outcome_value(o.value, rule)
        except TypeError:  # unhashable value
            v = outcome_value(o.value, rule)
        if v is None or not (o.probability and 0 < o.probability <= 1):
            n_invalid += 1
            continue
        parsed.append((o, v[0]))
        binary = binary and v[1]

    strata: dict[str, _Stratum] = {}
    kept: dict[tuple[int, str], float] = {}  # cell -> share of rate-selected traces not deferred
    excluded: set[str] = set()
    for c in cells:
        if not _in_scope(counts, c.rule, judge, include_dropped):
            excluded.add(c.stratum)
            continue
        st = strata.get(c.stratum)
        if st is None:
            st = strata[c.stratum] = _Stratum(c.stratum, c.rule, 0.0)
        st.population += c.population
        st.selected += c.selected
        if c.deferred:
            kept[(c.window_start_ms, c.stratum)] = c.selected / (c.selected + c.deferred)
    n_excluded = sum(1 for o, _ in parsed if o.stratum in excluded)
    parsed = [(o, y) for o, y in parsed if o.stratum not in excluded]
    for o, y in parsed:
        st = strata.get(o.stratum)
        if st is None:  # judged but not in counts (counts lost or pruned): estimate N by HT
            st = strata[o.stratum] = _Stratum(
                o.stratum, counts.rule_of(o.stratum), 0.0, estimated_population=True
            )
        # the budget guard thinned this cell's sample: the kept share scales its probability
        pi = o.probability * kept.get((o.window_start_ms, o.stratum), 1.0)  # type: ignore[arg-type]
        st.y.append(y)
        st.pi.append(pi)
        st.ids.append(o.trace_id)
    for st in strata.values():
        if st.estimated_population:
            st.population = float(sum(1.0 / p for p in st.pi))
    return Collected(strata, binary, n_invalid, n_excluded)


def latest_by_judge(
    judged: Iterable[JudgedOutcome], start_ms: int | None = None, end_ms: int | None = None
) -> dict[str, dict[str, JudgedOutcome]]:
    """judge -> trace id -> its last outcome, for windows in [start_ms, end_ms)."""
    by_judge: dict[str, dict[str, JudgedOutcome]] = defaultdict(dict)
    for o in judged:
        if start_ms is not None and o.window_start_ms is not None and o.window_start_ms < start_ms:
            continue
        if end_ms is not None and o.window_start_ms is not None and o.window_start_ms >= end_ms:
            continue
        by_judge[o.judge][o.trace_id] = o
    return by_judge


def _estimate_judge(
    judge: str,
    outcomes: list[JudgedOutcome],
    counts: PopulationCounts,
    cells: list[CellCount],
    include_dropped: bool,
    ctx: _Ctx,
) -> JudgeEstimate:
    col = collect(judge, outcomes, counts, cells, include_dropped, ctx.rules)
    strata, binary, n_invalid, n_excluded = col.strata, col.binary, col.n_invalid, col.n_excluded
    metric = "pass_rate" if binary else "mean"
    parsed = [y for st in strata.values() for y in st.y]

    all_y = np.array(parsed)
    pooled_mean = float(all_y.mean()) if len(all_y) else 0.5
    pooled_var = float(all_y.var(ddof=1)) if len(all_y) > 1 else 0.25 if binary else 0.0
    total_pop = sum(st.population for st in strata.values())
    rows: list[StratumEstimate] = []
    judged: list[_Judged] = []
    for st in sorted(strata.values(), key=lambda s: s.name):
        share = st.population / total_pop if total_pop else 0.0
        if not st.y:
            rows.append(StratumEstimate(st.name, st.rule, None, None, None, None, 0, None,
                                        st.population, share, None))  # fmt: skip
            continue
        est, var, kish, census = st.hajek(pooled_mean, pooled_var, binary, ctx.smoothing)
        n = len(st.y)
        judged.append((st, est, var, kish, n, census))
        lo, hi, n_eff, used = _interval(est, var, kish, n, census, binary, ctx)
        rows.append(StratumEstimate(
            st.name, st.rule, est, lo, hi, var, n, n_eff, st.population, share, used,
            "estimated" if st.estimated_population else "counts",
        ))  # fmt: skip

    if not judged:
        return JudgeEstimate(judge, metric, None, None, None, None, 0, None, total_pop, 0.0,
                             0.0 if binary else None, 1.0 if binary else None, None, n_invalid,
                             rows, n_excluded)  # fmt: skip
    pop_j = sum(st.population for st, *_ in judged)
    weights = np.array([st.population / pop_j for st, *_ in judged])
    ests = np.array([e for _, e, *_ in judged])
    vars_ = np.array([v for _, _, v, *_ in judged])
    overall = float((weights * ests).sum())
    variance = float((weights**2 * vars_).sum())
    n_total = sum(n for *_, n, _ in judged)
    all_census = all(c for *_, c in judged)
    if binary:
        pop_var = overall * (1 - overall)
    else:
        within = sum(w * _within_var(st) for w, (st, *_) in zip(weights, judged, strict=True))
        pop_var = float(within + (weights * (ests - overall) ** 2).sum())
    if variance > 0 and pop_var > 0:
        n_eff = pop_var / variance
    else:
        n_eff = math.inf if all_census else _kish_overall(judged, weights)
    # auto: Wilson-Kish overall; with many small strata, aggregating Jeffreys posteriors would
    # pull the interval toward 1/2 (each Beta(x+1/2, n-x+1/2) does), smoothing handles n_h = 0/1
    use = "wilson_kish" if ctx.method == "auto" else ctx.method
    if not binary:
        parts = [(w * w * v, n) for w, (_, _, v, _, n, _) in zip(weights, judged, strict=True)]
        half = t_value(ctx.confidence, satterthwaite_df(parts)) * math.sqrt(variance)
        lo, hi, used = overall - half, overall + half, "t"
    elif all_census:
        lo, hi, used = overall, overall, "census"
    elif use == "jeffreys":
        lo, hi = _jeffreys_overall(judged, weights, ctx)
        used = "jeffreys"
    else:
        parts = [(w * w * v, n) for w, (_, _, v, _, n, _) in zip(weights, judged, strict=True)]
        df = satterthwaite_df(parts)
        lo, hi = wilson_interval(overall, df_adjusted(n_eff, df, ctx.confidence), ctx.z)
        used = "wilson_kish"
    share = pop_j / total_pop if total_pop else 0.0
    b_lo = lo * share if binary else None
    b_hi = hi * share + (1 - share) if binary else None
    return JudgeEstimate(judge, metric, overall, lo, hi, variance, n_total,
                         None if math.isinf(n_eff) else n_eff, total_pop, share, b_lo, b_hi,
                         used, n_invalid, rows, n_excluded)  # fmt: skip


def _within_var(st: _Stratum) -> float:
    ys = np.asarray(st.y)
    return float(ys.var(ddof=1)) if len(ys) > 1 else 0.0


def _kish_overall(judged: list[_Judged], weights: np.ndarray) -> float:
    inv = sum(w * w / k for w, (_, _, _, k, _, c) in zip(weights, judged, strict=True)
              if k > 0 and not c)  # fmt: skip
    return 1.0 / inv if inv > 0 else math.inf


def _beta_params(est: float, var: float, kish: float) -> tuple[float, float]:
    """Jeffreys posterior Beta(x + 1/2, n_eff - x + 1/2) of one stratum, x = est * n_eff."""
    n_eff = est * (1 - est) / var if var > 0 and 0 < est < 1 else max(kish, 1.0)
    x = est * n_eff
    return x + 0.5, n_eff - x + 0.5


def _interval(
    est: float, var: float, kish: float, n: int, census: bool, binary: bool, ctx: _Ctx
) -> tuple[float, float, float | None, str]:
    if census:
        return est, est, None, "census"
    if not binary:
        half = t_value(ctx.confidence, n - 1 if n > 1 else math.inf) * math.sqrt(var)
        return est - half, est + half, None, "t"
    n_eff = est * (1 - est) / var if var > 0 and 0 < est < 1 else kish
    use = ctx.method
    if use == "auto":
        use = "jeffreys" if n < ctx.small_n or est <= 0 or est >= 1 else "wilson_kish"
    if use == "jeffreys":
        lo, hi = beta_interval(*_beta_params(est, var, kish), ctx.confidence)
        # Jeffreys convention: the bound at an observed 0% / 100% is the boundary itself
        return (0.0 if est <= 0 else lo), (1.0 if est >= 1 else hi), n_eff, use
    lo, hi = wilson_interval(est, df_adjusted(n_eff, n - 1, ctx.confidence), ctx.z)
    return lo, hi, n_eff, use


def _jeffreys_overall(judged: list[_Judged], weights: np.ndarray, ctx: _Ctx) -> tuple[float, float]:
    total = np.zeros(ctx.draws)
    for w, (_, est, var, kish, _, census) in zip(weights, judged, strict=True):
        if census:
            total += w * est
            continue
        a, b = _beta_params(est, var, kish)
        total += w * ctx.rng.beta(a, b, size=ctx.draws)
    alpha = 1 - ctx.confidence
    lo, hi = np.quantile(total, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
