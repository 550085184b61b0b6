"""Dry run: what a policy would sample from a list of records (e.g. the last 24 h)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .classify import UNMATCHED, compile_classifier, compile_rules
from .counts import PopulationCounts
from .plan import build_plan, history_from_populations
from .policy import JudgeDecl, Policy
from .record import TraceRecord
from .rules import Rule

COLUMNS = [
    "rule", "stratum", "population", "population_per_window", "rate", "inclusion_probability",
    "expected_sample", "expected_sample_per_window", "expected_judge_tokens",
    "expected_cost_usd", "basis",
]  # fmt: skip


def dry_run(
    policy: Policy,
    records: Iterable[TraceRecord],
    counts: PopulationCounts | None = None,
):  # -> pandas.DataFrame
    """Per stratum: population, steady-state rate, expected sample and judge cost.

    Rates come from the same planner the sampler uses, fed with the records' average
    population per window (and judge-outcome variances from `counts`, if given). Expected
    figures cover the whole period of `records`; `*_per_window` ones one window.
    """
    import pandas as pd

    judges = {j.name: j for j in policy.judges}
    compiled, unmatched = compile_rules(policy)
    classify = compile_classifier(compiled, unmatched)
    pops: dict[tuple[str, Any], list[TraceRecord]] = defaultdict(list)
    t_min = t_max = None
    for rec in records:
        t_min = rec.timestamp_ms if t_min is None else min(t_min, rec.timestamp_ms)
        t_max = rec.timestamp_ms if t_max is None else max(t_max, rec.timestamp_ms)
        cr, key = classify(rec)
        pops[(cr.rule.name, key)].append(rec)
    if t_min is None or t_max is None:
        return pd.DataFrame(columns=COLUMNS)
    w_ms = policy.budget.window_ms
    n_windows = max(1, math.ceil((t_max - t_min + 1) / w_ms))

    by_stratum = group_by_stratum(compiled, pops)

    populations = {
        s: (rule, len(recs) / n_windows, sum(r.total_tokens for r in recs) / len(recs))
        for s, (rule, recs) in by_stratum.items()
        if rule != UNMATCHED
    }
    moments = counts.outcome_moments() if counts is not None else None
    plan = build_plan(policy, history_from_populations(policy, populations, moments), 0)

    rows = []
    rule_by_name = {r.name: r for r in policy.rules}
    for s, (rule_name, recs) in sorted(by_stratum.items()):
        rule = rule_by_name.get(rule_name)
        sp = plan.strata.get(s)
        rate = sp.rate if sp is not None else 0.0
        incl, tokens, usd = stratum_cost(rate, rule, judges, recs)
        rows.append({
            "rule": rule_name, "stratum": s, "population": len(recs),
            "population_per_window": len(recs) / n_windows, "rate": rate,
            "inclusion_probability": incl, "expected_sample": incl * len(recs),
            "expected_sample_per_window": incl * len(recs) / n_windows,
            "expected_judge_tokens": tokens, "expected_cost_usd": usd,
            "basis": sp.basis if sp is not None else "unmatched",
        })  # fmt: skip
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs.update({"windows": n_windows, "window_s": policy.budget.window_s,
                     "notes": list(plan.notes)})  # fmt: skip
    return df


def stratum_cost(rate: float, rule: Rule | None, judges: Mapping[str, JudgeDecl],
                 records: list[TraceRecord]) -> tuple[float, float, float]:
    """(inclusion probability, expected judge tokens, expected dollars) of a stratum's
    ``records`` sampled at ``rate`` by ``rule``: each judge sees its sample fraction of the
    sample, so a trace's inclusion is the rate times the largest fraction. One rule for the
    dry run and the designer's preview, so both show the same numbers."""
    js = [judges[n] for n in rule.judges] if rule is not None else []
    fmax = max((j.sample_fraction for j in js), default=1.0)
    tokens = sum(rate * j.sample_fraction * j.tokens_for(r.total_tokens)
                 for r in records for j in js)
    usd = sum(rate * j.sample_fraction * j.usd_for(r.total_tokens) for r in records for j in js)
    return rate * fmax, tokens, usd


def _by_population(
    render: Callable[[Any], str],
) -> Callable[[tuple[Any, list[TraceRecord]]], tuple[int, str]]:
    """Sort key of (raw key, records): the largest population first, then the key's text."""
    return lambda kr: (-len(kr[1]), render(kr[0]))


def dry_run_totals(df, policy: Policy | None = None) -> dict[str, Any]:
    """Totals of a dry_run frame, per period and per window, against the budget if given."""
    windows = df.attrs.get("windows", 1)
    out: dict[str, Any] = {
        "strata": len(df),
        "windows": windows,
        "population": int(df["population"].sum()) if len(df) else 0,
        "expected_sample": float(df["expected_sample"].sum()) if len(df) else 0.0,
        "expected_judge_tokens": float(df["expected_judge_tokens"].sum()) if len(df) else 0.0,
        "expected_cost_usd": float(df["expected_cost_usd"].sum()) if len(df) else 0.0,
    }
    out["expected_sample_per_window"] = out["expected_sample"] / windows
    out["expected_judge_tokens_per_window"] = out["expected_judge_tokens"] / windows
    out["expected_cost_usd_per_window"] = out["expected_cost_usd"] / windows
    if policy is not None:
        b = policy.budget
        out["budget_per_window"] = {
            "max_traces": b.max_traces, "max_tokens": b.max_tokens, "max_usd": b.max_usd,
        }  # fmt: skip
    return out


def group_by_stratum(compiled: Iterable[Any], pops: dict[tuple[str, Any], list[TraceRecord]]
                     ) -> dict[str, tuple[str, list[TraceRecord]]]:
    """Records grouped by (rule, stratum key) -> stratum name -> (rule, records), with each
    rule's strata named and ranked as the sampler would (overflow past ``max_keys``)."""
    by_stratum: dict[str, tuple[str, list[TraceRecord]]] = {}
    for cr in compiled:
        name = cr.rule.name
        keys = [(k, recs) for (rule, k), recs in pops.items() if rule == name]
        render = cr.render
        if render is not None:
            keys.sort(key=_by_population(render))
        texts = [render(k) if render is not None else None for k, _ in keys]
        for s, (_, recs) in zip(cr.rule.ranked_strata(texts), keys, strict=True):
            by_stratum.setdefault(s, (name, []))[1].extend(recs)
    if (UNMATCHED, None) in pops:
        by_stratum[UNMATCHED] = (UNMATCHED, pops[(UNMATCHED, None)])
    return by_stratum
