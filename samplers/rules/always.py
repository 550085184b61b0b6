"""`always`: judge every matching trace (e.g. errors), within the budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Rule, RuleDecl


class AlwaysDecl(RuleDecl, tag="always"):
    """π = 1 (no options)."""


@dataclass(frozen=True, kw_only=True)
class AlwaysRule(Rule):
    Decl: ClassVar[type[RuleDecl]] = AlwaysDecl

    def fixed_rate(self) -> float:
        return 1.0

    def reasons(self, new: bool) -> tuple[str, str]:
        return "always", "not_sampled"
