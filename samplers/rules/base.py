"""What every sampling rule is: a name, conditions, judges, and how it plans and decides.

Each rule type (drop, always, probabilistic, stratified) is one small class in this package
that parses its own options, plans its strata for a window and fixes a stratum's rate at
decision time; the planner and the sampler only call these methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..conditions import Condition
from ..strata import KeyField

if TYPE_CHECKING:  # pragma: no cover
    from ..parsing import Ctx
    from ..plan import History, Plan
    from ..policy import Budget

DEFAULT_EMA_WEIGHT = 0.5
DEFAULT_LOOKBACK = 12


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One `[[policy]]` entry. Rules are tried in order; the first match decides."""

    type: ClassVar[str]
    option_keys: ClassVar[tuple[str, ...]] = ()  # the keys of this type beyond the common ones
    guarded: ClassVar[bool] = True  # its selections spend the budget
    name: str
    conditions: tuple[Condition, ...] = ()
    match: str = "all"
    judges: tuple[str, ...] = ()
    # the stratum key; () = one stratum named after the rule
    key_fields: tuple[KeyField, ...] = field(default=(), init=False)

    @classmethod
    def parse_options(
        cls, ctx: Ctx, path: str, table: Mapping[str, Any], budget: Budget
    ) -> dict[str, Any]:
        """This type's own options from its `[[policy]]` table, as constructor keywords."""
        return {}

    # ------------------------------------------------------------------ planning

    def forecast_params(self) -> tuple[float, int]:
        """(EMA weight, lookback windows) for forecasting this rule's populations."""
        return DEFAULT_EMA_WEIGHT, DEFAULT_LOOKBACK

    def fixed_rates(
        self, strata: list[str], history: History
    ) -> list[tuple[str, float, str]] | None:
        """`(stratum, rate, basis)` known before allocating the budget; None = allocate."""
        return [(s, self.window_rate_of(s), self.type) for s in strata]

    def count_keys(self, plan: Plan) -> int | None:
        """Keys of this rule admitted by the plan (None: the rule has no keys)."""
        return None

    def ranked_strata(self, keys: Sequence[str | None]) -> list[str]:
        """Stratum names of rendered keys ranked by population (dry runs)."""
        return [self.name] * len(keys)

    # ------------------------------------------------------------------ deciding

    def window_rate_of(self, stratum: str) -> float:
        """The fixed rate of a keyless rule."""
        raise NotImplementedError

    def resolve(
        self, key_text: str | None, plan: Plan, admitted: dict[str, int]
    ) -> tuple[str, float, bool]:
        """`(stratum, rate, new)` for a record with rendered key `key_text` in a window."""
        return self.name, self.window_rate_of(self.name), False

    def reasons(self, new: bool) -> tuple[str, str]:
        """The decision reasons when selected and when not."""
        return ("new_stratum" if new else "sampled"), "not_sampled"
