"""One verdict vocabulary: whether an assessment value passes, given its judge's declaration.

Every reader (the list badge, the verdict screen, reports, review agreement, estimators) asks
`verdict(value, rule)`, so one value never reads as a pass in one place and a fail in another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PASS_WORDS = frozenset({"yes", "y", "true", "pass", "passed", "ok", "good", "correct", "1"})
FAIL_WORDS = frozenset({"no", "n", "false", "fail", "failed", "bad", "incorrect", "0"})
VALUE_TYPES = ("bool", "yes_no", "str", "float", "int")


@dataclass(frozen=True, slots=True)
class PassRule:
    """A judge's declaration: its `feedback_value_type` (None: unknown, e.g. a builtin judge or
    a human label) and, for numeric judges, `pass_threshold` (the lowest passing score)."""

    value_type: str | None = None
    pass_threshold: float | None = None

    @property
    def numeric(self) -> bool:
        return self.value_type in ("float", "int")


DEFAULT_RULE = PassRule()


def _unwrap(value: object) -> object:
    """mlflow's CategoricalRating (a str Enum) and similar wrappers -> their plain value."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    inner = getattr(value, "value", None)
    return inner if isinstance(inner, (bool, int, float, str)) else None


def verdict(value: object, rule: PassRule | None = None) -> bool | None:
    """True (pass), False (fail) or None (no verdict) for an assessment value.

    - bool: itself. Strings: the words in PASS_WORDS / FAIL_WORDS (case and blanks ignored);
      a numeric string is read as its number.
    - numbers: with a `pass_threshold`, pass iff value >= threshold. Without one, a numeric
      judge (`float`/`int`) gives a score, not a verdict (None); an undeclared value passes at
      exactly 1 and fails at exactly 0 (bool-like), any other number is None.
    - None, NaN, infinities, 'unknown' and anything else: None.
    """
    rule = rule or DEFAULT_RULE
    value = _unwrap(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PASS_WORDS and not (rule.numeric and rule.pass_threshold is not None):
            return True
        if text in FAIL_WORDS and not (rule.numeric and rule.pass_threshold is not None):
            return False
        try:
            number = float(text)
        except ValueError:
            return None
        return _number_verdict(number, rule)
    assert isinstance(value, (int, float))
    return _number_verdict(float(value), rule)


def _number_verdict(x: float, rule: PassRule) -> bool | None:
    if not math.isfinite(x):
        return None
    if rule.pass_threshold is not None:
        return x >= rule.pass_threshold
    if rule.numeric:
        return None
    if x == 1.0:
        return True
    if x == 0.0:
        return False
    return None


def numeric_value(value: object, rule: PassRule | None = None) -> tuple[float, bool] | None:
    """(value for estimation, is_binary): a verdict as 1.0/0.0 (binary), else a finite score
    (numeric judges without a threshold, undeclared numbers other than 0/1); None if neither.
    Undeclared 0/1 numbers read as scores here so a 0-1 score judge keeps its mean."""
    rule = rule or DEFAULT_RULE
    raw = _unwrap(value)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and rule.pass_threshold is None:
        x = float(raw)
        return (x, False) if math.isfinite(x) else None
    if isinstance(raw, str) and rule.pass_threshold is None:
        text = raw.strip().lower()
        if text not in PASS_WORDS and text not in FAIL_WORDS:
            try:
                x = float(text)
            except ValueError:
                return None
            return (x, False) if math.isfinite(x) else None
    v = verdict(raw, rule)
    return None if v is None else (1.0 if v else 0.0, True)
