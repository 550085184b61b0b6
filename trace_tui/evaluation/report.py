"""`trace-tui report`: verdicts + population counts -> post-stratified estimates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from samplers import EstimateReport, JudgedOutcome, Policy, estimate
from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import ConfigError
from trace_tui.core.model import TraceInfo
from trace_tui.evaluation import queue, sampling


@dataclass
class PolicyReport:
    policy: str
    estimates: EstimateReport
    outcomes: int

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "verdicts": self.outcomes, **self.estimates.to_dict()}

    def to_frame(self) -> Any:
        return self.estimates.to_frame()

    def to_text(self) -> str:
        lines = []
        for judge in self.estimates.to_dict()["judges"]:
            lines.append(f"{judge['judge']}: {_pct(judge['estimate'])}  "
                         f"[{_pct(judge['ci_low'])}, {_pct(judge['ci_high'])}]  "
                         f"judged {judge['n_judged']} of {judge['population']:g}")
            for s in judge.get("strata", []):
                est = (f"{_pct(s['estimate'])}  [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}]"
                       if s.get("estimate") is not None else "not judged yet")
                lines.append(f"    {s['stratum'][:60]:<60} {est:<28} "
                             f"{s['n_judged']:>4}/{s['population']:<6g}")
        return "\n".join(lines) if lines else "no judge verdicts yet"


def outcomes_from(infos: Sequence[TraceInfo], policy: str,
                  judges: Sequence[str]) -> list[JudgedOutcome]:
    """One JudgedOutcome per (trace of this policy's sample, judge of the policy) with a
    verdict, whichever policy wrote it, weighted by this policy's own inclusion probability."""
    out = []
    for info in infos:
        facts = queue.SampleFacts.from_tags(info.tags, policy)
        if facts is None:
            continue
        for judge in (facts.judges or judges):  # the judges the rule chose, else all
            verdict = queue.verdict_of(info, judge)
            if verdict is None:
                continue
            p = facts.judges.get(judge, facts.probability)
            out.append(JudgedOutcome(info.trace_id, judge, facts.stratum, verdict.value, p,
                                     facts.window_start_ms))
    return out


async def build_report(client: MlflowClient, policy: Policy,
                       experiment_ids: Sequence[str]) -> PolicyReport:
    runs = await client.search_runs(
        experiment_ids, filter_string=f"tags.`{sampling.RUN_TAG}` = '{policy.name}'")
    counts = None
    for run in sorted(runs, key=lambda r: int(r["info"].get("start_time") or 0)):
        counts = await sampling.load_all_counts(client, run["info"]["run_id"])
        if counts is not None:
            break
    if counts is None:
        raise ConfigError(f"no population counts for policy {policy.name!r} yet: run "
                          f"`trace-tui sample --policy <file>` first")
    infos = await queue.search_policy_traces(client, experiment_ids, policy.name)
    outcomes = outcomes_from(infos, policy.name, [j.name for j in policy.judges])
    est = estimate(outcomes, counts, confidence=policy.estimation.confidence,
                   method=policy.estimation.interval, small_n=policy.estimation.small_n,
                   mc_draws=policy.estimation.mc_draws, seed=policy.estimation.seed)
    return PolicyReport(policy.name, est, len(outcomes))


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):5.1f}%"
