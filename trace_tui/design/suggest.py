"""`trace-tui policy suggest`: a recommended policy from a window's data.

Key fields are chosen by the spread of past pass rates across their values (what makes
stratifying pay), else by how evenly they split the traffic; as many as keep the expected
sample per stratum at `min_per_stratum` or more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from samplers.schema import parse_duration

from .draft import BudgetKind, Draft, JudgeChoice
from .judges import MENU
from .profile import FieldProfile, WindowProfile
from .window import DesignWindow

MAX_CARDINALITY = 50
MAX_FIELDS = 3
_BUDGET = re.compile(
    r"^\s*(?P<usd>\$)?(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>tok|tokens|usd|traces)?\s*/\s*"
    r"(?P<window>\d*(?:\.\d+)?\s*(?:ms|s|m|h|d))\s*$")


@dataclass(frozen=True)
class BudgetSpec:
    kind: BudgetKind
    amount: float
    window: str


def parse_budget(text: str) -> BudgetSpec:
    """`100/h` (traces), `50000tok/h` (judge tokens), `$2/h` or `2usd/10m` (dollars)."""
    m = _BUDGET.match(text or "")
    if not m:
        raise ValueError(f"--budget: expected N/WINDOW like 100/h, 50000tok/h or $2/h, "
                         f"got {text!r}")
    window = m.group("window").replace(" ", "")
    if window[0].isalpha():
        window = "1" + window
    if parse_duration(window) < 1:
        raise ValueError(f"--budget: expected a window of at least 1s, got {window!r}")
    unit = m.group("unit") or ""
    kind: BudgetKind = "usd" if m.group("usd") or unit == "usd" else (
        "tokens" if unit.startswith("tok") else "traces")
    amount = float(m.group("n"))
    if amount <= 0:
        raise ValueError(f"--budget: expected a positive amount, got {text!r}")
    return BudgetSpec(kind, amount, window)


def candidates(profile: WindowProfile) -> list[FieldProfile]:
    """Fields worth a key: 2..MAX_CARDINALITY values, the largest below 95% of traffic."""
    out = []
    for f in profile.fields:
        if f.truncated or not 2 <= f.cardinality <= MAX_CARDINALITY:
            continue
        if f.values and f.values[0].share >= 0.95:
            continue
        if f.path in ("span_types",):  # a set: every trace has most of them
            continue
        out.append(f)
    return out


def rank_fields(profile: WindowProfile) -> tuple[list[FieldProfile], str]:
    """(fields best first, 'verdicts' or 'traffic')."""
    fields = candidates(profile)
    spread = [f for f in fields if f.spread is not None and f.spread > 0.01]
    if spread:
        return sorted(spread, key=lambda f: -(f.spread or 0.0)), "verdicts"
    return sorted(fields, key=lambda f: (f.numeric, -f.impurity, f.path)), "traffic"


def suggest(window: DesignWindow, budget: BudgetSpec, *, judge: str | None = None,
            experiment: str | None = None, name: str = "suggested",
            min_per_stratum: int = 1) -> tuple[Draft, str]:
    """(draft, one-line reason)."""
    ranked, basis = rank_fields(window.profile)
    per_window = _traces_per_window(window, budget)
    chosen: list[FieldProfile] = []
    strata = 1
    for f in ranked:
        if len(chosen) >= MAX_FIELDS:
            break
        if strata * f.cardinality * min_per_stratum > max(1.0, per_window):
            continue
        chosen.append(f)
        strata *= f.cardinality
    if judge is not None and not any(t.name == judge for t in MENU):
        raise ValueError(f"--judge: expected one of {', '.join(t.name for t in MENU)}, "
                         f"got {judge!r}")
    judges = (JudgeChoice(judge or MENU[0].name),)
    draft = Draft(name=name, experiment=experiment, window=budget.window,
                  budget_kind=budget.kind, budget=budget.amount,
                  key_fields=tuple(f.key_field for f in chosen),
                  min_per_stratum=min_per_stratum, judges=judges,
                  description=f"Suggested from {window.total} traces.")
    if chosen:
        why = ", ".join(f"{f.path} ({_why(f, basis)})" for f in chosen)
        by = "spread of past verdicts" if basis == "verdicts" else "traffic share"
        reason = f"key fields by {by}: {why}"
    else:
        reason = "no field splits the traffic usefully: a uniform sample"
    return draft, reason


def _why(f: FieldProfile, basis: str) -> str:
    if basis == "verdicts":
        return f"pass-rate spread {f.spread or 0.0:.2f}"
    return f"{f.cardinality} values, largest {f.values[0].share:.0%}"


def _traces_per_window(window: DesignWindow, budget: BudgetSpec) -> float:
    """The budget in traces per window (tokens and dollars through a plain judge's cost)."""
    if budget.kind == "traces":
        return budget.amount
    from .judges import DEFAULT_MODEL, price_of

    tokens = MENU[0].est_tokens
    if budget.kind == "tokens":
        return budget.amount / tokens
    usd = tokens / 1000 * (price_of(DEFAULT_MODEL) or 0.001)
    return budget.amount / usd
