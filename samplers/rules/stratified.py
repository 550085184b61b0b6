"""`stratified`: per-stratum rates fixed for each window, set from the budget (allocation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
import numpy as np

from ..allocation import allocation_shape, bounded_allocation, combined_std
from ..counts import Moments
from ..parsing import Ctx, decode, doc
from ..strata import OVERFLOW, KeyField, parse_key_field, parse_key_string, stratum_name
from .base import Rule, RuleDecl

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import History, Plan
    from ..schema import Budget

Allocation = Literal["proportional", "equal", "neyman", "cost_optimal", "fixed"]
VarianceCombine = Literal["mean", "max"]
_Unit = msgspec.Meta(ge=0, le=1)
_OpenUnit = msgspec.Meta(gt=0, le=1)
Rate = Annotated[float, _Unit]
OpenRate = Annotated[float, _OpenUnit]

Put = Callable[[str, "StratifiedRule", float, "float | None", str], np.ndarray]


class StratumOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One stratum's `{ rate = ..., min = ... }` in a stratified rule's `strata`."""

    rate: Annotated[Rate | None, doc("A fixed rate, out of the allocation.")] = None
    min: Annotated[Annotated[int, msgspec.Meta(ge=0)] | None, doc("A per-stratum minimum.")] = None


class StratifiedDecl(RuleDecl, tag="stratified"):
    """Per stratum and window, see *How rates are set*."""

    key_fields: Annotated[
        list[Any],
        msgspec.Meta(min_length=1),
        doc("The stratum key, see *Strata*.", kind="list of field paths",
            expected="a non-empty list like ['tags.route', 'bucket(duration_ms, [1000, 5000])']"),
    ]  # fmt: skip
    max_keys: Annotated[
        int, msgspec.Meta(ge=1), doc("Distinct keys per window; more go to `<rule>/__other__`.")
    ] = 500
    allocation: Annotated[Allocation, doc("How the budget is spread, see *How rates are set*.")] = (
        "neyman"
    )
    rate: Annotated[
        Rate | None, doc('`allocation = "fixed"` only: the rate of every stratum.')
    ] = None
    min_per_stratum: Annotated[
        int, msgspec.Meta(ge=0), doc("Expected judged traces per stratum and window, at least.")
    ] = 1
    min_rate: Annotated[float, _Unit, doc("Exploration floor on every stratum's rate.")] = 0.0
    max_rate: Annotated[float, _OpenUnit, doc("Cap on every stratum's rate.")] = 1.0
    new_key_rate: Annotated[float, _Unit, doc("Rate of a stratum first seen in this window.")] = 1.0
    target_rate: Annotated[
        OpenRate | None,
        doc("At most this share of the rule's traffic (needed without a budget limit)."),
    ] = None
    budget_share: Annotated[
        OpenRate | None,
        doc("Share of the budget left after fixed-rate rules; default by population."),
    ] = None
    ema_weight: Annotated[
        float, _OpenUnit, doc("Population forecast: EMA weight of the latest window.")
    ] = 0.5
    lookback_windows: Annotated[
        int, msgspec.Meta(ge=1), doc("Population forecast: windows it looks back.")
    ] = 12
    prior_strength: Annotated[
        float, msgspec.Meta(ge=0),
        doc("Neyman: pseudo-observations shrinking toward the pooled rate."),
    ] = 2.0
    min_std: Annotated[
        float, msgspec.Meta(ge=0), doc("Neyman: floor on a stratum's outcome std dev.")
    ] = 0.05
    variance_combine: Annotated[
        VarianceCombine, doc("Several judges: the mean or max of their variances.")
    ] = "mean"
    strata: Annotated[
        dict[str, Any],
        doc("Per-stratum overrides `{ rate, min }`, see below.",
            expected="a table of stratum keys"),
    ] = msgspec.field(default_factory=dict)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class StratifiedRule(Rule):
    Decl: ClassVar[type[RuleDecl]] = StratifiedDecl
    key_fields: tuple[KeyField, ...]
    max_keys: int
    allocation: str
    rate: float | None
    min_per_stratum: int
    min_rate: float
    max_rate: float
    new_key_rate: float
    target_rate: float | None
    budget_share: float | None
    ema_weight: float
    lookback_windows: int
    prior_strength: float
    min_std: float
    variance_combine: str
    strata: Mapping[str, StratumOverride]

    @classmethod
    def options(cls, ctx: Ctx, path: str, decl: Any, budget: Budget) -> dict[str, Any]:
        return _options(ctx, path, decl, budget)

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


def _options(ctx: Ctx, path: str, d: StratifiedDecl, budget: Budget) -> dict[str, Any]:
    key_fields: list[KeyField] = []
    for i, spec in enumerate(d.key_fields):
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
    if d.allocation == "fixed" and d.rate is None:
        raise ctx.fail(f"{path}.rate", "expected a rate in [0, 1] for allocation = 'fixed'")
    if d.allocation != "fixed" and d.target_rate is None and not budget.limited:
        raise ctx.fail(
            f"{path}.allocation",
            f"expected a [budget] with max_traces/max_tokens/max_usd or a target_rate "
            f"for allocation = {d.allocation!r}",
        )
    if d.min_rate > d.max_rate:
        raise ctx.fail(f"{path}.min_rate", f"expected min_rate <= max_rate ({d.max_rate:g})")

    labels = [k.label for k in key_fields]
    strata: dict[str, StratumOverride] = {}
    spath = f"{path}.strata"
    for key, ov in d.strata.items():
        try:
            got = [lab for lab, _ in parse_key_string(key)]
        except ValueError as exc:
            raise ctx.fail(spath, str(exc)) from None
        if got != labels:
            example = "•".join(f"{lab}=..." for lab in labels)
            raise ctx.fail(spath, f"expected keys shaped like {example!r}, got {key!r}")
        if not isinstance(ov, dict):
            raise ctx.fail(spath, f"expected {{ rate = ..., min = ... }} for {key!r}, got {ov!r}")
        strata[key] = decode(ctx, spath, ov, StratumOverride)
    options = {f: getattr(d, f) for f in d.__struct_fields__ if f not in _COMMON}
    return {**options, "key_fields": tuple(key_fields), "strata": MappingProxyType(strata)}


_COMMON = frozenset(RuleDecl.__struct_fields__)
