"""Estimators: values, hand-computed post-stratified estimates, intervals, reports."""

from __future__ import annotations

import enum
import math

import pytest

from samplers import JudgedOutcome, PopulationCounts, estimate, outcome_value, wilson_interval
from samplers.estimators import OVERALL, satterthwaite_df, t_value, z_value

W = 3_600_000


class Rating(enum.StrEnum):  # like mlflow's CategoricalRating
    YES = "yes"
    NO = "no"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, (1.0, True)),
        (False, (0.0, True)),
        ("yes", (1.0, True)),
        ("No", (0.0, True)),
        (" PASS ", (1.0, True)),
        ("fail", (0.0, True)),
        ("true", (1.0, True)),
        (Rating.NO, (0.0, True)),
        (4, (4.0, False)),
        (0.25, (0.25, False)),
        ("3.5", (3.5, False)),
        (None, None),
        ("maybe", None),
        (float("nan"), None),
        ({"a": 1}, None),
    ],
)
def test_outcome_values(value: object, expected: tuple[float, bool] | None) -> None:
    assert outcome_value(value) == expected


def two_strata() -> tuple[PopulationCounts, list[JudgedOutcome]]:
    counts = PopulationCounts(W, "r")
    counts.register_rule("main", "stratified", ["q", "score"])
    counts.add(W, "main", "main/s=a", population=100, selected=10)
    counts.add(W, "main", "main/s=b", population=300, selected=20)
    outs = [
        JudgedOutcome(f"a{i}", "q", "main/s=a", i < 8, 0.1, W) for i in range(10)
    ] + [JudgedOutcome(f"b{i}", "q", "main/s=b", "yes" if i < 10 else "no", 20 / 300, W)
         for i in range(20)]  # fmt: skip
    return counts, outs


def test_hand_computed_post_stratified_estimate() -> None:
    counts, outs = two_strata()
    j = estimate(outs, counts, method="wilson_kish", smoothing=0).judge("q")
    var_a = (1 - 10 / 100) * (1.6 / 9) / 10
    var_b = (1 - 20 / 300) * (5 / 19) / 20
    assert j.metric == "pass_rate" and j.n_judged == 30 and j.population == 400
    assert j.estimate == pytest.approx(0.25 * 0.8 + 0.75 * 0.5)
    assert j.variance == pytest.approx(0.25**2 * var_a + 0.75**2 * var_b)
    n_eff = 0.575 * 0.425 / j.variance
    assert j.n_eff == pytest.approx(n_eff)
    # Korn-Graubard: n_eff shrunk by (z / t_df)^2, df by Satterthwaite over the two strata
    parts = [(0.25**2 * var_a, 10), (0.75**2 * var_b, 20)]
    df = sum(v for v, _ in parts) ** 2 / sum(v * v / (n - 1) for v, n in parts)
    assert satterthwaite_df(parts) == pytest.approx(df) and 20 < df < 29
    adjusted = n_eff * (z_value(0.95) / t_value(0.95, df)) ** 2
    assert (j.ci_low, j.ci_high) == pytest.approx(wilson_interval(0.575, adjusted, z_value(0.95)))
    assert j.method == "wilson_kish" and j.judged_share == 1.0
    a, b = j.strata
    assert (a.stratum, a.estimate, a.population_share) == ("main/s=a", 0.8, 0.25)
    assert a.variance == pytest.approx(var_a) and b.variance == pytest.approx(var_b)
    assert a.ci_low < 0.8 < a.ci_high


def test_variance_smoothing_only_matters_for_tiny_or_extreme_strata() -> None:
    counts, outs = two_strata()
    counts.add(W, "main", "main/s=one", population=50)
    outs.append(JudgedOutcome("one", "q", "main/s=one", True, 0.02, W))
    raw = {s.stratum: s for s in estimate(outs, counts, smoothing=0).judge("q").strata}
    smooth = {s.stratum: s for s in estimate(outs, counts).judge("q").strata}
    assert raw["main/s=one"].variance == 0 < smooth["main/s=one"].variance
    p = (1 + 2 * 19 / 31) / 3  # its own 1/1, shrunk toward the pooled 19/31 with k = 2
    assert smooth["main/s=one"].variance == pytest.approx(2 / 3 * (1 - 1 / 50) * p * (1 - p))
    b_raw, b_smooth = raw["main/s=b"].variance, smooth["main/s=b"].variance
    assert b_smooth == pytest.approx(b_raw, rel=0.1)


@pytest.mark.parametrize(("df", "t"), [(3, 3.182), (5, 2.571), (10, 2.228), (30, 2.042)])
def test_t_quantiles(df: int, t: float) -> None:
    assert t_value(0.95, df) == pytest.approx(t, rel=0.01)
    assert t_value(0.95, math.inf) == pytest.approx(1.95996, abs=1e-4)


def test_wilson_interval_formula() -> None:
    lo, hi = wilson_interval(0.5, 100, 1.96)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0.0, 10, 1.96)[0] == 0.0 and wilson_interval(0.0, 10, 1.96)[1] > 0.2


def test_without_windows_the_trace_probabilities_weight_the_stratum() -> None:
    counts = PopulationCounts(W, "r")
    counts.add(W, "main", "main/s=a", population=200)
    outs = [JudgedOutcome("x1", "q", "main/s=a", 1.0, 0.5),  # weight 2
            JudgedOutcome("x2", "q", "main/s=a", 0.0, 0.1)]  # weight 10  # fmt: skip
    j = estimate(outs, counts).judge("q")
    assert j.metric == "mean" and j.estimate == pytest.approx(2 / 12)
    assert j.method == "t" and j.ci_low < j.estimate < j.ci_high


def test_unjudged_dropped_unmatched_and_other_judges_strata() -> None:
    counts, outs = two_strata()
    counts.register_rule("drop-eval", "drop", [])
    counts.register_rule("<unmatched>", "unmatched", [])
    counts.register_rule("errors", "always", ["other"])
    counts.add(W, "main", "main/s=c", population=100)  # never judged
    counts.add(W, "drop-eval", "drop-eval", population=1000)
    counts.add(W, "<unmatched>", "<unmatched>", population=100)
    counts.add(W, "errors", "errors", population=50, selected=50)
    j = estimate(outs, counts, method="wilson_kish").judge("q")
    by = {s.stratum: s for s in j.strata}
    assert set(by) == {"main/s=a", "main/s=b", "main/s=c", "<unmatched>"}
    assert by["main/s=c"].estimate is None and by["main/s=c"].n_judged == 0
    assert by["main/s=c"].population_share == pytest.approx(100 / 600)
    assert j.population == 600 and j.judged_share == pytest.approx(400 / 600)
    assert j.estimate == pytest.approx(0.575)  # over the judged part
    s = 400 / 600
    assert j.bound_low == pytest.approx(j.ci_low * s)
    assert j.bound_high == pytest.approx(j.ci_high * s + 1 - s)
    with_drops = estimate(outs, counts, include_dropped=True).judge("q")
    assert with_drops.population == 1600
    stray = [*outs, JudgedOutcome("e1", "q", "errors", False, 1.0, W)]  # "errors" runs "other"
    j2 = estimate(stray, counts, method="wilson_kish").judge("q")
    assert j2.n_excluded == 1 and j2.estimate == pytest.approx(0.575)


def test_census_strata_have_no_sampling_error() -> None:
    counts = PopulationCounts(W, "r")
    counts.add(W, "errors", "errors", population=4, selected=4)
    outs = [JudgedOutcome(f"e{i}", "q", "errors", i != 0, 1.0, W) for i in range(4)]
    j = estimate(outs, counts).judge("q")
    assert (j.estimate, j.ci_low, j.ci_high, j.variance) == (0.75, 0.75, 0.75, 0.0)
    assert j.method == "census" and j.n_eff is None


def test_jeffreys_for_small_and_extreme_strata() -> None:
    counts = PopulationCounts(W, "r")
    counts.add(W, "main", "main/s=a", population=100)
    counts.add(W, "main", "main/s=z", population=100)
    outs = [JudgedOutcome(f"a{i}", "q", "main/s=a", True, 0.05, W) for i in range(5)]
    outs += [JudgedOutcome(f"z{i}", "q", "main/s=z", i < 2, 0.05, W) for i in range(5)]
    rep = estimate(outs, counts, method="auto", seed=1)
    j = rep.judge("q")
    a, z = j.strata
    assert a.method == "jeffreys" and a.estimate == 1.0 and a.ci_high == 1.0 and a.ci_low < 0.9
    assert z.method == "jeffreys" and z.ci_low < 0.4 < z.ci_high
    assert j.method == "wilson_kish" and j.ci_low < j.estimate < j.ci_high  # auto overall
    jj = estimate(outs, counts, method="jeffreys", seed=1).judge("q")
    assert jj.method == "jeffreys" and jj.ci_low < jj.estimate < jj.ci_high
    again = estimate(outs, counts, method="jeffreys", seed=1).judge("q")
    assert (again.ci_low, again.ci_high) == (jj.ci_low, jj.ci_high)  # seeded Monte Carlo


def test_duplicates_count_once_and_invalid_values_are_reported() -> None:
    counts, outs = two_strata()
    dup = [*outs, outs[0], JudgedOutcome("a9", "q", "main/s=a", "maybe", 0.1, W)]
    j = estimate(dup, counts, method="wilson_kish").judge("q")
    assert j.n_judged == 29 and j.n_invalid == 1  # a9's last verdict is unusable


def test_strata_missing_from_counts_get_a_horvitz_thompson_population() -> None:
    counts = PopulationCounts(W, "r")
    outs = [JudgedOutcome(f"x{i}", "q", "gone/s=x", i % 2 == 0, 0.25, W) for i in range(8)]
    j = estimate(outs, counts).judge("q")
    (s,) = j.strata
    assert s.population == pytest.approx(32) and s.population_source == "estimated"
    assert j.estimate == pytest.approx(0.5)


def test_report_dict_and_frame() -> None:
    counts, outs = two_strata()
    outs += [JudgedOutcome(f"s{i}", "score", "main/s=a", float(i % 5), 0.1, W) for i in range(10)]
    rep = estimate(outs, counts)
    d = rep.to_dict()
    assert [j["judge"] for j in d["judges"]] == ["q", "score"]
    q = d["judges"][0]
    for key in ("judge", "estimate", "ci_low", "ci_high", "n_judged", "population", "n_eff",
                "variance", "strata"):  # fmt: skip
        assert key in q
    assert set(q["strata"][0]) >= {"stratum", "estimate", "ci_low", "ci_high", "n_judged",
                                   "population", "population_share"}  # fmt: skip
    score = rep.judge("score")
    assert score.metric == "mean" and score.estimate == pytest.approx(2.0)
    assert {s.stratum: s.estimate for s in score.strata}["main/s=b"] is None
    df = rep.to_frame()
    assert len(df) == 2 + 2 + 2
    overall = df[(df.judge == "q") & (df.stratum == OVERALL)].iloc[0]
    assert overall.level == "overall" and overall.estimate == pytest.approx(0.575)
    assert math.isnan(df[(df.judge == "score") & (df.stratum == "main/s=b")].iloc[0].estimate)


def test_time_range_and_argument_checks() -> None:
    counts, outs = two_strata()
    counts.add(2 * W, "main", "main/s=a", population=100)
    assert estimate(outs, counts, start_ms=W, end_ms=2 * W).judge("q").population == 400
    assert estimate(outs, counts).judge("q").population == 500
    assert estimate(outs, counts, start_ms=2 * W).judges == []
    with pytest.raises(ValueError, match="method"):
        estimate(outs, counts, method="wald")
    with pytest.raises(ValueError, match="confidence"):
        estimate(outs, counts, confidence=95)


def test_partly_judged_census_stratum_gets_an_interval_not_zero_width() -> None:
    """Issue 9: '33.3% [33.3%, 33.3%] 3/5' claimed certainty about 2 unjudged traces."""
    counts = PopulationCounts(3_600_000, "t")
    counts.add(0, "keep", "keep", population=5, selected=5)
    counts.register_rule("keep", "always", ["q"])
    outs = [JudgedOutcome(f"t{i}", "q", "keep", v, 1.0, 0) for i, v in enumerate("ynn")]
    s = estimate(outs, counts).judge("q").strata[0]
    assert s.estimate == pytest.approx(1 / 3) and s.method != "census"
    assert s.ci_low < 1 / 3 < s.ci_high and s.ci_high - s.ci_low > 0.2
    full = [*outs, JudgedOutcome("t3", "q", "keep", "n", 1.0, 0),
            JudgedOutcome("t4", "q", "keep", "y", 1.0, 0)]  # fmt: skip
    s = estimate(full, counts).judge("q").strata[0]
    assert (s.ci_low, s.ci_high, s.method) == (0.4, 0.4, "census")  # all 5 judged: exact


def test_small_sample_quantiles_are_exact() -> None:
    assert t_value(0.95, 1) == pytest.approx(12.7062, rel=1e-5)  # n = 2 (was 3.18)
    assert t_value(0.95, 2) == pytest.approx(4.30265, rel=1e-5)
    from samplers.estimators import beta_interval

    lo, hi = beta_interval(2.5, 8.5, 0.95)  # Jeffreys, 2 of 10
    assert (lo, hi) == (pytest.approx(0.0441, abs=1e-4), pytest.approx(0.5027, abs=1e-4))
