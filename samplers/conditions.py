"""Rule conditions: declaration and compilation to fast predicates.

Each condition becomes a Python expression over the record `r` (helpers and constants go in a
namespace dict). `compile_condition` evaluates one; the sampler inlines the same expressions
into one generated classifier, so what the tests check is exactly what runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .fields import FieldRef, parse_field
from .record import TraceRecord

Predicate = Callable[[TraceRecord], bool]

OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in", "exists", "not_exists", "regex")
_OP_ALIASES = {
    "==": "=",
    "eq": "=",
    "ne": "!=",
    "not in": "not_in",
    "not exists": "not_exists",
    "matches": "regex",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
}
_COMPARE = {"<", "<=", ">", ">="}


@dataclass(frozen=True, slots=True)
class Condition:
    """`field op value`; value is absent for exists/not_exists and a list for in/not_in."""

    field: str
    op: str
    value: Any = None


def normalize_op(op: object) -> str:
    """Canonical operator name; raises ValueError listing the accepted ones."""
    if isinstance(op, str):
        canon = _OP_ALIASES.get(op.strip().lower(), op.strip().lower())
        if canon in OPS:
            return canon
    raise ValueError(f"expected one of {', '.join(OPS)}, got {op!r}")


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(f"expected a string or number, got {value!r}")


def _as_number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def _num(raw: object) -> float | None:
    """A text value as a number, None when it is missing or does not parse."""
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _fold(v: object) -> object:
    return v.upper() if isinstance(v, str) else v


def _regex(value: Any) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise ValueError(f"operator 'regex' expects a string pattern, got {value!r}")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"expected a valid regular expression, got {value!r} ({exc})") from None


def _any_match(pattern: re.Pattern[str], members: frozenset[str]) -> bool:
    return any(pattern.search(m) for m in members)


HELPERS: dict[str, Any] = {"_num": _num, "_fold": _fold, "_any_match": _any_match}


def field_expr(ref: FieldRef) -> str:
    """Expression reading a field from record `r` (None when a tag/metadata key is absent)."""
    if ref.kind == "attr":
        return f"r.{ref.key}"
    return f"r.{ref.kind}.get({ref.key!r})"


def condition_expr(cond: Condition, ns: dict[str, Any]) -> str:
    """A boolean expression over `r` for one condition; constants are added to `ns`.

    Raises ValueError (message without location) when the condition is invalid."""
    ref = parse_field(cond.field)
    op = normalize_op(cond.op)
    value = cond.value
    ns.update(HELPERS)
    if op in ("exists", "not_exists"):
        if value is not None:
            raise ValueError(f"operator {op!r} takes no value, got {value!r}")
        a = field_expr(ref)
        if ref.set_valued:
            return f"(len({a}) > 0)" if op == "exists" else f"(len({a}) == 0)"
        return f"({a} is not None)" if op == "exists" else f"({a} is None)"
    if value is None:
        raise ValueError(f"operator {op!r} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            raise ValueError(f"operator {op!r} expects a non-empty list, got {value!r}")
    elif isinstance(value, (list, tuple, dict)):
        raise ValueError(f"operator {op!r} expects a single value, got {value!r}")
    const = f"_k{len(ns)}"
    if ref.set_valued:
        return _set_expr(ref, op, value, ns, const)
    if ref.numeric:
        return _numeric_expr(ref, op, value, ns, const)
    return _text_expr(ref, op, value, ns, const)


def _set_expr(ref: FieldRef, op: str, value: Any, ns: dict[str, Any], const: str) -> str:
    a = field_expr(ref)
    if op in _COMPARE:
        raise ValueError(f"operator {op!r} is not defined on set-valued field {ref.path!r}")
    if op in ("=", "!="):
        text = _as_text(value)
        return f"({text!r} in {a})" if op == "=" else f"({text!r} not in {a})"
    if op in ("in", "not_in"):
        ns[const] = frozenset(_as_text(v) for v in value)
        return f"(not {const}.isdisjoint({a}))" if op == "in" else f"{const}.isdisjoint({a})"
    ns[const] = _regex(value)
    return f"_any_match({const}, {a})"


def _numeric_expr(ref: FieldRef, op: str, value: Any, ns: dict[str, Any], const: str) -> str:
    a = field_expr(ref)
    nullable = ref.key == "cost_usd"
    if op == "regex":
        raise ValueError(f"operator 'regex' needs a text field, {ref.path!r} is numeric")
    if op in ("in", "not_in"):
        ns[const] = frozenset(_as_number(v) for v in value)
        return f"({a} in {const})" if op == "in" else f"({a} not in {const})"
    number = repr(_as_number(value))
    if op == "=":
        return f"({a} == {number})"
    if op == "!=":
        return f"({a} != {number})"
    if nullable:
        return f"((_v := {a}) is not None and _v {op} {number})"
    return f"({a} {op} {number})"


def _text_expr(ref: FieldRef, op: str, value: Any, ns: dict[str, Any], const: str) -> str:
    a = field_expr(ref)
    fold = ref.kind == "attr" and ref.key == "status"
    if op in _COMPARE:
        number = repr(_as_number(value))
        return f"((_v := _num({a})) is not None and _v {op} {number})"
    if op == "regex":
        ns[const] = _regex(value)
        return f"((_v := {a}) is not None and {const}.search(_v) is not None)"
    folded = f"_fold({a})" if fold else a
    if op in ("in", "not_in"):
        members = frozenset(_as_text(v) for v in value)
        ns[const] = frozenset(m.upper() for m in members) if fold else members
        return f"({folded} in {const})" if op == "in" else f"({folded} not in {const})"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = repr(float(value))
        return f"(_num({a}) == {number})" if op == "=" else f"(_num({a}) != {number})"
    text = _as_text(value)
    if fold:  # statuses are normally upper case already: compare raw first, fold only if not
        text = text.upper()
        eq = f"({a} == {text!r} or _fold({a}) == {text!r})"
        return eq if op == "=" else f"(not {eq})"
    return f"({a} == {text!r})" if op == "=" else f"({a} != {text!r})"


def conditions_expr(conditions: Sequence[Condition], match: str, ns: dict[str, Any]) -> str | None:
    """AND (match='all') or OR (match='any') of the conditions; None means 'always true'."""
    parts = [condition_expr(c, ns) for c in conditions]
    if not parts:
        return None
    return "(" + (" or " if match == "any" else " and ").join(parts) + ")"


def compile_condition(cond: Condition) -> Predicate:
    """Compile one condition to a predicate; raises ValueError when it is invalid."""
    ns: dict[str, Any] = {}
    expr = condition_expr(cond, ns)
    return eval(f"lambda r: bool({expr})", ns)  # expression built from validated parts only
