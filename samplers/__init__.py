"""Stratified sampling of GenAI traces for LLM judges, with known inclusion probabilities
and post-stratified estimates. Pure library: no textual, mlflow, network or trace_tui."""

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
from .rules import (
    AlwaysRule,
    DropRule,
    ProbabilisticRule,
    Rule,
    StratifiedRule,
    StratumOverride,
)
from .sampler import UNMATCHED, Decision, Sampler
from .schema import Budget, Estimation, Randomness
from .strata import OVERFLOW

__all__ = [
    "MISSING",
    "OVERFLOW",
    "UNMATCHED",
    "AlwaysRule",
    "Budget",
    "CellCount",
    "Decision",
    "DropRule",
    "EstimateReport",
    "Estimation",
    "JudgeDecl",
    "JudgeEstimate",
    "JudgedOutcome",
    "Moments",
    "Plan",
    "Policy",
    "PolicyError",
    "PopulationCounts",
    "ProbabilisticRule",
    "Randomness",
    "Rule",
    "Sampler",
    "Source",
    "StratifiedRule",
    "StratumEstimate",
    "StratumOverride",
    "StratumPlan",
    "TraceRecord",
    "dry_run",
    "dry_run_totals",
    "estimate",
    "hashed_randomness",
    "id_randomness",
    "load_policy",
    "outcome_value",
    "parse_policy",
    "threshold",
    "threshold_probability",
    "wilson_interval",
]
