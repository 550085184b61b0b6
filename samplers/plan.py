"""Per-window plans: forecast populations (EMA), then fix every stratum's rate for the window.

A plan only looks at windows *before* the one it is for, so rates are fixed before any of the
window's outcomes are seen and every replica holding the same counts computes the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .counts import Moments, PopulationCounts
from .policy import Policy
from .rules import Rule, StratifiedRule
from .rules.base import DEFAULT_LOOKBACK

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


def history_from_counts(policy: Policy, counts: PopulationCounts, window_start_ms: int) -> History:
    """EMA forecast of each stratum's per-window population from windows before this one.

    Windows with no data at all (sampler down) are skipped rather than counted as zero, and a
    stratum's EMA starts at its first appearance so new strata are not halved.
    """
    w_ms = policy.budget.window_ms
    rules = {r.name: r for r in policy.rules}
    lookback = max((r.forecast_params()[1] for r in policy.rules), default=DEFAULT_LOOKBACK)
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
        alpha, lb = rule.forecast_params()
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

    adaptive: list[StratifiedRule] = []
    for rule in policy.rules:
        names = by_rule.get(rule.name, [])
        fixed = rule.fixed_rates(names, history)
        if fixed is not None:
            for s, rate, basis in fixed:
                reserved += put(s, rule, rate, None, basis)
        else:
            assert isinstance(rule, StratifiedRule)  # only stratified rules allocate
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
        rule.allocate(
            policy.budget, costs_of[rule.name], history, by_rule.get(rule.name, []),
            rule_limits, plan, put,
        )  # fmt: skip
    for rule in policy.rules:
        keys = rule.count_keys(plan)
        if keys is not None:
            plan.keys_per_rule[rule.name] = keys
    return plan
