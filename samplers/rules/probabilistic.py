"""`probabilistic`: judge a fixed fraction of matching traces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..parsing import get_value
from .base import Rule

if TYPE_CHECKING:  # pragma: no cover
    from ..parsing import Ctx
    from ..policy import Budget


@dataclass(frozen=True, kw_only=True)
class ProbabilisticRule(Rule):
    type: ClassVar[str] = "probabilistic"
    option_keys: ClassVar[tuple[str, ...]] = ("rate", "sampling_percentage")
    rate: float

    @classmethod
    def parse_options(
        cls, ctx: Ctx, path: str, table: Mapping[str, Any], budget: Budget
    ) -> dict[str, Any]:
        if "rate" in table and "sampling_percentage" in table:
            raise ctx.fail(f"{path}.rate", "expected either rate or sampling_percentage, not both")
        if "sampling_percentage" in table:
            pct = get_value(
                ctx, table, path, "sampling_percentage", "float", lo=0, lo_open=True, hi=100
            )
            return {"rate": pct / 100.0}
        if "rate" in table:
            return {"rate": get_value(ctx, table, path, "rate", "float", lo=0, lo_open=True, hi=1)}
        raise ctx.fail(f"{path}.rate", "expected rate (0..1] or sampling_percentage (0..100]")

    def window_rate_of(self, stratum: str) -> float:
        return self.rate
