"""`probabilistic`: judge a fixed fraction of matching traces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec

from ..parsing import Ctx, doc
from .base import Rule, RuleDecl

if TYPE_CHECKING:  # pragma: no cover
    from ..schema import Budget


class ProbabilisticDecl(RuleDecl, tag="probabilistic"):
    """π = the rate."""

    rate: Annotated[
        Annotated[float, msgspec.Meta(gt=0, le=1)] | None,
        doc("The rate (or `sampling_percentage`)."),
    ] = None
    sampling_percentage: Annotated[
        Annotated[float, msgspec.Meta(gt=0, le=100)] | None,
        doc("The rate in percent (or `rate`)."),
    ] = None


@dataclass(frozen=True, kw_only=True)
class ProbabilisticRule(Rule):
    Decl: ClassVar[type[RuleDecl]] = ProbabilisticDecl
    rate: float

    @classmethod
    def options(cls, ctx: Ctx, path: str, decl: Any, budget: Budget) -> dict[str, Any]:
        if decl.rate is not None and decl.sampling_percentage is not None:
            raise ctx.fail(f"{path}.rate", "expected either rate or sampling_percentage, not both")
        if decl.sampling_percentage is not None:
            return {"rate": decl.sampling_percentage / 100.0}
        if decl.rate is not None:
            return {"rate": decl.rate}
        raise ctx.fail(f"{path}.rate", "expected rate (0..1] or sampling_percentage (0..100]")

    def fixed_rate(self) -> float:
        return self.rate
