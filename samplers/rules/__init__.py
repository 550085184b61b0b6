"""One small class per sampling rule type; `RULE_TYPES` maps a `type = ...` to its class."""

from .always import AlwaysRule
from .base import Rule
from .drop import UNMATCHED, DropRule, UnmatchedRule
from .probabilistic import ProbabilisticRule
from .stratified import ALLOCATIONS, VARIANCE_COMBINE, StratifiedRule, StratumOverride

RULE_TYPES: dict[str, type[Rule]] = {
    cls.type: cls for cls in (DropRule, AlwaysRule, ProbabilisticRule, StratifiedRule)
}

__all__ = [
    "ALLOCATIONS",
    "RULE_TYPES",
    "UNMATCHED",
    "VARIANCE_COMBINE",
    "AlwaysRule",
    "DropRule",
    "ProbabilisticRule",
    "Rule",
    "StratifiedRule",
    "StratumOverride",
    "UnmatchedRule",
]
