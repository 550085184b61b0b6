"""What a policy would do over a design window: per stratum population, rate, expected
sample, judge tokens and dollars per window (the sampler's own planner, as `dry_run`), and
the expected 95% half-width of the overall pass rate next to a uniform sample's."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from samplers import Policy, TraceRecord
from samplers.classify import UNMATCHED, compile_classifier, compile_rules
from samplers.dryrun import group_by_stratum, stratum_cost
from samplers.plan import build_plan, history_from_populations
from samplers.precision import (
    StratumDesign,
    shrunk_rate,
    stratified_half_width,
    uniform_half_width,
)
from samplers.rules import DropRule

from .window import DesignWindow

DEFAULT_PRIOR = 0.9


@dataclass(frozen=True)
class PreviewRow:
    rule: str
    stratum: str
    population: float  # per window
    rate: float
    expected_sample: float  # per window
    judge_tokens: float  # per window
    cost_usd: float  # per window
    pass_rate: float  # assumed, for the half-width
    judged: int  # past verdicts behind pass_rate (0: the prior)
    basis: str  # the planner's


@dataclass
class Preview:
    rows: list[PreviewRow]
    windows: float  # budget windows in the design window
    window_s: float
    judge: str | None
    prior: float
    half_width: float  # expected, over the whole design window
    uniform_half_width: float  # a uniform sample of the same expected size
    expected_sample: float  # per window, all judges' traces
    judge_tokens: float  # per window
    cost_usd: float  # per window
    population: float  # per window
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        return {"strata": len(self.rows), "population_per_window": self.population,
                "expected_sample_per_window": self.expected_sample,
                "judge_tokens_per_window": self.judge_tokens,
                "cost_usd_per_window": self.cost_usd, "windows": self.windows,
                "judge": self.judge, "half_width": self.half_width,
                "uniform_half_width": self.uniform_half_width}


def strata_of(policy: Policy, records: list[TraceRecord]) -> dict[str, tuple[str, list]]:
    """stratum -> (rule name, its records), grouped and ranked exactly as `dry_run` does."""
    compiled, unmatched = compile_rules(policy)
    classify = compile_classifier(compiled, unmatched)
    pops: dict[tuple[str, Any], list[TraceRecord]] = defaultdict(list)
    for rec in records:
        cr, key = classify(rec)
        pops[(cr.rule.name, key)].append(rec)
    return group_by_stratum(compiled, pops)


def _judge_of(policy: Policy, window: DesignWindow, judge: str | None) -> str | None:
    names = [j.name for j in policy.judges]
    if judge in names:
        return judge
    for name in names:  # the first judge with past verdicts, else the first judge
        if name in window.judges_seen:
            return name
    return names[0] if names else None


def preview(policy: Policy, window: DesignWindow, *, judge: str | None = None,
            prior: float = DEFAULT_PRIOR) -> Preview:
    """The policy over `window` (a subsampled window is scaled to the traces it stands for)."""
    scale = window.scale
    w_ms = policy.budget.window_ms
    n_windows = max(1, math.ceil(window.span_ms / w_ms)) if window.records else 1
    by_stratum = strata_of(policy, window.records)
    populations = {
        s: (rule, len(recs) * scale / n_windows,
            sum(r.total_tokens for r in recs) / len(recs))
        for s, (rule, recs) in by_stratum.items() if rule != UNMATCHED
    }
    plan = build_plan(policy, history_from_populations(policy, populations), 0)
    judges = {j.name: j for j in policy.judges}
    rules = {r.name: r for r in policy.rules}
    judge_name = _judge_of(policy, window, judge)

    def verdict(rec: TraceRecord) -> float | None:
        v = window.verdicts.get(rec.trace_id)
        if not v:
            return None
        if judge_name in v:
            return v[judge_name]
        return sum(v.values()) / len(v)

    judged_all = [x for _, recs in by_stratum.values() for r in recs
                  if (x := verdict(r)) is not None]
    pooled = sum(judged_all) / len(judged_all) if judged_all else prior
    rows: list[PreviewRow] = []
    designs: list[StratumDesign] = []
    sample_in_scope = 0.0
    for s, (rule_name, recs) in sorted(by_stratum.items()):
        rule = rules.get(rule_name)
        sp = plan.strata.get(s)
        rate = sp.rate if sp is not None else 0.0
        per_window = scale / n_windows
        incl, tokens, usd = stratum_cost(rate, rule, judges, recs)
        vs = [x for r in recs if (x := verdict(r)) is not None]
        p = shrunk_rate(sum(vs), len(vs), pooled) if vs else pooled
        rows.append(PreviewRow(rule_name, s, len(recs) * per_window, rate,
                               incl * len(recs) * per_window, tokens * per_window,
                               usd * per_window, p, len(vs),
                               sp.basis if sp is not None else "unmatched"))
        if rule is None or isinstance(rule, DropRule):
            continue
        if judge_name is not None and judge_name not in rule.judges:
            continue
        frac = judges[judge_name].sample_fraction if judge_name else 1.0
        pop = len(recs) * scale
        designs.append(StratumDesign(pop, rate * frac * pop, p))
        sample_in_scope += rate * frac * pop
    conf = policy.estimation.confidence
    notes = list(plan.notes)
    if not judged_all:
        notes.append(f"no past verdicts in the window: pass rates assume the prior {prior:.0%}")
    return Preview(
        rows=rows, windows=n_windows, window_s=policy.budget.window_s, judge=judge_name,
        prior=prior, half_width=stratified_half_width(designs, conf),
        uniform_half_width=uniform_half_width(designs, sample_in_scope, conf),
        expected_sample=sum(r.expected_sample for r in rows),
        judge_tokens=sum(r.judge_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        population=sum(r.population for r in rows), notes=notes)
