"""One small class per sampling rule type; `RULE_TYPES` maps a `type = ...` to its class."""

from .always import AlwaysDecl, AlwaysRule
from .base import ConditionDecl, Rule, RuleDecl
from .drop import UNMATCHED, DropDecl, DropRule, UnmatchedRule
from .probabilistic import ProbabilisticDecl, ProbabilisticRule
from .stratified import StratifiedDecl, StratifiedRule, StratumOverride

RULE_TYPES: dict[str, type[Rule]] = {
    cls.type: cls for cls in (DropRule, AlwaysRule, ProbabilisticRule, StratifiedRule)
}

__all__ = [
    "RULE_TYPES",
    "UNMATCHED",
    "AlwaysDecl",
    "AlwaysRule",
    "ConditionDecl",
    "DropDecl",
    "DropRule",
    "ProbabilisticDecl",
    "ProbabilisticRule",
    "Rule",
    "RuleDecl",
    "StratifiedDecl",
    "StratifiedRule",
    "StratumOverride",
    "UnmatchedRule",
]
