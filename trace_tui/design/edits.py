"""The designer's typed edits, checked before they reach the draft: a judge's model, endpoint
and API key variable (its NAME, never the key), a rule's conditions in the policy file's own
syntax with its match and rate, and a numeric field's bucket boundaries. Each is checked by
the same schema `sample` and `policy lint` use; a problem raises `EditError`, one line that
never repeats what was typed as a key variable (it could be the key)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import tomlkit

from samplers import PolicyError, parse_policy
from samplers.strata import parse_key_field

from .draft import BUDGET_KEYS, Draft, ExtraRule, JudgeChoice
from .judges import DEFAULT_MODEL, MENU

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RULE_TYPES = ("drop", "always", "probabilistic")
_CONDITION_KEYS = ("field", "op", "value")


class EditError(ValueError):
    """One line for the editor's error line."""

    def __init__(self, problem: str) -> None:
        super().__init__(" ".join(str(problem).split()))


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------------- judges


def key_env_problem(name: str) -> str | None:
    """Why `name` cannot be an API key variable's name, or None. The message never
    contains `name` itself: what was typed may be the key."""
    if not ENV_NAME.match(name):
        return ("the key variable must be the NAME of an environment variable (letters, "
                "digits, _), not the key itself")
    if name not in os.environ and any(v == name for v in os.environ.values()):
        return ("that is the value of an environment variable (a key?), not its name: "
                "type the variable's NAME")
    return None


def _judge(judge: JudgeChoice, model: str, base_url: str, key_env: str,
           price: str) -> JudgeChoice:
    key_env = key_env.strip()
    problem = key_env_problem(key_env) if key_env else None
    if problem:
        raise EditError(problem)
    usd: float | None = None
    if price.strip():
        try:
            usd = float(price.strip().lstrip("$"))
        except ValueError:
            raise EditError(f"price: expected $ per 1k tokens, got {price.strip()!r}") from None
        if not 0 <= usd < 1_000:
            raise EditError(f"price: expected $ per 1k tokens in [0, 1000), got {usd:g}")
    return replace(judge, model=model.strip() or DEFAULT_MODEL,
                   base_url=base_url.strip() or None, api_key_env=key_env or None,
                   usd_per_1k=usd)


def edit_judge(draft: Draft, index: int, *, model: str, base_url: str, key_env: str,
               price: str) -> Draft:
    """`draft` with judge `index`'s model, endpoint, key variable and price set (blank:
    the default model, no endpoint, the provider's own variable, the model's price)."""
    new = _judge(draft.judges[index], model, base_url, key_env, price)
    out = draft.with_(judges=(*draft.judges[:index], new, *draft.judges[index + 1:]))
    check_judges(out)
    return out


def edit_declared_judge(draft: Draft, decl: Any, *, model: str, base_url: str, key_env: str,
                        price: str) -> Draft:
    """`draft` with an edited file's judge `decl` (a samplers JudgeDecl) overridden: its
    model, endpoint, key variable and price; its other keys are checked as they are."""
    from trace_tui.judging.spec import JudgeConfigError, JudgeSpec

    from .draft import declared_judge

    current = next((o for o in draft.judge_overrides if o.name == decl.name),
                   declared_judge(decl))
    new = _judge(current, model, base_url, key_env, price)
    options = {k: v for k, v in decl.options.items()
               if k not in ("model", "base_url", "api_key_env")}
    options |= {"model": new.model} | ({"base_url": new.base_url} if new.base_url else {}) | (
        {"api_key_env": new.api_key_env} if new.api_key_env else {})
    try:
        JudgeSpec.from_decl(decl.name, decl.scorer, options)
    except JudgeConfigError as exc:
        raise EditError(f"judge {decl.name!r}: {exc.key}: {exc.problem}") from None
    others = tuple(o for o in draft.judge_overrides if o.name != decl.name)
    return draft.with_(judge_overrides=(*others, new))


def cycle_judge(draft: Draft, index: int) -> tuple[Draft, int]:
    """Judge `index` becomes the next menu entry (built-ins, then make_judge templates) no
    other judge uses, keeping its model, endpoint and key variable. No judge: the first."""
    judges = list(draft.judges)
    if not judges:
        return draft.with_(judges=(JudgeChoice(MENU[0].name),)), 0
    index = min(index, len(judges) - 1)
    others = {j.template for k, j in enumerate(judges) if k != index}
    names = [t.name for t in MENU]
    at = names.index(judges[index].template) if judges[index].template in names else -1
    free = [n for k in range(1, len(names) + 1) if (n := names[(at + k) % len(names)])
            not in others]
    judges[index] = replace(judges[index], template=free[0], name="")
    return draft.with_(judges=tuple(judges)), index


def add_judge(draft: Draft, index: int) -> tuple[Draft, int]:
    """Another judge, selected: the first menu entry not in use, with judge `index`'s
    model, endpoint and key variable."""
    used = {j.template for j in draft.judges}
    free = [t.name for t in MENU if t.name not in used]
    if not free:
        raise EditError("every judge of the menu is in the policy")
    new = (replace(draft.judges[min(index, len(draft.judges) - 1)], template=free[0], name="")
           if draft.judges else JudgeChoice(free[0]))
    return draft.with_(judges=(*draft.judges, new)), len(draft.judges)


def remove_judge(draft: Draft, index: int) -> tuple[Draft, int]:
    judges = list(draft.judges)
    if len(judges) < 2:
        raise EditError("a policy needs a judge (j changes it)")
    judges.pop(min(index, len(judges) - 1))
    return draft.with_(judges=tuple(judges)), min(index, len(judges) - 1)


def check_judges(draft: Draft) -> None:
    """The draft's judges as `policy lint` checks them (trace_tui.judging.spec)."""
    from trace_tui.judging.spec import JudgeConfigError, JudgeSpec

    policy = _parse(draft)
    for decl in policy.judges:
        try:
            JudgeSpec.from_decl(decl.name, decl.scorer, dict(decl.options))
        except JudgeConfigError as exc:
            raise EditError(f"judge {decl.name!r}: {exc.key}: {exc.problem}") from None


# ---------------------------------------------------------------------- rules


def conditions_text(conditions: tuple[tuple[str, str, Any], ...]) -> str:
    """Conditions as the policy file writes them: `{ field = "status", op = "=", value =
    "ERROR" }, ...` (the array's brackets left out)."""
    parts = []
    for f, op, v in conditions:
        table = tomlkit.inline_table()
        table.update({"field": f, "op": op} | ({} if v is None else {"value": v}))
        parts.append(table.as_string())
    return ", ".join(parts)


def parse_conditions(text: str) -> tuple[tuple[str, str, Any], ...]:
    """`{ field = ..., op = ..., value = ... }, ...` (brackets optional; blank: none)."""
    text = text.strip()
    if not text:
        return ()
    if not text.startswith("["):
        text = f"[{text}]"
    try:
        raw = tomllib.loads(f"conditions = {text}")["conditions"]
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"conditions: not TOML ({_first_line(exc)}); write "
                        '{ field = "status", op = "=", value = "ERROR" }') from None
    out = []
    for i, c in enumerate(raw):
        if not isinstance(c, Mapping):
            raise EditError(f"conditions[{i}]: expected a table {{ field, op, value }}, "
                            f"got {c!r}")
        unknown = sorted(set(c) - set(_CONDITION_KEYS))
        if unknown:
            raise EditError(f"conditions[{i}]: unknown key {unknown[0]!r} (field, op, value)")
        if "field" not in c or "op" not in c:
            raise EditError(f"conditions[{i}]: needs a field and an op")
        out.append((c["field"], c["op"], c.get("value")))
    return tuple(out)


def parse_rate(text: str) -> float | None:
    """`0.05` or `5%`; blank: None (the default)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise EditError(f"rate: expected a number like 0.05 or 5%, got {text!r}") from None


def rule_name(draft: Draft, kind: str, reserved: frozenset[str] = frozenset()) -> str:
    """`drop-1`, `always-2`, ...: not used by the draft nor by the file (`reserved`)."""
    used = {r.name for r in draft.rules} | reserved
    return next(f"{kind}-{i}" for i in range(1, len(used) + 2) if f"{kind}-{i}" not in used)


def edit_rule(draft: Draft, index: int | None, *, kind: str, conditions: str, match: str,
              rate: str, reserved: frozenset[str] = frozenset()) -> Draft:
    """`draft` with rule `index` (None: a new one, last before the main rule) set; checked
    by the policy schema. `reserved`: an edited file's rule names."""
    if kind not in RULE_TYPES:
        raise EditError(f"type: expected one of {', '.join(RULE_TYPES)}, got {kind!r}")
    if match not in ("all", "any"):
        raise EditError(f"match: expected all or any, got {match!r}")
    rules = list(draft.rules)
    name = rule_name(draft, kind, reserved) if index is None else rules[index].name
    rule = ExtraRule(name, cast(Any, kind), parse_conditions(conditions),
                     parse_rate(rate) if kind == "probabilistic" else None, cast(Any, match))
    if index is None:
        rules.append(rule)
    else:
        rules[index] = rule
    out = draft.with_(rules=tuple(rules))
    _parse(out)
    return out


# ---------------------------------------------------------------------- budget


def edit_budget(draft: Draft, *, amount: str, kind: str, window: str) -> Draft:
    """`draft` with its budget: `amount` traces, judge tokens or dollars (`kind`) per
    `window` (`10m`, `1h`, `1d`), checked as `[budget]` is."""
    if kind not in BUDGET_KEYS:
        raise EditError(f"unit: expected one of {', '.join(BUDGET_KEYS)}, got {kind!r}")
    text = amount.strip().lstrip("$").replace("_", "").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        raise EditError(f"amount: expected a number, got {amount.strip()!r}") from None
    if kind != "usd":
        if not value.is_integer():
            raise EditError(f"amount: expected a whole number of {kind}, got {text}")
        value = int(value)
    out = draft.with_(budget=value, budget_kind=cast(Any, kind), window=window.strip())
    _parse(out)
    return out


# ---------------------------------------------------------------------- buckets


def parse_boundaries(path: str, text: str) -> str:
    """`1000, 5000` (brackets optional) -> the key field `bucket(path, [1000, 5000])`,
    checked as the schema checks key fields."""
    text = text.strip().strip("[]")
    edges = [e.strip() for e in text.split(",") if e.strip()]
    if not edges:
        raise EditError("buckets: expected at least one boundary, e.g. 1000, 5000")
    spec = f"bucket({path}, [{', '.join(edges)}])"
    try:
        key = parse_key_field(spec)
    except ValueError as exc:
        raise EditError(f"buckets: {_first_line(exc)}") from None
    assert key.buckets is not None
    return f"bucket({path}, [{', '.join(f'{b:g}' for b in key.buckets)}])"


def _parse(draft: Draft) -> Any:
    try:
        return parse_policy(draft.to_toml(), "<designer>")
    except PolicyError as exc:
        raise EditError(_first_line(exc).removeprefix("<designer>:").lstrip("0123456789: ")
                        ) from None
