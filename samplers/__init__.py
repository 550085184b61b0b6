"""Stratified sampling of GenAI traces for LLM judges, with known inclusion probabilities
and post-stratified estimates. Pure library: no textual, mlflow, network or trace_tui.

The public names load lazily (module `__getattr__`), so `import samplers.verdicts` on the
explorer's start path does not pull numpy in through the estimators."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .agreements import Agreement, JudgeAgreement, agreement, review_entries
    from .corrected import (
        CorrectedEstimate,
        CorrectedStratum,
        HumanLabel,
        Interval,
        corrected_estimates,
    )
    from .counts import CellCount, Moments, PopulationCounts
    from .dryrun import dry_run, dry_run_totals
    from .estimators import (
        EstimateReport,
        JudgeEstimate,
        StratumEstimate,
        estimate,
        wilson_interval,
    )
    from .fields import MISSING
    from .outcomes import JudgedOutcome, outcome_value
    from .parsing import PolicyError
    from .plan import Plan, StratumPlan
    from .policy import JudgeDecl, Policy, Source, load_policy, parse_policy
    from .randomness import hashed_randomness, id_randomness, threshold, threshold_probability
    from .record import TraceRecord
    from .review import ReviewDecision, review_decision, review_rate
    from .rules import (
        AlwaysRule,
        DropRule,
        ProbabilisticRule,
        Rule,
        StratifiedRule,
        StratumOverride,
    )
    from .sampler import UNMATCHED, Decision, Sampler
    from .schema import Budget, Estimation, Randomness, Review
    from .strata import OVERFLOW
    from .two_phase import TwoPhasePlan, pilot_plan, second_phase
    from .verdicts import PassRule, verdict

_WHERE: dict[str, str] = {
    "Agreement": "agreements",
    "AlwaysRule": "rules",
    "Budget": "schema",
    "CellCount": "counts",
    "CorrectedEstimate": "corrected",
    "CorrectedStratum": "corrected",
    "Decision": "sampler",
    "DropRule": "rules",
    "EstimateReport": "estimators",
    "Estimation": "schema",
    "HumanLabel": "corrected",
    "Interval": "corrected",
    "JudgeAgreement": "agreements",
    "JudgeDecl": "policy",
    "JudgeEstimate": "estimators",
    "JudgedOutcome": "outcomes",
    "MISSING": "fields",
    "Moments": "counts",
    "OVERFLOW": "strata",
    "PassRule": "verdicts",
    "Plan": "plan",
    "Policy": "policy",
    "PolicyError": "parsing",
    "PopulationCounts": "counts",
    "ProbabilisticRule": "rules",
    "Randomness": "schema",
    "Review": "schema",
    "ReviewDecision": "review",
    "Rule": "rules",
    "Sampler": "sampler",
    "Source": "policy",
    "StratifiedRule": "rules",
    "StratumEstimate": "estimators",
    "StratumOverride": "rules",
    "StratumPlan": "plan",
    "TraceRecord": "record",
    "TwoPhasePlan": "two_phase",
    "UNMATCHED": "sampler",
    "agreement": "agreements",
    "corrected_estimates": "corrected",
    "dry_run": "dryrun",
    "dry_run_totals": "dryrun",
    "estimate": "estimators",
    "hashed_randomness": "randomness",
    "id_randomness": "randomness",
    "load_policy": "policy",
    "outcome_value": "outcomes",
    "parse_policy": "policy",
    "pilot_plan": "two_phase",
    "review_decision": "review",
    "review_entries": "agreements",
    "review_rate": "review",
    "second_phase": "two_phase",
    "threshold": "randomness",
    "threshold_probability": "randomness",
    "verdict": "verdicts",
    "wilson_interval": "estimators",
}

__all__ = [
    "MISSING",
    "OVERFLOW",
    "UNMATCHED",
    "Agreement",
    "AlwaysRule",
    "Budget",
    "CellCount",
    "CorrectedEstimate",
    "CorrectedStratum",
    "Decision",
    "DropRule",
    "EstimateReport",
    "Estimation",
    "HumanLabel",
    "Interval",
    "JudgeAgreement",
    "JudgeDecl",
    "JudgeEstimate",
    "JudgedOutcome",
    "Moments",
    "PassRule",
    "Plan",
    "Policy",
    "PolicyError",
    "PopulationCounts",
    "ProbabilisticRule",
    "Randomness",
    "Review",
    "ReviewDecision",
    "Rule",
    "Sampler",
    "Source",
    "StratifiedRule",
    "StratumEstimate",
    "StratumOverride",
    "StratumPlan",
    "TraceRecord",
    "TwoPhasePlan",
    "agreement",
    "corrected_estimates",
    "dry_run",
    "dry_run_totals",
    "estimate",
    "hashed_randomness",
    "id_randomness",
    "load_policy",
    "outcome_value",
    "parse_policy",
    "pilot_plan",
    "review_decision",
    "review_entries",
    "review_rate",
    "second_phase",
    "threshold",
    "threshold_probability",
    "verdict",
    "wilson_interval",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'samplers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
