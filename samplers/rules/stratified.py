"""`stratified`: per-stratum rates fixed for each window, set from the budget (allocation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..allocation import allocation_shape, bounded_allocation, combined_std
from ..counts import Moments
from ..parsing import check_keys, get_value
from ..strata import OVERFLOW, KeyField, parse_key_field, parse_key_string, stratum_name
from .base import Rule

if TYPE_CHECKING:  # pragma: no cover
    from ..parsing import Ctx
    from ..plan import History, Plan
    from ..policy import Budget

ALLOCATIONS = ("proportional", "equal", "neyman", "cost_optimal", "fixed")
VARIANCE_COMBINE = ("mean", "max")
_FROZEN_EMPTY: Mapping[str, Any] = MappingProxyType({})

Put = Callable[[str, "StratifiedRule", float, "float | None", str], np.ndarray]


@dataclass(frozen=True)
class StratumOverride:
    rate: float | None = None
    min: int | None = None


@dataclass(frozen=True, kw_only=True)
class StratifiedRule(Rule):
    type: ClassVar[str] = "stratified"
    option_keys: ClassVar[tuple[str, ...]] = (
        "key_fields", "max_keys", "allocation", "rate", "min_per_stratum", "min_rate",
        "max_rate", "new_key_rate", "target_rate", "budget_share", "ema_weight",
        "lookback_windows", "prior_strength", "min_std", "variance_combine", "strata",
    )  # fmt: skip
    key_fields: tuple[KeyField, ...]
    max_keys: int = 500
    allocation: str = "neyman"
    rate: float | None = None
    min_per_stratum: int = 1
    min_rate: float = 0.0
    max_rate: float = 1.0
    new_key_rate: float = 1.0
    target_rate: float | None = None
    budget_share: float | None = None
    ema_weight: float = 0.5
    lookback_windows: int = 12
    prior_strength: float = 2.0
    min_std: float = 0.05
    variance_combine: str = "mean"
    strata: Mapping[str, StratumOverride] = field(default_factory=lambda: _FROZEN_EMPTY)

    @classmethod
    def parse_options(
        cls, ctx: Ctx, path: str, table: Mapping[str, Any], budget: Budget
    ) -> dict[str, Any]:
        return _parse_options(ctx, path, table, budget)

    # ------------------------------------------------------------------ planning

    def forecast_params(self) -> tuple[float, int]:
        return self.ema_weight, self.lookback_windows

    def key_of(self, stratum: str) -> str:
        return stratum[len(self.name) + 1 :]

    def admitted(self, names: Iterable[str], history: History) -> list[str]:
        """Known strata, at most max_keys by forecast population (overflow always kept)."""
        names = list(names)
        keyed = sorted(
            (s for s in names if self.key_of(s) != OVERFLOW),
            key=lambda s: (-history.strata[s].population, s),
        )
        return keyed[: self.max_keys] + [s for s in names if self.key_of(s) == OVERFLOW]

    def fixed_rates(
        self, strata: list[str], history: History
    ) -> list[tuple[str, float, str]] | None:
        if self.allocation != "fixed":
            return None
        out = []
        for s in self.admitted(strata, history):
            ov = self.strata.get(self.key_of(s))
            rate = ov.rate if ov is not None and ov.rate is not None else self.rate
            out.append((s, float(rate or 0.0), "fixed"))
        return out

    def count_keys(self, plan: Plan) -> int | None:
        return sum(
            1 for sp in plan.strata.values()
            if sp.rule == self.name and self.key_of(sp.stratum) != OVERFLOW
        )  # fmt: skip

    def ranked_strata(self, keys: Sequence[str | None]) -> list[str]:
        return [
            stratum_name(self.name, k if i < self.max_keys else OVERFLOW)
            for i, k in enumerate(keys)
        ]

    def allocate(
        self,
        budget: Budget,
        costs_of: Any,
        history: History,
        names: list[str],
        limits: np.ndarray,
        plan: Plan,
        put: Put,
    ) -> None:
        """Allocate this rule's share of the budget (`limits`) over its strata."""
        strata = self.admitted(names, history)
        if not strata:
            return
        fixed: list[str] = []
        free: list[str] = []
        for s in strata:
            ov = self.strata.get(self.key_of(s))
            (fixed if ov is not None and ov.rate is not None else free).append(s)
        limits = limits.copy()
        for s in fixed:
            rate = self.strata[self.key_of(s)].rate
            assert rate is not None
            limits -= put(s, self, float(rate), None, "override")
        limits = np.maximum(limits, 0.0)
        if not free:
            return
        pop = np.array([history.strata[s].population for s in free])
        if self.target_rate is not None:
            limits[0] = min(limits[0], self.target_rate * float(pop.sum()) * costs_of.fmax)
        costs = np.array(
            [costs_of.vector(history.strata[s].mean_tokens) for s in free], dtype=float
        )
        pooled = self._pooled_moments(history)
        stds = np.array([self._std(s, history, pooled) for s in free])
        mins = np.array([self._min_of(s) for s in free], dtype=float) / costs_of.fmax
        upper = self.max_rate * pop
        lower = np.minimum(np.maximum(mins, self.min_rate * pop), upper)
        shape = allocation_shape(self.allocation, pop, stds, _unit_cost(budget, costs))
        n, ok = bounded_allocation(shape, lower, upper, costs, limits)
        if not ok:
            plan.minimums_met = False
            plan.notes.append(
                f"{self.name}: per-stratum minimums exceed the budget; scaled down to fit"
            )
        rates = np.clip(n / pop, 0.0, 1.0)
        for s, rate, std in zip(free, rates.tolist(), stds.tolist(), strict=True):
            put(s, self, rate, std, "allocation")

    def _min_of(self, stratum: str) -> int:
        ov = self.strata.get(self.key_of(stratum))
        return ov.min if ov is not None and ov.min is not None else self.min_per_stratum

    def _pooled_moments(self, history: History) -> dict[str, Moments]:
        pooled: dict[str, Moments] = {}
        for (s, j), m in history.moments.items():
            h = history.strata.get(s)
            if h is not None and h.rule == self.name and j in self.judges:
                pooled[j] = pooled.get(j, Moments()) + m
        return pooled

    def _std(self, stratum: str, history: History, pooled: dict[str, Moments]) -> float:
        per_judge = [
            (history.moments.get((stratum, j), Moments()), pooled[j])
            for j in self.judges
            if j in pooled and pooled[j].n > 0
        ]
        return combined_std(per_judge, self.prior_strength, self.min_std, self.variance_combine)

    # ------------------------------------------------------------------ deciding

    def resolve(
        self, key_text: str | None, plan: Plan, admitted: dict[str, int]
    ) -> tuple[str, float, bool]:
        assert key_text is not None
        stratum = stratum_name(self.name, key_text)
        rate = plan.rate(stratum)
        if rate is None:
            if admitted.get(self.name, 0) < self.max_keys:
                admitted[self.name] = admitted.get(self.name, 0) + 1
            else:
                key_text = OVERFLOW
                stratum = stratum_name(self.name, OVERFLOW)
                rate = plan.rate(stratum)
        if rate is not None:
            return stratum, rate, False
        # not in this window's plan: a rate known up front, else a new stratum
        override = self.strata.get(key_text)
        if override is not None and override.rate is not None:
            return stratum, override.rate, False
        if self.allocation == "fixed":
            return stratum, self.rate or 0.0, False
        return stratum, self.new_key_rate, True


def _unit_cost(budget: Budget, costs: np.ndarray) -> np.ndarray:
    """c_h for cost-optimal allocation: judge dollars when only a dollar budget is set,
    else judge tokens, else traces."""
    if budget.max_usd is not None and budget.max_tokens is None and costs[:, 2].any():
        return costs[:, 2]
    if costs[:, 1].any():
        return costs[:, 1]
    return costs[:, 0]


def _parse_options(
    ctx: Ctx, path: str, t: Mapping[str, Any], budget: Budget
) -> dict[str, Any]:
    def g(key: str, kind: str, default: Any = None, **kw: Any) -> Any:
        return get_value(ctx, t, path, key, kind, default, **kw)


    raw_keys = t.get("key_fields")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise ctx.fail(
            f"{path}.key_fields",
            f"expected a non-empty list like ['tags.route', 'bucket(duration_ms, [1000, 5000])'],"
            f" got {raw_keys!r}",
        )
    key_fields: list[KeyField] = []
    for i, spec in enumerate(raw_keys):
        try:
            kf = parse_key_field(spec)
        except ValueError as exc:
            raise ctx.fail(f"{path}.key_fields[{i}]", str(exc)) from None
        if any(k.label == kf.label for k in key_fields):
            raise ctx.fail(
                f"{path}.key_fields[{i}]",
                f"expected distinct labels, got {kf.label!r} twice (set label = '...')",
            )
        key_fields.append(kf)

    allocation = g("allocation", "str", "neyman", choices=ALLOCATIONS)
    rate = g("rate", "float", None, lo=0, hi=1)
    if allocation == "fixed" and rate is None:
        raise ctx.fail(f"{path}.rate", "expected a rate in [0, 1] for allocation = 'fixed'")
    target_rate = g("target_rate", "float", None, lo=0, lo_open=True, hi=1)
    if allocation != "fixed" and target_rate is None and not budget.limited:
        raise ctx.fail(
            f"{path}.allocation",
            f"expected a [budget] with max_traces/max_tokens/max_usd or a target_rate "
            f"for allocation = {allocation!r}",
        )
    min_rate = g("min_rate", "float", 0.0, lo=0, hi=1)
    max_rate = g("max_rate", "float", 1.0, lo=0, lo_open=True, hi=1)
    if min_rate > max_rate:
        raise ctx.fail(f"{path}.min_rate", f"expected min_rate <= max_rate ({max_rate:g})")

    labels = [k.label for k in key_fields]
    strata: dict[str, StratumOverride] = {}
    raw_strata = t.get("strata", {})
    if not isinstance(raw_strata, dict):
        raise ctx.fail(f"{path}.strata", f"expected a table of stratum keys, got {raw_strata!r}")
    for key, ov in raw_strata.items():
        spath = f"{path}.strata"
        try:
            got = [lab for lab, _ in parse_key_string(key)]
        except ValueError as exc:
            raise ctx.fail(spath, str(exc)) from None
        if got != labels:
            example = "•".join(f"{lab}=..." for lab in labels)
            raise ctx.fail(spath, f"expected keys shaped like {example!r}, got {key!r}")
        if not isinstance(ov, dict):
            raise ctx.fail(spath, f"expected {{ rate = ..., min = ... }} for {key!r}, got {ov!r}")
        check_keys(ctx, spath, ov, ("rate", "min"))
        strata[key] = StratumOverride(
            rate=get_value(ctx, ov, spath, "rate", "float", None, lo=0, hi=1),
            min=get_value(ctx, ov, spath, "min", "int", None, lo=0),
        )
    return {
        "key_fields": tuple(key_fields),
        "max_keys": g("max_keys", "int", 500, lo=1),
        "allocation": allocation,
        "rate": rate,
        "min_per_stratum": g("min_per_stratum", "int", 1, lo=0),
        "min_rate": min_rate,
        "max_rate": max_rate,
        "new_key_rate": g("new_key_rate", "float", 1.0, lo=0, hi=1),
        "target_rate": target_rate,
        "budget_share": g("budget_share", "float", None, lo=0, lo_open=True, hi=1),
        "ema_weight": g("ema_weight", "float", 0.5, lo=0, lo_open=True, hi=1),
        "lookback_windows": g("lookback_windows", "int", 12, lo=1),
        "prior_strength": g("prior_strength", "float", 2.0, lo=0),
        "min_std": g("min_std", "float", 0.05, lo=0),
        "variance_combine": g("variance_combine", "str", "mean", choices=VARIANCE_COMBINE),
        "strata": MappingProxyType(strata),
    }
