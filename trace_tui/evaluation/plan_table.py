"""`sample --dry-run` as a readable table: percents, whole counts, dollars; no reprs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trace_tui.core.render import fmt_cost
from trace_tui.core.text import safe_text

# (frame column, header, formatter kind); right-aligned unless "text"
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rule", "rule", "text"),
    ("stratum", "stratum", "text"),
    ("population", "traces", "count"),
    ("population_per_window", "per window", "count"),
    ("rate", "rate", "percent"),
    ("inclusion_probability", "judged", "percent"),
    ("expected_sample", "sample", "count"),
    ("expected_sample_per_window", "per window", "count"),
    ("expected_judge_tokens", "judge tokens", "count"),
    ("expected_cost_usd", "cost", "usd"),
    ("basis", "basis", "text"),
)
_MAX_TEXT = 40


def cell(value: Any, kind: str) -> str:
    """One value as shown: ``42.9%``, ``685,400``, ``$1.23``, ``-`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "percent":
        return f"{float(value) * 100:.1f}%"
    if kind == "count":
        return f"{round(float(value)):,}"
    if kind == "usd":
        return fmt_cost(float(value)) or "-"
    text = safe_text(str(value)).replace("\n", " ")
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "…"


def plan_rows(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [[cell(r.get(col), kind) for col, _, kind in COLUMNS] for r in records]


def render_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Aligned columns with a header; the same text on a terminal and in a pipe."""
    header = [h for _, h, _ in COLUMNS]
    rows = plan_rows(records)
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if kind == "text" else c.rjust(w)
                 for c, w, (_, _, kind) in zip(cells, widths, COLUMNS, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    if not rows:
        out.append("(no traces in the period)")
    return "\n".join(out)


def render_totals(totals: Mapping[str, Any], window_s: float | None = None) -> str:
    """The totals under the table, in words (budget limits included, unset ones as ``-``)."""
    windows = int(totals.get("windows", 1))
    span = f" of {_window(window_s)}" if window_s else ""
    lines = [
        f"{cell(totals.get('population'), 'count')} traces in {totals.get('strata', 0)} strata "
        f"over {windows} window{'s' if windows != 1 else ''}{span}",
        f"expected: {cell(totals.get('expected_sample'), 'count')} judged traces, "
        f"{cell(totals.get('expected_judge_tokens'), 'count')} judge tokens, "
        f"{cell(totals.get('expected_cost_usd'), 'usd')}",
        f"per window: {cell(totals.get('expected_sample_per_window'), 'count')} judged traces, "
        f"{cell(totals.get('expected_judge_tokens_per_window'), 'count')} judge tokens, "
        f"{cell(totals.get('expected_cost_usd_per_window'), 'usd')}",
    ]
    budget = totals.get("budget_per_window")
    if isinstance(budget, Mapping):
        lines.append(
            f"budget per window: {cell(budget.get('max_traces'), 'count')} traces, "
            f"{cell(budget.get('max_tokens'), 'count')} tokens, "
            f"{cell(budget.get('max_usd'), 'usd')}")
    return "\n".join(lines)


def _window(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
