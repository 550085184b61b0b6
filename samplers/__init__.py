"""Stratified sampling of GenAI traces for LLM judges, with known inclusion probabilities
and post-stratified estimates. Pure library: no textual, mlflow, network or trace_tui."""

from .agreement import Agreement, JudgeAgreement, agreement, review_entries
from .corrected import (
    CorrectedEstimate,
    CorrectedStratum,
    HumanLabel,
    Interval,
    corrected_estimates,
)
from .counts import CellCount, Moments, PopulationCounts
from .dry_run import dry_run, dry_run_totals
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
