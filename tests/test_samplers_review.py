"""Human review: the one verdict vocabulary, the [review] draw, agreement (exact on
constructed cases) and the corrected (PPI++) estimate by simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import samplers
from samplers import JudgedOutcome, PolicyError, PopulationCounts, estimate, parse_policy
from samplers.agreements import agreement, kappa_of
from samplers.corrected import COLLAPSED, HumanLabel, corrected_estimates
from samplers.review import review_decision, review_rate
from samplers.schema import Review
from samplers.verdicts import PassRule, verdict
from tests.samplers_fixtures.judge_errors import HOUR, T0, draw, population

FLOAT = PassRule("float", 0.7)
INT_NO_THRESHOLD = PassRule("int")


@pytest.mark.parametrize(
    ("value", "rule", "expected"),
    [
        (True, None, True), (False, None, False),
        ("yes", None, True), (" Passed ", None, True), ("ok", None, True), ("y", None, True),
        ("good", None, True), ("correct", None, True), ("no", None, False),
        ("failed", None, False), ("bad", None, False), ("N", None, False),
        ("unknown", None, None), ("", None, None), (None, None, None),
        (1, None, True), (0, None, False), (0.5, None, None), (0.99, None, None),
        ("1", None, True), ("0.0", None, False), (float("nan"), None, None),
        (0.7, FLOAT, True), (0.69, FLOAT, False), ("0.8", FLOAT, True), ("yes", FLOAT, None),
        (5, INT_NO_THRESHOLD, None), (1, INT_NO_THRESHOLD, None), ("yes", PassRule("yes_no"), True),
    ],
)  # fmt: skip
def test_one_verdict_for_every_value_type(value: object, rule: PassRule, expected: object) -> None:
    assert verdict(value, rule) is expected


def test_verdict_unwraps_categorical_ratings() -> None:
    class Rating:
        value = "yes"

    assert verdict(Rating()) is True


def test_review_rate_from_fraction_count_and_minimum() -> None:
    assert review_rate(Review(), 100) == 0.0  # off by default
    assert review_rate(Review(fraction=0.1), 100) == pytest.approx(0.1)
    assert review_rate(Review(fraction=0.1, count=5), 100) == pytest.approx(0.05)
    assert review_rate(Review(count=5), 100) == pytest.approx(0.05)
    assert review_rate(Review(fraction=0.1), 10) == pytest.approx(0.2)  # min_per_stratum 2
    assert review_rate(Review(fraction=0.1), 1) == 1.0
    assert review_rate(Review(fraction=0.1), 0) == 0.0


def test_review_decision_is_deterministic_salted_and_bernoulli() -> None:
    review = Review(fraction=0.25)
    ids = [f"tr-{i:032x}" for i in range(4000)]
    picks = [review_decision(t, "s", 400, review) for t in ids]
    assert picks == [review_decision(t, "s", 400, review) for t in ids]
    share = np.mean([d.selected for d in picks])
    assert abs(share - 0.25) < 3 * math.sqrt(0.25 * 0.75 / 4000)
    assert len({d.probability for d in picks}) == 1 and picks[0].probability == pytest.approx(0.25)
    other = [review_decision(t, "s", 400, Review(fraction=0.25, salt="x")) for t in ids]
    both = np.mean([a.selected and b.selected for a, b in zip(picks, other, strict=True)])
    assert abs(both - 0.0625) < 0.02  # independent salts: independent draws
    higher = [review_decision(t, "s", 400, Review(fraction=0.5)) for t in ids]
    assert all(h.selected for p, h in zip(picks, higher, strict=True) if p.selected)  # nested
    assert not review_decision(ids[0], "s", 400, Review(fraction=1.0, judges=["a"]), "b").selected


def test_review_section_is_validated() -> None:
    base = '[[judge]]\nname = "q"\nscorer = "builtin:Safety"\n[[policy]]\nname = "all"\n' \
           'type = "always"\n'  # fmt: skip
    policy = parse_policy('[review]\nfraction = 0.1\ncount = 20\n' + base)
    assert policy.review == Review(fraction=0.1, count=20)
    with pytest.raises(PolicyError, match=r"review\.fraction"):
        parse_policy("[review]\nfraction = 2\n" + base)
    with pytest.raises(PolicyError, match=r"review\.salt.*independent"):
        parse_policy('[randomness]\nsalt = "s"\n[review]\nsalt = "s"\n' + base)
    with pytest.raises(PolicyError, match=r"review\.judges\[0\].*expected one of q"):
        parse_policy('[review]\njudges = ["nope"]\n' + base)


# --------------------------------------------------------------------------- agreement


def _constructed(cells: dict[str, int], stratum: str = "main/s=a", pi: float = 0.1,
                 r: float = 0.5, start: int = 0) -> tuple[list, list]:  # fmt: skip
    """Judged outcomes + human labels with the given confusion counts (tp, fp, fn, tn)."""
    pairs = {"tp": (True, True), "fp": (True, False), "fn": (False, True), "tn": (False, False)}
    judged, labels = [], []
    i = start
    for cell, n in cells.items():
        jv, hv = pairs[cell]
        for _ in range(n):
            tid = f"tr-{i:032x}"
            judged.append(JudgedOutcome(tid, "q", stratum, "yes" if jv else "no", pi, T0))
            labels.append(HumanLabel(tid, "q", hv, r))
            i += 1
    return judged, labels


def _counts(pops: dict[str, int]) -> PopulationCounts:
    counts = PopulationCounts(HOUR, "t")
    for stratum, n in pops.items():
        counts.add(T0, "main", stratum, population=n, selected=n // 10)
    counts.register_rule("main", "stratified", ["q"])
    return counts


def test_confusion_accuracy_rates_and_kappa_are_exact() -> None:
    judged, labels = _constructed({"tp": 20, "fp": 5, "fn": 10, "tn": 15})
    (a,) = agreement(judged, labels, _counts({"main/s=a": 5000}))
    s = a.strata[0]
    assert s.confusion == {"tp": 20, "fp": 5, "fn": 10, "tn": 15} and s.n_reviewed == 50
    assert s.accuracy.estimate == pytest.approx(0.7)
    assert s.true_pass_rate.estimate == pytest.approx(20 / 30)
    assert s.true_fail_rate.estimate == pytest.approx(15 / 20)
    # po = 0.7, pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 -> kappa = 0.4
    assert s.kappa.estimate == pytest.approx(0.4)
    # Fleiss-Cohen-Everitt large-sample variance (the delta method, with n/(n-1), fpc 0.99)
    po, pe, n = 0.7, 0.5, 50
    p = np.array([20, 5, 10, 15]) / 50
    pj, ph = p[0] + p[1], p[0] + p[2]
    fce = (
        (p[0] * ((1 - pe) - (pj + ph) * (1 - po)) ** 2
         + p[3] * ((1 - pe) - (2 - pj - ph) * (1 - po)) ** 2
         + (1 - po) ** 2 * (p[1] * (ph + 1 - pj) ** 2 + p[2] * (pj + 1 - ph) ** 2)
         - (po * pe - 2 * pe + po) ** 2) / (n * (1 - pe) ** 4)
    )  # fmt: skip
    assert s.kappa.variance == pytest.approx(fce * n / (n - 1) * (1 - 50 / 5000), rel=1e-9)
    assert s.kappa.ci_low < 0.4 < s.kappa.ci_high
    assert a.overall.confusion == s.confusion
    assert a.overall.kappa.estimate == pytest.approx(0.4)


def test_overall_agreement_is_population_weighted_and_counts_are_raw() -> None:
    j1, l1 = _constructed({"tp": 10, "tn": 10}, "main/s=a")  # perfect agreement
    j2, l2 = _constructed({"tp": 5, "fp": 5, "fn": 5, "tn": 5}, "main/s=b", start=100)  # chance
    (a,) = agreement(j1 + j2, l1 + l2, _counts({"main/s=a": 3000, "main/s=b": 1000}))
    assert a.overall.confusion == {"tp": 15, "fp": 5, "fn": 5, "tn": 15}
    assert a.overall.accuracy.estimate == pytest.approx(0.75 * 1 + 0.25 * 0.5)
    assert [s.kappa.estimate for s in a.strata] == [pytest.approx(1.0), pytest.approx(0.0)]
    assert kappa_of(np.array([1.0, 0, 0, 0])) is None  # everyone passes: undefined


# --------------------------------------------------------------------------- corrected


def test_corrected_on_constructed_data_hand_computed() -> None:
    """One stratum, judge too lenient: corrected = human mean + lambda (judge mean over the
    judged sample - judge mean over the reviewed)."""
    judged, labels = _constructed({"tp": 20, "fp": 10, "fn": 0, "tn": 10})
    extra = [JudgedOutcome(f"tr-{1000 + i:032x}", "q", "main/s=a", "yes", 0.1, T0)
             for i in range(40)]  # fmt: skip
    (c,) = corrected_estimates(judged + extra, labels, _counts({"main/s=a": 800}))
    assert c.n_reviewed == 40 and c.n_judged == 80
    human_mean, judge_reviewed, judge_all = 20 / 40, 30 / 40, 70 / 80
    assert c.human_only.estimate == pytest.approx(human_mean)
    lam = c.power
    assert lam is not None and 0 <= lam <= 1
    assert c.corrected.estimate == pytest.approx(human_mean + lam * (judge_all - judge_reviewed))
    assert c.judge_only.estimate == pytest.approx(judge_all)
    entry = c.report_entry()
    assert set(entry["corrected"]) == {"estimate", "ci_low", "ci_high", "n_reviewed"}
    no_tuning = corrected_estimates(judged + extra, labels, _counts({"main/s=a": 800}),
                                    power_tuning=False)[0]  # fmt: skip
    assert no_tuning.power == 1.0
    assert no_tuning.corrected.estimate == pytest.approx(0.5 + 0.875 - 0.75)


def test_strata_with_too_few_reviews_share_one_correction() -> None:
    j1, l1 = _constructed({"tp": 10, "fp": 2, "tn": 8}, "main/s=a")
    j2, l2 = _constructed({"tp": 1}, "main/s=b", start=100)
    j3, l3 = _constructed({"fp": 1}, "main/s=c", start=200)
    counts = _counts({"main/s=a": 400, "main/s=b": 50, "main/s=c": 50})
    (c,) = corrected_estimates(j1 + j2 + j3, l1 + l2 + l3, counts)
    groups = {s.stratum: s.group for s in c.strata}
    assert groups == {"main/s=a": "main/s=a", "main/s=b": COLLAPSED, "main/s=c": COLLAPSED}
    assert c.corrected.ci_low is not None and any(COLLAPSED in n for n in c.notes)
    (none,) = corrected_estimates(j2, l2, _counts({"main/s=b": 50}))
    assert none.corrected.estimate is None and none.notes  # one review: no corrected estimate


def test_corrected_interval_covers_where_the_judge_only_one_does_not() -> None:
    """A judge that passes 25% of the bad traces of one stratum and fails 5% of the good ones
    of another; 500 repetitions of the judged sample (~820) and its 15% review (~110)."""
    pop = population(1)
    truth = pop.truth
    reps = 500
    res: dict[str, list[tuple[float, float, float]]] = {"judge": [], "human": [], "corr": []}
    for rep in range(reps):
        judged, labels, counts = draw(pop, np.random.default_rng(100 + rep), Review(fraction=0.15))
        c = corrected_estimates(judged, labels, counts, method="wilson_kish")[0]
        for key, iv in (("judge", c.judge_only), ("human", c.human_only), ("corr", c.corrected)):
            res[key].append((iv.estimate, iv.ci_low, iv.ci_high))  # type: ignore[arg-type]
    arr = {k: np.array(v) for k, v in res.items()}
    cover = {k: float(np.mean((a[:, 1] <= truth) & (truth <= a[:, 2]))) for k, a in arr.items()}
    width = {k: float(np.mean(a[:, 2] - a[:, 1])) for k, a in arr.items()}
    assert 0.93 <= cover["corr"] <= 0.97, cover
    assert cover["judge"] < 0.75, cover  # the judge is biased: its interval misses the truth
    assert width["corr"] < 0.8 * width["human"], width  # same human labels, narrower
    est = arr["corr"][:, 0]
    assert abs(est.mean() - truth) < 3 * est.std() / math.sqrt(reps)  # unbiased


def test_hashed_review_draw_gives_the_same_design() -> None:
    pop = population(1)
    judged, labels, counts = draw(pop, np.random.default_rng(7), Review(fraction=0.15),
                                  hashed=True)  # fmt: skip
    c = corrected_estimates(judged, labels, counts)[0]
    assert 0.1 * c.n_judged < c.n_reviewed < 0.2 * c.n_judged
    assert c.corrected.ci_low < pop.truth < c.corrected.ci_high  # type: ignore[operator]
    assert estimate(judged, counts).judge("q").n_judged == c.n_judged


def test_end_to_end_sampler_review_and_estimates() -> None:
    """Sampler decisions -> review draw from the cell's selected count -> labels -> the three
    estimates and agreement, through the public API only."""
    import random

    from samplers import Sampler
    from tests.samplers_fixtures import record

    policy = parse_policy(
        '[budget]\nwindow = "1h"\nmax_traces = 400\npacing = "none"\n'
        '[review]\nfraction = 0.3\n[[judge]]\nname = "q"\nscorer = "builtin:Safety"\n'
        '[[policy]]\nname = "main"\ntype = "stratified"\nkey_fields = ["tags.s"]\n'
        'allocation = "proportional"\nnew_key_rate = 0.4\n'
    )
    rng = random.Random(3)
    sampler = Sampler(policy)
    truth: dict[str, tuple[bool, bool]] = {}  # id -> (human, judge)
    decisions = []
    for i in range(1000):
        s = "ab"[i % 2]
        rec = record(rng, ts=T0 + i, tags={"s": s})
        human = rng.random() < (0.9 if s == "a" else 0.6)
        judge = human or rng.random() < 0.3  # lenient: passes 30% of the bad ones
        truth[rec.trace_id] = (human, judge)
        decisions.append(sampler.decide(rec))
    cells = {(c.window_start_ms, c.stratum): c.selected for c in sampler.counts.cells()}
    judged, labels = [], []
    for d in decisions:
        if not d.selected:
            continue
        human, judge = truth[d.trace_id]
        judged.append(JudgedOutcome(d.trace_id, "q", d.stratum, judge, d.judges["q"],
                                    d.window_start_ms))  # fmt: skip
        rd = review_decision(d.trace_id, d.stratum, cells[(d.window_start_ms, d.stratum)],
                             policy.review)  # fmt: skip
        if rd.selected:
            labels.append(HumanLabel(d.trace_id, "q", "pass" if human else "fail",
                                     rd.probability))  # fmt: skip
    (c,) = corrected_estimates(judged, labels, sampler.counts)
    assert 0.2 * c.n_judged < c.n_reviewed < 0.4 * c.n_judged
    assert c.judge_only.estimate > c.corrected.estimate  # type: ignore[operator]
    (a,) = agreement(judged, labels, sampler.counts)
    assert a.overall.n_reviewed == c.n_reviewed and a.overall.confusion["fn"] == 0
    assert a.overall.true_fail_rate.estimate < 0.9  # type: ignore[operator]


def test_review_entries_add_corrected_and_agreement_per_judge() -> None:
    judged, labels = _constructed({"tp": 20, "fp": 5, "fn": 10, "tn": 15})
    entries = samplers.review_entries(judged, labels, _counts({"main/s=a": 5000}))
    q = entries["q"]
    assert set(q["corrected"]) == {"estimate", "ci_low", "ci_high", "n_reviewed"}
    assert q["corrected"]["n_reviewed"] == 50
    assert q["agreement"]["overall"]["confusion"] == {"tp": 20, "fp": 5, "fn": 10, "tn": 15}
    json.dumps(entries)  # a report writes them as JSON
