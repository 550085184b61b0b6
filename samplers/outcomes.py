"""Judge outcomes fed back to the sampler and the estimators."""

from __future__ import annotations

import math
from dataclasses import dataclass

_TRUE = frozenset({"yes", "pass", "passed", "true", "y", "1", "ok", "correct"})
_FALSE = frozenset({"no", "fail", "failed", "false", "n", "0", "incorrect"})


@dataclass(frozen=True, slots=True)
class JudgedOutcome:
    """One judge verdict on one sampled trace, with the inclusion probability it was drawn at.

    `window_start_ms` (from the Decision) lets the estimator post-stratify per window cell.
    """

    trace_id: str
    judge: str
    stratum: str
    value: bool | float | int | str | None
    probability: float
    window_start_ms: int | None = None


def outcome_value(value: object) -> tuple[float, bool] | None:
    """(numeric value, is_binary) for a judge value; None when it carries no verdict.

    Booleans and yes/no/pass/fail strings are binary (pass rate); numbers are scores (mean).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return (1.0 if value else 0.0), True
    if isinstance(value, (int, float)):
        x = float(value)
        return (x, False) if math.isfinite(x) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1.0, True
        if text in _FALSE:
            return 0.0, True
        try:
            x = float(text)
        except ValueError:
            return None
        return (x, False) if math.isfinite(x) else None
    # e.g. mlflow CategoricalRating is a str Enum; anything else with a usable str() value
    inner = getattr(value, "value", None)
    return outcome_value(inner) if isinstance(inner, (str, bool, int, float)) else None
