"""What every sampling rule is: a name, conditions, judges, and how it plans and decides.

Each rule type (drop, always, probabilistic, stratified) is one small class in this package
that parses its own options, plans its strata for a window and fixes a stratum's rate at
decision time; the planner and the sampler only call these methods.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec

from ..conditions import Condition, compile_condition, normalize_op
from ..fields import parse_field
from ..parsing import Ctx, doc, join
from ..strata import KeyField

if TYPE_CHECKING:  # pragma: no cover
    from ..plan import History, Plan
    from ..schema import Budget

DEFAULT_EMA_WEIGHT = 0.5
DEFAULT_LOOKBACK = 12
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:@+-]*$"


class ConditionDecl(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`{ field, op, value }` (see 'Conditions and field paths')."""

    field: Annotated[Any, doc("A field path.", missing="expected a field path, got nothing")]
    op: Annotated[Any, doc("The operator.")] = "="
    value: Annotated[Any, doc("The operand; none for exists/not_exists.")] = None

    def compile(self, ctx: Ctx, path: str) -> Condition:
        try:
            parse_field(self.field)
        except ValueError as exc:
            raise ctx.fail(f"{path}.field", str(exc)) from None
        try:
            op = normalize_op(self.op)
        except ValueError as exc:
            raise ctx.fail(f"{path}.op", str(exc)) from None
        cond = Condition(field=self.field, op=op, value=self.value)
        try:
            compile_condition(cond)
        except ValueError as exc:
            raise ctx.fail(f"{path}.value", str(exc)) from None
        return cond


class RuleDecl(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="type"):
    """The keys every `[[policy]]` rule has; each type's Decl adds its own."""

    name: Annotated[
        str,
        msgspec.Meta(pattern=NAME_PATTERN),
        doc("Unique; letters, digits and `_.:@+-`.",
            expected="a rule name of letters, digits, '_.:@+-'"),
    ]  # fmt: skip
    conditions: Annotated[
        list[Annotated[ConditionDecl, doc("", expected="a { field, op, value } table")]],
        doc("Conditions; none = always matches.",
            expected="a list of { field, op, value } tables"),
    ] = msgspec.field(default_factory=list)  # fmt: skip
    match: Annotated[
        Literal["all", "any"], doc("Combine the conditions with AND (`all`) or OR (`any`).")
    ] = "all"
    judges: Annotated[
        list[str] | None,
        doc("A subset of the declared judges; default all.", expected="a list of judge names"),
    ] = None

    @classmethod
    def unknown_key_hint(cls, key: str) -> str:
        types = [
            str(sub.__struct_config__.tag)
            for sub in RuleDecl.__subclasses__()
            if key in sub.__struct_fields__
        ]
        return f"only valid for type {' or '.join(types)}" if types else "unknown key"


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One `[[policy]]` entry. Rules are tried in order; the first match decides."""

    type: ClassVar[str]
    Decl: ClassVar[builtins.type[RuleDecl]]
    guarded: ClassVar[bool] = True  # its selections spend the budget
    name: str
    conditions: tuple[Condition, ...] = ()
    match: str = "all"
    judges: tuple[str, ...] = ()
    # the stratum key; () = one stratum named after the rule
    key_fields: tuple[KeyField, ...] = field(default=(), init=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type = str(cls.Decl.__struct_config__.tag)

    @classmethod
    def from_decl(
        cls, ctx: Ctx, path: str, decl: Any, judge_names: tuple[str, ...], budget: Budget
    ) -> Rule:
        """The rule of a validated declaration; cross-key checks fail with `ctx`."""
        conditions = tuple(
            c.compile(ctx, join(join(path, "conditions"), i))
            for i, c in enumerate(decl.conditions)
        )
        judges = judge_names
        if decl.judges is not None:
            if not cls.guarded:
                raise ctx.fail(f"{path}.judges", f"expected no judges on a {cls.type} rule")
            for j in decl.judges:
                if j not in judge_names:
                    expected = ", ".join(judge_names) or "(no [[judge]] declared)"
                    raise ctx.fail(f"{path}.judges", f"expected one of {expected}, got {j!r}")
            judges = tuple(dict.fromkeys(decl.judges))
        if not cls.guarded:
            judges = ()
        return cls(
            name=decl.name, conditions=conditions, match=decl.match, judges=judges,
            **cls.options(ctx, path, decl, budget),
        )  # fmt: skip

    @classmethod
    def options(cls, ctx: Ctx, path: str, decl: Any, budget: Budget) -> dict[str, Any]:
        """This type's own options from its declaration, as constructor keywords."""
        return {}

    # ------------------------------------------------------------------ planning

    def forecast_params(self) -> tuple[float, int]:
        """(EMA weight, lookback windows) for forecasting this rule's populations."""
        return DEFAULT_EMA_WEIGHT, DEFAULT_LOOKBACK

    def fixed_rates(
        self, strata: list[str], history: History
    ) -> list[tuple[str, float, str]] | None:
        """`(stratum, rate, basis)` known before allocating the budget; None = allocate."""
        return [(s, self.fixed_rate(), self.type) for s in strata]

    def count_keys(self, plan: Plan) -> int | None:
        """Keys of this rule admitted by the plan (None: the rule has no keys)."""
        return None

    def ranked_strata(self, keys: Sequence[str | None]) -> list[str]:
        """Stratum names of rendered keys ranked by population (dry runs)."""
        return [self.name] * len(keys)

    # ------------------------------------------------------------------ deciding

    def fixed_rate(self) -> float:
        """The rate of every trace this (keyless) rule matches."""
        raise NotImplementedError

    def resolve(
        self, key_text: str | None, plan: Plan, admitted: dict[str, int]
    ) -> tuple[str, float, bool]:
        """`(stratum, rate, new)` for a record with rendered key `key_text` in a window."""
        return self.name, self.fixed_rate(), False

    def reasons(self, new: bool) -> tuple[str, str]:
        """The decision reasons when selected and when not."""
        return ("new_stratum" if new else "sampled"), "not_sampled"
