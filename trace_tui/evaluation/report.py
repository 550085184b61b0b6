"""`trace-tui report`: verdicts + population counts -> post-stratified estimates, and with human
labels (HUMAN assessments named like the judge) agreement and judge-error-corrected estimates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from samplers import (
    EstimateReport,
    HumanLabel,
    JudgedOutcome,
    PassRule,
    Policy,
    PopulationCounts,
    agreement,
    corrected_estimates,
    estimate,
)
from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import ConfigError
from trace_tui.core.model import TraceInfo
from trace_tui.evaluation import queue, report_format, sampling

HUMAN = "HUMAN"
# Label metadata written by the review side (trace_tui/evaluation/labels.py): the policy whose
# review sample drew the trace and r, its conditional probability of review given judged.
LABEL_POLICY = "trace_tui.policy"
LABEL_REVIEW_PROBABILITY = "trace_tui.review_probability"


@dataclass
class PolicyReport:
    policy: str
    estimates: EstimateReport
    outcomes: int
    review: dict[str, dict[str, Any]] = field(default_factory=dict)  # judge -> review keys
    policy_versions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        doc = {"policy": self.policy, "verdicts": self.outcomes, **self.estimates.to_dict()}
        for judge in doc["judges"]:
            judge.update(self.review.get(judge["judge"], _no_review()))
        doc["policy_versions"] = self.policy_versions
        return doc

    def to_frame(self) -> Any:
        return report_format.frame(self)

    def to_text(self) -> str:
        return report_format.text(self)


def _no_review() -> dict[str, Any]:
    empty = {"estimate": None, "ci_low": None, "ci_high": None, "n_reviewed": 0}
    return {"corrected": dict(empty), "human_only": dict(empty), "power": None,
            "agreement": None}  # fmt: skip


def pass_rules(policy: Policy) -> dict[str, PassRule]:
    """judge -> its declaration (`feedback_value_type`, `pass_threshold` in its options)."""
    rules = {}
    for j in policy.judges:
        vt, th = j.options.get("feedback_value_type"), j.options.get("pass_threshold")
        if j.scorer == "make_judge" and vt is None:
            vt = "yes_no"  # make_judge's default (judging/spec.py)
        rules[j.name] = PassRule(str(vt) if vt is not None else None,
                                 float(th) if th is not None else None)  # fmt: skip
    return rules


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


def labels_from(infos: Sequence[TraceInfo], policy: str,
                judges: Sequence[str]) -> tuple[list[HumanLabel], list[HumanLabel]]:
    """(every label, the labels of this policy's review sample): the newest HUMAN assessment
    named like each judge per trace. A label without this policy's review probability (not
    from its review sample) counts in agreement (weight 1/pi) but not in the correction."""
    everyone, sampled = [], []
    for info in infos:
        for judge in judges:
            found = [a for a in info.assessments if a.name == judge
                     and a.source_type == HUMAN and a.valid and a.error is None]
            if not found:
                continue
            label = max(found, key=lambda a: a.create_time)
            r = _review_probability(label.metadata, policy)
            everyone.append(HumanLabel(info.trace_id, judge, label.value, r or 1.0))
            if r is not None:
                sampled.append(HumanLabel(info.trace_id, judge, label.value, r))
    return everyone, sampled


def _review_probability(meta: Mapping[str, str], policy: str) -> float | None:
    if meta.get(LABEL_POLICY) not in (None, policy):
        return None
    try:
        r = float(meta[LABEL_REVIEW_PROBABILITY])
    except (KeyError, TypeError, ValueError):
        return None
    return r if 0 < r <= 1 else None


def review_keys(judged: list[JudgedOutcome], everyone: list[HumanLabel],
                sampled: list[HumanLabel], counts: PopulationCounts, conf: float,
                est: EstimateReport, rules: Mapping[str, PassRule]) -> dict[str, dict[str, Any]]:
    """judge -> `corrected`, `human_only` {estimate, ci_low, ci_high, n_reviewed}, `power`
    and `agreement` (overall and per stratum; None without reviewed pass/fail pairs)."""
    agree = {a.judge: a.to_dict()
             for a in agreement(judged, everyone, counts, conf, rules=rules)}  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for c in corrected_estimates(judged, sampled, counts, conf, rules=rules, judge_only=est):
        entry = c.report_entry()
        entry.pop("judge_only", None)  # the judge's own keys already are the judge-only row
        out[c.judge] = {**entry, "agreement": agree.get(c.judge)}
    for judge, a in agree.items():
        out.setdefault(judge, {**_no_review(), "agreement": a})
    return out


async def build_report(client: MlflowClient, policy: Policy,
                       experiment_ids: Sequence[str]) -> PolicyReport:
    runs = await client.search_runs(
        experiment_ids, filter_string=f"tags.`{sampling.RUN_TAG}` = '{policy.name}'")
    counts = None
    versions: dict[int, tuple[str, str]] = {}
    for run in sorted(runs, key=lambda r: int(r["info"].get("start_time") or 0)):
        versions.update(sampling.window_versions(sampling.run_tags(run)))
        if counts is None:
            counts = await sampling.load_all_counts(client, run["info"]["run_id"])
    if counts is None:
        raise ConfigError(f"no population counts for policy {policy.name!r} yet: run "
                          f"`trace-tui sample --policy <file>` first")
    infos = await queue.search_policy_traces(client, experiment_ids, policy.name)
    judges = [j.name for j in policy.judges]
    rules = pass_rules(policy)
    outcomes = outcomes_from(infos, policy.name, judges)
    est = estimate(outcomes, counts, confidence=policy.estimation.confidence,
                   method=policy.estimation.interval, small_n=policy.estimation.small_n,
                   mc_draws=policy.estimation.mc_draws, seed=policy.estimation.seed,
                   rules=rules)  # fmt: skip
    everyone, sampled = labels_from(infos, policy.name, judges)
    review = review_keys(outcomes, everyone, sampled, counts,
                         policy.estimation.confidence, est, rules)
    return PolicyReport(policy.name, est, len(outcomes), review, group_versions(versions))


def group_versions(versions: Mapping[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """[{version, sha256, windows, first_window_ms, last_window_ms}], oldest first."""
    groups: dict[tuple[str, str], list[int]] = {}
    for w, key in versions.items():
        groups.setdefault(key, []).append(w)
    rows = [{"version": v, "sha256": sha, "windows": len(ws), "first_window_ms": min(ws),
             "last_window_ms": max(ws)} for (v, sha), ws in groups.items()]  # fmt: skip
    return sorted(rows, key=lambda r: r["first_window_ms"])
