"""One verdict vocabulary: every value type reads the same pass/fail in the list badge, the
verdict chip, the judge runner, the report (estimate and agreement) and the review sample."""

from __future__ import annotations

import enum
from types import SimpleNamespace

import pytest

from samplers import (
    HumanLabel,
    JudgedOutcome,
    PassRule,
    PopulationCounts,
    agreement,
    corrected_estimates,
    estimate,
    verdict,
)
from samplers.outcomes import outcome_value
from trace_tui.core.model import Assessment
from trace_tui.core.render import assessment_summary, is_pass
from trace_tui.judging.run import _verdict_from_feedback
from trace_tui.tui.widgets.span_detail import FAIL_CHIP, PASS_CHIP, verdict_chip


class Rating(enum.StrEnum):  # like mlflow's CategoricalRating
    YES = "yes"
    NO = "no"


VALUES: list[tuple[object, PassRule | None, bool | None]] = [
    (True, None, True), (False, None, False),
    ("yes", None, True), ("no", None, False), ("Pass", None, True), ("fail", None, False),
    ("passed", None, True), ("failed", None, False), ("good", None, True), ("bad", None, False),
    ("ok", None, True), ("y", None, True), ("n", None, False), (" TRUE ", None, True),
    (Rating.YES, None, True), (Rating.NO, None, False),
    (1, None, True), (0, None, False), (1.0, None, True), ("0", None, False),
    (0.9, None, None), ("0.9", None, None), (None, None, None), ("unknown", None, None),
    (float("nan"), None, None),
    (0.9, PassRule("float", 0.7), True), (0.5, PassRule("float", 0.7), False),
    (4, PassRule("int", 3), True), ("2", PassRule("int", 3), False), (0.9, PassRule("float"), None),
]


@pytest.mark.parametrize(("value", "rule", "expected"), VALUES)
def test_every_reader_agrees(value: object, rule: PassRule | None, expected: bool | None) -> None:
    assert verdict(value, rule) is expected
    assert is_pass(value, rule) is expected
    # the judge runner, given the same declaration
    spec = SimpleNamespace(feedback_value_type=rule.value_type if rule else None,
                           pass_threshold=rule.pass_threshold if rule else None)
    ran = _verdict_from_feedback("j", SimpleNamespace(value=value, error=None, rationale=None,
                                                      metadata={}), spec, str, 0.0)
    if rule is None or rule.value_type is None:
        assert ran.passed is expected
    if rule is None:
        # the list badge and the verdict chip (no declaration known there)
        shown = value.value if isinstance(value, enum.Enum) else value
        a = Assessment("a", "j", "LLM_JUDGE", "s", shown)
        badge = assessment_summary([a])
        _, style = verdict_chip(a)
        if expected is None:
            assert badge == "" and style not in (PASS_CHIP, FAIL_CHIP)
        else:
            assert badge == f"J{int(expected)}/1"
            assert style == (PASS_CHIP if expected else FAIL_CHIP)
    # the report: estimate and agreement read the judge value the same way
    counts = PopulationCounts(3_600_000, "r")
    counts.register_rule("all", "stratified", ["j"])
    counts.add(0, "all", "s", population=10, selected=2)
    judged = [JudgedOutcome("t1", "j", "s", value, 0.2, 0),
              JudgedOutcome("t2", "j", "s", True, 0.2, 0)]
    rules = {"j": rule} if rule else None
    rep = estimate(judged, counts, rules=rules).judges[0]
    if expected is not None:
        assert outcome_value(value, rule)[0] == float(expected)  # type: ignore[index]
        assert rep.estimate == pytest.approx((float(expected) + 1) / 2)
    # review: the same value as a human label on t1 (the judge says pass there)
    labels = [HumanLabel("t1", "j", value, 1.0), HumanLabel("t2", "j", True, 1.0)]
    [agree] = agreement(
        [JudgedOutcome("t1", "j", "s", True, 0.2, 0), judged[1]], labels, counts, rules=rules)
    c = agree.overall.confusion
    if expected is None:
        assert agree.overall.n_reviewed == 1  # the unreadable label is not a pair
    else:
        assert (c["tp"], c["fp"]) == ((2, 0) if expected else (1, 1))
    corrected_estimates(judged, labels, counts, rules=rules)  # reads without error
