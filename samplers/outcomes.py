"""Judge outcomes fed back to the sampler and the estimators."""

from __future__ import annotations

from dataclasses import dataclass

from .verdicts import PassRule, numeric_value


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


def outcome_value(value: object, rule: PassRule | None = None) -> tuple[float, bool] | None:
    """(numeric value, is_binary) for a judge value; None when it carries no verdict.

    The reading is `samplers.verdicts.numeric_value` (the one verdict vocabulary): booleans and
    pass/fail words are binary (pass rate); numbers are scores (mean) unless the judge's
    `rule` declares a `pass_threshold`.
    """
    return numeric_value(value, rule)
