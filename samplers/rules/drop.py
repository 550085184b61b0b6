"""`drop`: never judge what matches (e.g. eval runs); records no rule matches are dropped too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Rule, RuleDecl

UNMATCHED = "<unmatched>"


class DropDecl(RuleDecl, tag="drop"):
    """π = 0: counted, but outside the estimated population (no options)."""


@dataclass(frozen=True, kw_only=True)
class DropRule(Rule):
    Decl: ClassVar[type[RuleDecl]] = DropDecl
    guarded: ClassVar[bool] = False

    def fixed_rate(self) -> float:
        return 0.0

    def reasons(self, new: bool) -> tuple[str, str]:
        return "drop", "drop"


@dataclass(frozen=True, kw_only=True)
class UnmatchedRule(DropRule):
    """The pseudo-rule of records that no rule matches."""

    name: str = UNMATCHED

    def reasons(self, new: bool) -> tuple[str, str]:
        return "drop", "unmatched"
