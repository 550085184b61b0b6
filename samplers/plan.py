"""Per-window plans: forecast populations (EMA), then fix every stratum's rate for the window.

A plan only looks at windows *before* the one it is for, so rates are fixed before any of the
window's outcomes are seen and every replica holding the same counts computes the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .allocation import allocation_shape, bounded_allocation, combined_std
from .counts import Moments, PopulationCounts
from .policy import Policy, Rule
from .strata import OVERFLOW

DEFAULT_EMA_WEIGHT = 0.5
DEFAULT_LOOKBACK = 12
N_RESOURCES = 3  # traces, judge tokens, judge USD
MIN_COVERAGE = 0.1


@dataclass(frozen=True, slots=True)
class StratumHistory:
    """What the planner knows about a stratum: forecast population per window and mean tokens."""

    rule: str
    population: float
    mean_tokens: float = 0.0


@dataclass
class History:
    strata: dict[str, StratumHistory] = field(default_factory=dict)
    moments: dict[tuple[str, str], Moments] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StratumPlan:
    """A stratum's fixed rate for one window and what it is expected to cost."""

    stratum: str
    rule: str
    rate: float
    population: float
    std: float | None
    expected_sample: float
    expected_tokens: float
    expected_usd: float
    basis: str


@dataclass
class Plan:
    """Rates for one window; strata absent from `strata` are new (sampled at new_key_rate)."""

    window_start_ms: int
    strata: dict[str, StratumPlan]
    keys_per_rule: dict[str, int]
    minimums_met: bool = True
    notes: list[str] = field(default_factory=list)

    def rate(self, stratum: str) -> float | None:
        sp = self.strata.get(stratum)
        return None if sp is None else sp.rate

    def expected(self) -> dict[str, float]:
        return {
            "sample": sum(s.expected_sample for s in self.strata.values()),
            "tokens": sum(s.expected_tokens for s in self.strata.values()),
            "usd": sum(s.expected_usd for s in self.strata.values()),
        }


def _rule_params(rule: Rule) -> tuple[float, int]:
    if rule.type == "stratified":
        return rule.ema_weight, rule.lookback_windows
    return DEFAULT_EMA_WEIGHT, DEFAULT_LOOKBACK


def history_from_counts(policy: Policy, counts: PopulationCounts, window_start_ms: int) -> History:
    """EMA forecast of each stratum's per-window population from windows before this one.

    Windows with no data at all (sampler down) are skipped rather than counted as zero, and a
    stratum's EMA starts at its first appearance so new strata are not halved.
    """
    w_ms = policy.budget.window_ms
    rules = {r.name: r for r in policy.rules}
    lookback = max((_rule_params(r)[1] for r in policy.rules), default=DEFAULT_LOOKBACK)
    cells = counts.totals_by_cell(window_start_ms - lookback * w_ms, window_start_ms)
    coverage = {w: counts.coverage(w) for w in {w for w, _ in cells}}
    # a window seen for less than MIN_COVERAGE of its length says too little to forecast from
    windows = sorted(w for w, cov in coverage.items() if cov >= MIN_COVERAGE)
    per: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for (w, stratum), c in cells.items():
        per[stratum][w] = (c[0], c[3])
    hist = History()
    for stratum, by_w in per.items():
        rule = rules.get(counts.rule_of(stratum))
        if rule is None:
            continue  # a stratum of a rule that is no longer in the policy
        alpha, lb = _rule_params(rule)
        avg: float | None = None
        raw_pop = 0.0
        tok_sum = 0.0
        for w in windows:
            if w < window_start_ms - lb * w_ms:
                continue
            pop, tok = by_w.get(w, (0.0, 0.0))
            raw_pop += pop
            tok_sum += tok
            scaled = pop / coverage[w]
            if avg is None:
                if pop:
                    avg = scaled
            else:
                avg = alpha * scaled + (1 - alpha) * avg
        if avg is not None and avg > 0:
            hist.strata[stratum] = StratumHistory(rule.name, avg, tok_sum / max(raw_pop, 1.0))
    hist.moments = counts.outcome_moments(end_ms=window_start_ms)
    return hist


def history_from_populations(
    policy: Policy,
    populations: Mapping[str, tuple[str, float, float]],
    moments: Mapping[tuple[str, str], Moments] | None = None,
) -> History:
    """History from given per-window populations: stratum -> (rule, population, mean tokens)."""
    return History(
        {s: StratumHistory(r, p, t) for s, (r, p, t) in populations.items() if p > 0},
        dict(moments or {}),
    )


class _Costs:
    """Per-unit costs of a rule: a unit is 'the stratum rate applied to one trace'.
    Costs are linear in the trace's tokens: (traces, a + b*tokens, c + d*tokens)."""

    def __init__(self, policy: Policy, rule: Rule) -> None:
        judges = {j.name: j for j in policy.judges}
        js = [judges[n] for n in rule.judges]
        self.fmax = max((j.sample_fraction for j in js), default=1.0)
        self.tok = sum(j.sample_fraction * j.est_tokens for j in js)
        self.tok_per = sum(j.sample_fraction * j.trace_token_factor for j in js)
        self.usd = sum(j.sample_fraction * j.usd_for(0.0) for j in js)
        self.usd_per = sum(
            j.sample_fraction * j.trace_token_factor * j.usd_per_1k_tokens / 1000 for j in js
        )

    def vector(self, mean_tokens: float) -> tuple[float, float, float]:
        return (
            self.fmax,
            self.tok + self.tok_per * mean_tokens,
            self.usd + self.usd_per * mean_tokens,
        )


def budget_limits(policy: Policy, scale: float = 1.0) -> np.ndarray:
    b = policy.budget
    vals = [b.max_traces, b.max_tokens, b.max_usd]
    return np.array([np.inf if v is None else v * scale for v in vals], dtype=float)


def build_plan(policy: Policy, history: History, window_start_ms: int) -> Plan:
    """Fix every known stratum's rate for the window (see docs/policy.md, 'How rates are set')."""
    limits = budget_limits(policy, 1.0 - policy.budget.headroom)
    by_rule: dict[str, list[str]] = defaultdict(list)
    for stratum, h in history.strata.items():
        by_rule[h.rule].append(stratum)
    plan = Plan(window_start_ms, {}, {})
    reserved = np.zeros(N_RESOURCES)
    costs_of = {r.name: _Costs(policy, r) for r in policy.rules}

    def put(stratum: str, rule: Rule, rate: float, std: float | None, basis: str) -> np.ndarray:
        h = history.strata[stratum]
        units = rate * h.population
        c_traces, c_tokens, c_usd = costs_of[rule.name].vector(h.mean_tokens)
        spend = (units * c_traces, units * c_tokens, units * c_usd)
        plan.strata[stratum] = StratumPlan(
            stratum, rule.name, float(rate), h.population, std, *spend, basis
        )
        return np.array(spend)

    adaptive: list[Rule] = []
    for rule in policy.rules:
        names = by_rule.get(rule.name, [])
        if rule.type == "drop":
            for s in names:
                put(s, rule, 0.0, None, "drop")
        elif rule.type == "always":
            for s in names:
                reserved += put(s, rule, 1.0, None, "always")
        elif rule.type == "probabilistic":
            for s in names:
                reserved += put(s, rule, float(rule.rate or 0.0), None, "probabilistic")
        elif rule.allocation == "fixed":
            for s in _admitted(rule, names, history):
                ov = rule.strata.get(_key_of(rule, s))
                rate = ov.rate if ov is not None and ov.rate is not None else rule.rate
                reserved += put(s, rule, float(rate or 0.0), None, "fixed")
        else:
            adaptive.append(rule)

    remaining = np.maximum(limits - reserved, 0.0)
    explicit = sum(r.budget_share or 0.0 for r in adaptive)
    implicit = [r for r in adaptive if r.budget_share is None]
    pops = {
        r.name: sum(history.strata[s].population for s in by_rule.get(r.name, [])) for r in implicit
    }
    total_implicit = sum(pops.values())
    for rule in adaptive:
        if rule.budget_share is not None:
            share = rule.budget_share
        elif total_implicit > 0:
            share = (1.0 - explicit) * pops[rule.name] / total_implicit
        else:
            share = 0.0
        rule_limits = np.array([x if np.isinf(x) else x * share for x in remaining])
        _allocate_rule(policy, rule, history, by_rule.get(rule.name, []), rule_limits, plan, put)
    for rule in policy.rules:
        if rule.type == "stratified":
            plan.keys_per_rule[rule.name] = sum(
                1 for sp in plan.strata.values()
                if sp.rule == rule.name and _key_of(rule, sp.stratum) != OVERFLOW
            )  # fmt: skip
    return plan


def _key_of(rule: Rule, stratum: str) -> str:
    return stratum[len(rule.name) + 1 :]


def _admitted(rule: Rule, names: Iterable[str], history: History) -> list[str]:
    """The rule's known strata, at most max_keys by forecast population (overflow always kept)."""
    names = list(names)
    keyed = sorted(
        (s for s in names if _key_of(rule, s) != OVERFLOW),
        key=lambda s: (-history.strata[s].population, s),
    )
    return keyed[: rule.max_keys] + [s for s in names if _key_of(rule, s) == OVERFLOW]


def _allocate_rule(
    policy: Policy,
    rule: Rule,
    history: History,
    names: list[str],
    limits: np.ndarray,
    plan: Plan,
    put: Callable[[str, Rule, float, float | None, str], np.ndarray],
) -> None:
    """Allocate one adaptive stratified rule's share of the budget over its strata."""
    strata = _admitted(rule, names, history)
    if not strata:
        return
    costs_of = _Costs(policy, rule)
    fixed: list[str] = []
    free: list[str] = []
    for s in strata:
        ov = rule.strata.get(_key_of(rule, s))
        (fixed if ov is not None and ov.rate is not None else free).append(s)
    limits = limits.copy()
    for s in fixed:
        limits -= put(s, rule, float(rule.strata[_key_of(rule, s)].rate), None, "override")
    limits = np.maximum(limits, 0.0)
    if not free:
        return
    pop = np.array([history.strata[s].population for s in free])
    if rule.target_rate is not None:
        limits[0] = min(limits[0], rule.target_rate * float(pop.sum()) * costs_of.fmax)
    costs = np.array([costs_of.vector(history.strata[s].mean_tokens) for s in free], dtype=float)
    pooled = _pooled_moments(rule, history)
    stds = np.array([_std(rule, s, history, pooled) for s in free])
    mins = np.array(
        [
            (ov.min if (ov := rule.strata.get(_key_of(rule, s))) is not None and ov.min is not None
             else rule.min_per_stratum)
            for s in free
        ],
        dtype=float,
    ) / costs_of.fmax  # fmt: skip
    upper = rule.max_rate * pop
    lower = np.minimum(np.maximum(mins, rule.min_rate * pop), upper)
    shape = allocation_shape(rule.allocation, pop, stds, _unit_cost(policy, costs))
    n, ok = bounded_allocation(shape, lower, upper, costs, limits)
    if not ok:
        plan.minimums_met = False
        plan.notes.append(
            f"{rule.name}: per-stratum minimums exceed the budget; scaled down to fit"
        )
    rates = np.clip(n / pop, 0.0, 1.0)
    for s, rate, std in zip(free, rates.tolist(), stds.tolist(), strict=True):
        put(s, rule, rate, std, "allocation")


def _unit_cost(policy: Policy, costs: np.ndarray) -> np.ndarray:
    """c_h for cost-optimal allocation: judge dollars when only a dollar budget is set,
    else judge tokens, else traces."""
    b = policy.budget
    if b.max_usd is not None and b.max_tokens is None and costs[:, 2].any():
        return costs[:, 2]
    if costs[:, 1].any():
        return costs[:, 1]
    return costs[:, 0]


def _pooled_moments(rule: Rule, history: History) -> dict[str, Moments]:
    pooled: dict[str, Moments] = {}
    for (s, j), m in history.moments.items():
        h = history.strata.get(s)
        if h is not None and h.rule == rule.name and j in rule.judges:
            pooled[j] = pooled.get(j, Moments()) + m
    return pooled


def _std(rule: Rule, stratum: str, history: History, pooled: dict[str, Moments]) -> float:
    per_judge = [
        (history.moments.get((stratum, j), Moments()), pooled[j])
        for j in rule.judges
        if j in pooled and pooled[j].n > 0
    ]
    return combined_std(per_judge, rule.prior_strength, rule.min_std, rule.variance_combine)
