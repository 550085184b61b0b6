"""Sampler decisions: rules, windows, new strata, budgets, replicas, save/restore."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter, defaultdict

import pytest

from samplers import (
    UNMATCHED,
    Decision,
    PopulationCounts,
    Randomness,
    Sampler,
    TraceRecord,
    parse_policy,
)
from tests.samplers_fixtures import (
    HOUR,
    T0,
    record,
    stratified_policy,
    stream,
)
from tests.samplers_fixtures import reference_randomness as randomness_function

RULES = """
name = "rules"
[budget]
window = "1h"
[[judge]]
name = "q"
scorer = "builtin:Safety"
[[policy]]
name = "drop-eval"
type = "drop"
conditions = [{ field = "metadata.`mlflow.sourceRun`", op = "exists" }]
[[policy]]
name = "errors"
type = "always"
conditions = [{ field = "status", op = "=", value = "ERROR" }]
[[policy]]
name = "vip"
type = "probabilistic"
conditions = [{ field = "tags.tier", op = "=", value = "vip" }]
rate = 0.25
"""


def no_clock() -> float:
    raise AssertionError("decisions must use the record's timestamp, not the clock")


def run(sampler: Sampler, records: list[TraceRecord]) -> list[Decision]:
    return [sampler.decide(r) for r in records]


def by_window(records: list[TraceRecord], window_ms: int = HOUR) -> list[list[TraceRecord]]:
    out: dict[int, list[TraceRecord]] = defaultdict(list)
    for r in records:
        out[r.timestamp_ms - r.timestamp_ms % window_ms].append(r)
    return [out[w] for w in sorted(out)]


def test_first_matching_rule_decides_and_decisions_are_complete() -> None:
    s = Sampler(parse_policy(RULES), clock=no_clock)
    rng = random.Random(0)
    d_drop = s.decide(record(rng, status="ERROR", metadata={"mlflow.sourceRun": "r"}))
    d_err = s.decide(record(rng, status="ERROR", ts=T0 + 5))
    d_none = s.decide(record(rng, tags={"tier": "free"}))
    assert (d_drop.rule, d_drop.selected, d_drop.probability, d_drop.weight) == (
        "drop-eval",
        False,
        0.0,
        0.0,
    )
    assert d_drop.reason == "drop" and d_drop.stratum == "drop-eval"
    assert (d_err.rule, d_err.selected, d_err.probability, d_err.weight) == ("errors", True, 1, 1)
    assert d_err.reason == "always" and dict(d_err.judges) == {"q": 1.0}
    assert d_err.window_start_ms == T0 and d_err.policy_version.startswith("rules@1#")
    assert (d_none.rule, d_none.stratum, d_none.reason) == (UNMATCHED, UNMATCHED, "unmatched")
    assert not d_none.selected and d_none.judges == {}
    assert d_err.to_dict()["judges"] == {"q": 1.0}
    with pytest.raises(AttributeError):
        d_err.selected = False  # type: ignore[misc]


def test_probabilistic_rule_rate_weight_and_determinism() -> None:
    policy = parse_policy(RULES)
    rng = random.Random(1)
    recs = [record(rng, tags={"tier": "vip"}, ts=T0 + i) for i in range(20_000)]
    a, b = run(Sampler(policy), recs), Sampler(policy).decide_many(recs)
    assert a == b
    share = sum(d.selected for d in a) / len(a)
    assert abs(share - 0.25) < 4 * (0.25 * 0.75 / len(a)) ** 0.5
    assert all(d.probability == pytest.approx(0.25) and d.weight == pytest.approx(4) for d in a)
    r = randomness_function()
    assert all(d.selected == (r(d.trace_id) >= 0.75 * 2**56) for d in a)


def test_windows_come_from_record_timestamps() -> None:
    s = Sampler(parse_policy(RULES), clock=no_clock)
    rng = random.Random(2)
    d1 = s.decide(record(rng, status="ERROR", ts=T0 + HOUR - 1))
    d2 = s.decide(record(rng, status="ERROR", ts=T0 + HOUR))
    d3 = s.decide(record(rng, status="ERROR", ts=T0 + 10))  # late record: its own window
    assert (d1.window_start_ms, d2.window_start_ms, d3.window_start_ms) == (T0, T0 + HOUR, T0)
    assert s.counts.totals()[(T0, "errors")] == (2, 2, 0)


def test_new_strata_are_sampled_at_once_then_planned() -> None:
    policy = stratified_policy(max_traces=40, extra_budget='pacing = "none"')
    recs = stream({"a": 300, "b": 100}, windows=2, seed=3)
    late = [record(random.Random(4), ts=T0 + HOUR + 10 + i, tags={"s": "new"}) for i in range(3)]
    s = Sampler(policy)
    first, second = by_window(recs)
    d1 = run(s, first)
    assert d1[0].reason == "new_stratum" and d1[0].probability == 1.0
    d2 = run(s, second[:50]) + run(s, late) + run(s, second[50:])
    planned = {d.stratum: d.probability for d in d2 if d.stratum != "main/s=new"}
    assert set(planned) == {"main/s=a", "main/s=b"}
    assert all(p < 1 for p in planned.values())
    new = [d for d in d2 if d.stratum == "main/s=new"]
    assert [d.reason for d in new] == ["new_stratum"] * 3 and all(d.selected for d in new)
    assert s.plan(T0 + 2 * HOUR).rate("main/s=new") is not None  # planned from then on


def test_known_rates_apply_to_strata_not_yet_in_the_plan() -> None:
    fixed = stratified_policy(
        allocation="fixed", extra_rule='rate = 0.2\nstrata = { "s=b" = { rate = 0.7 } }'
    )
    adaptive = stratified_policy(extra_rule='strata = { "s=b" = { rate = 0.7 } }')
    rng = random.Random(16)
    a, b = (record(rng, tags={"s": s}) for s in "ab")
    assert [Sampler(fixed).decide(r).probability for r in (a, b)] == pytest.approx([0.2, 0.7])
    d_a, d_b = (Sampler(adaptive).decide(r) for r in (a, b))
    assert (d_a.probability, d_a.reason) == (1.0, "new_stratum")
    assert d_b.probability == pytest.approx(0.7) and d_b.reason != "new_stratum"


def test_replica_id_must_match_given_counts() -> None:
    counts = PopulationCounts(HOUR, "a")
    assert Sampler(stratified_policy(), counts=counts, replica_id="a").counts is counts
    with pytest.raises(ValueError, match="replica_id"):
        Sampler(stratified_policy(), counts=counts, replica_id="b")


def test_outcomes_only_change_later_windows() -> None:
    policy = stratified_policy(max_traces=60, extra_budget='pacing = "none"')
    recs = stream({"a": 400, "b": 400}, windows=3, seed=5)
    w1, w2, w3 = by_window(recs)
    s = Sampler(policy)
    run(s, w1)
    d2 = run(s, w2)
    plan2 = s.plan(T0 + HOUR)
    before = {k: v.rate for k, v in plan2.strata.items()}
    coin = random.Random(0)
    for d in d2:
        if d.selected:  # stratum a always passes, b is a coin flip
            s.observe_outcome(d, "q", d.stratum == "main/s=a" or coin.random() < 0.5)
    assert {k: v.rate for k, v in s.plan(T0 + HOUR).strata.items()} == before
    plan3 = s.plan(T0 + 2 * HOUR)
    assert plan3.rate("main/s=b") > 2 * plan3.rate("main/s=a")  # Neyman moved budget to b
    assert plan3.strata["main/s=a"].std < plan3.strata["main/s=b"].std
    assert plan3.rate("main/s=a") > 0  # the shrunk prior keeps the 100% stratum sampled
    assert all(d.window_start_ms == T0 + 2 * HOUR for d in run(s, w3))


def test_observe_outcome_accepts_strings_and_ignores_garbage() -> None:
    s = Sampler(stratified_policy())
    d = s.decide(record(random.Random(0), tags={"s": "a"}))
    assert s.observe_outcome(d, "q", "yes") and s.observe_outcome(d, "q", "FAIL")
    assert s.observe_outcome(d.stratum, "q", 0.5, window_start_ms=d.window_start_ms)
    assert not s.observe_outcome(d, "q", None) and not s.observe_outcome(d, "q", "maybe")
    m = s.counts.outcome_moments()[(d.stratum, "q")]
    assert (m.n, m.total) == (3, 1.5)


def replay_single(policy, windows, seed_counts, outcome):
    s = Sampler(policy, counts=seed_counts.copy(replica_id="single"))
    out = {}
    for recs in windows:
        for d in run(s, recs):
            out[d.trace_id] = d
            if d.selected:
                s.observe_outcome(d, "q", outcome(d))
    return s, out


def test_replicas_on_disjoint_halves_agree_with_one_sampler_and_counts_merge_exactly() -> None:
    policy = stratified_policy(
        max_traces=120, extra_budget='pacing = "none"\nheadroom = 0.3', randomness=""
    )
    recs = stream({"a": 900, "b": 300, "c": 60, "d": 8}, windows=4, seed=6)
    recs += [record(random.Random(7), ts=T0 + 2 * HOUR + i, tags={"s": "late"}) for i in range(5)]
    recs.sort(key=lambda r: r.timestamp_ms)
    windows = by_window(recs)
    seed = PopulationCounts(HOUR, "seed")  # shared history, e.g. restored from a snapshot
    for name, n in {"a": 900, "b": 300, "c": 60, "d": 8}.items():
        seed.add(T0 - HOUR, "main", f"main/s={name}", population=n)

    def outcome(d: Decision) -> bool:
        return int(d.trace_id[-2:], 16) % (2 if d.stratum == "main/s=b" else 10) != 0

    single, expected = replay_single(policy, windows, seed, outcome)

    a = Sampler(policy, counts=seed.copy(replica_id="A"))
    b = Sampler(policy, counts=seed.copy(replica_id="B"))
    got: dict[str, Decision] = {}
    for recs_w in windows:
        for rec in recs_w:  # disjoint halves, interleaved
            replica = a if int(rec.trace_id[3:5], 16) % 2 else b
            d = replica.decide(rec)
            got[d.trace_id] = d
            if d.selected:
                replica.observe_outcome(d, "q", outcome(d))
        a.counts.merge(b.counts)  # exchange snapshots between windows
        b.counts.merge(a.counts)
    assert got == expected
    assert sum(d.reason in ("budget", "pacing") for d in got.values()) == 0
    assert sum(d.selected for d in got.values()) > 200
    assert a.counts.totals() == b.counts.totals() == single.counts.totals()
    assert a.counts.outcome_moments() == single.counts.outcome_moments()
    # merging again (or in the other order) changes nothing
    before = a.counts.totals()
    a.counts.merge(b.counts).merge(b.counts)
    assert a.counts.totals() == before
    c = PopulationCounts.from_dict(b.counts.to_dict()).merge(a.counts)
    assert c.totals() == before


def test_save_and_restore_mid_window_continues_identically() -> None:
    policy = stratified_policy(max_traces=50, extra_budget="burst = 0.1")
    recs = stream({"a": 500, "b": 120, "c": 10}, windows=3, seed=8)
    uninterrupted = run(Sampler(policy, replica_id="r1"), recs)
    cut = len(recs) // 2 + 7  # in the middle of the second window
    first = Sampler(policy, replica_id="r1")
    part1 = run(first, recs[:cut])
    snapshot = json.loads(json.dumps(first.counts.to_dict()))
    restarted = Sampler(policy, counts=PopulationCounts.from_dict(snapshot))
    part2 = run(restarted, recs[cut:])
    assert part1 + part2 == uninterrupted
    assert any(d.reason == "pacing" for d in uninterrupted)  # the guard state was restored too


def spend_by_window(decisions: list[Decision], recs: list[TraceRecord], per_trace) -> Counter:
    spent: Counter = Counter()
    for d, r in zip(decisions, recs, strict=True):
        if d.selected:
            spent[d.window_start_ms] += per_trace(d, r)
    return spent


def bursty_stream(seed: int) -> list[TraceRecord]:
    rng = random.Random(seed)
    recs = stream({"a": 400, "b": 150, "c": 20}, windows=6, seed=seed)
    # a burst of a brand-new stratum in the first minute of window 3 and a flood in window 5
    recs += [
        record(rng, ts=T0 + 3 * HOUR + rng.randrange(60_000), tags={"s": "burst"},
               total_tokens=rng.randrange(5000))
        for _ in range(800)
    ]  # fmt: skip
    recs += [
        record(rng, ts=T0 + 5 * HOUR + rng.randrange(HOUR), tags={"s": "a"}) for _ in range(3000)
    ]
    return sorted(recs, key=lambda r: r.timestamp_ms)


@pytest.mark.parametrize("pacing", ["even", "none"])
def test_budget_is_never_exceeded(pacing: str) -> None:
    judges = """
[[judge]]
name = "cheap"
scorer = "builtin:Safety"
usd_per_1k_tokens = 0.001
trace_token_factor = 0.5
[[judge]]
name = "deep"
scorer = "make_judge"
instructions = "Judge {{ trace }}"
usd_per_1k_tokens = 0.002
sample_fraction = 0.3
"""
    policy = stratified_policy(
        max_traces=80,
        extra_budget=f'max_tokens = 150000\nmax_usd = 0.25\npacing = "{pacing}"',
        judges=judges,
    )
    recs = bursty_stream(9)
    decisions = run(Sampler(policy), recs)

    def tokens(d: Decision, r: TraceRecord) -> float:
        return sum(policy.judge(j).tokens_for(r.total_tokens) for j in d.judges)

    def usd(d: Decision, r: TraceRecord) -> float:
        return sum(policy.judge(j).usd_for(r.total_tokens) for j in d.judges)

    traces = spend_by_window(decisions, recs, lambda d, r: 1)
    assert max(traces.values()) <= 80
    assert max(spend_by_window(decisions, recs, tokens).values()) <= 150_000
    assert max(spend_by_window(decisions, recs, usd).values()) <= 0.25 + 1e-12
    assert sum(d.reason in ("budget", "pacing") for d in decisions) > 0  # the guard was needed
    assert sum(traces.values()) > 6 * 80 * 0.5  # and the budget is used, not starved
    deep_runs = [d for d in decisions if "deep" in d.judges]
    assert all(d.judges["deep"] == pytest.approx(0.3 * d.judges["cheap"]) for d in deep_runs)
    assert 0 < len(deep_runs) < sum(d.selected for d in decisions)
    if pacing == "even":  # never ahead of the pacing line
        for w in {d.window_start_ms for d in decisions}:
            sel = sorted(
                r.timestamp_ms - w
                for d, r in zip(decisions, recs, strict=True)
                if d.selected and d.window_start_ms == w
            )
            for k, off in enumerate(sel, start=1):
                assert k <= 80 * min(1.0, off / HOUR + 0.25) + 1e-9


def test_replicas_each_guard_their_share() -> None:
    policy = stratified_policy(max_traces=40, extra_budget="replicas = 2")
    recs = bursty_stream(10)
    s = Sampler(policy)
    decisions = run(s, recs)
    assert max(spend_by_window(decisions, recs, lambda d, r: 1).values()) <= 20


def test_rare_strata_get_their_minimum() -> None:
    policy = stratified_policy(
        max_traces=30,
        allocation="proportional",
        extra_rule='min_per_stratum = 2\nstrata = { "s=mid" = { min = 4 } }',
        extra_budget='pacing = "none"',
    )
    sizes = {"big": 3000, "mid": 40, "rare": 2, "tiny": 1}
    recs = stream(sizes, windows=12, seed=11)
    s = Sampler(policy)
    decisions = run(s, recs)
    later = [d for d in decisions if d.window_start_ms >= T0 + HOUR]
    per = Counter((d.window_start_ms, d.stratum) for d in later if d.selected)
    windows = sorted({d.window_start_ms for d in later})
    for w in windows:  # populations at or below their minimum are taken whole, every window
        assert per[(w, "main/s=rare")] == 2 and per[(w, "main/s=tiny")] == 1
    mid = [per[(w, "main/s=mid")] for w in windows]
    assert sum(mid) / len(mid) >= 3.0  # min 4 in expectation (proportional alone gives ~0.4)
    plan = s.plan(windows[-1])
    assert plan.strata["main/s=mid"].expected_sample == pytest.approx(4, rel=0.05)
    assert plan.minimums_met


def test_minimums_yield_to_the_budget() -> None:
    policy = stratified_policy(max_traces=10, extra_rule="min_per_stratum = 3")
    recs = stream({f"k{i}": 20 for i in range(8)}, windows=3, seed=12)
    s = Sampler(policy)
    run(s, recs)
    plan = s.plan(T0 + 2 * HOUR)
    assert not plan.minimums_met and plan.notes
    assert plan.expected()["sample"] <= 10 * 0.9 + 1e-6


def test_exploration_floor_and_max_rate() -> None:
    policy = stratified_policy(
        max_traces=60,
        allocation="equal",
        extra_rule="min_rate = 0.01\nmax_rate = 0.5\nmin_per_stratum = 0",
    )
    sizes = {"huge": 2000, "small": 4} | {f"k{i}": 100 for i in range(10)}
    recs = stream(sizes, windows=2, seed=13)
    s = Sampler(policy)
    run(s, recs)
    plan = s.plan(T0 + HOUR)
    assert plan.rate("main/s=huge") == pytest.approx(0.01, rel=0.01)  # equal would give 0.0025
    assert plan.rate("main/s=small") == pytest.approx(0.5)  # capped by max_rate
    assert all(plan.rate(f"main/s=k{i}") > 0.02 for i in range(10))
    assert plan.expected()["sample"] == pytest.approx(54, rel=0.01)


def test_max_keys_sends_extra_keys_to_overflow() -> None:
    policy = stratified_policy(max_traces=100, extra_rule="max_keys = 3")
    recs = stream({f"k{i}": 5 for i in range(6)}, windows=2, seed=14)
    s = Sampler(policy)
    decisions = run(s, recs)
    strata = {d.stratum for d in decisions}
    assert "main/__other__" in strata
    for w in {d.window_start_ms for d in decisions}:
        keyed = {d.stratum for d in decisions if d.window_start_ms == w} - {"main/__other__"}
        assert len(keyed) == 3


def test_judges_on_a_rule_subset_and_nested_fractions() -> None:
    policy = parse_policy(
        """
[[judge]]
name = "full"
scorer = "builtin:Safety"
[[judge]]
name = "tenth"
scorer = "builtin:RelevanceToQuery"
sample_fraction = 0.1
[[policy]]
name = "errors"
type = "always"
conditions = [{ field = "status", op = "=", value = "ERROR" }]
judges = ["full"]
[[policy]]
name = "rest"
type = "probabilistic"
rate = 0.5
"""
    )
    rng = random.Random(15)
    s = Sampler(policy)
    errs = run(s, [record(rng, status="ERROR", ts=T0 + i) for i in range(50)])
    assert all(dict(d.judges) == {"full": 1.0} for d in errs)
    rest = run(s, [record(rng, ts=T0 + i) for i in range(20_000)])
    sel = [d for d in rest if d.selected]
    tenth = [d for d in sel if "tenth" in d.judges]
    assert all(d.judges["full"] == pytest.approx(0.5) for d in sel)
    assert all(d.judges["tenth"] == pytest.approx(0.05) for d in tenth)
    assert abs(len(tenth) / len(rest) - 0.05) < 0.01


def test_counts_window_must_match_policy() -> None:
    with pytest.raises(ValueError, match="windows"):
        Sampler(stratified_policy(), counts=PopulationCounts(window_ms=60_000))


def test_odd_ids_are_hashed_like_the_randomness_module() -> None:
    policy = parse_policy('[[policy]]\nname = "p"\ntype = "probabilistic"\nrate = 0.5\n')
    s = Sampler(policy)
    r = randomness_function()
    ids = ["req-1", "tr-" + "0" * 18 + "-" + "1" * 13, "tr-" + "f" * 18 + "_" + "1" * 13,
           "tr-" + "a" * 31 + "z", "tr-" + "a" * 32, "x" * 35]  # fmt: skip
    for tid in ids:
        d = s.decide(TraceRecord(tid, T0, "OK", 1.0))
        assert d.selected == (r(tid) >= 2**55)
    salted = Sampler(dataclasses.replace(policy, randomness=Randomness(salt="s")))
    r_salted = randomness_function("auto", salt="s")
    rng = random.Random(17)
    for tid in ids + [f"tr-{rng.getrandbits(128):032x}" for _ in range(200)]:
        d = salted.decide(TraceRecord(tid, T0, "OK", 1.0))
        assert d.selected == (r_salted(tid) >= 2**55)


def test_population_by_stratum_counts_every_decision_per_stratum_and_window_range() -> None:
    """PopulationCounts.population_by_stratum (documented API): decisions per stratum."""
    s = Sampler(stratified_policy())
    decisions = s.decide_many(stream({"a": 30, "b": 7}, windows=3))
    assert s.counts.population_by_stratum() == {"main/s=a": 90, "main/s=b": 21}
    second = s.counts.population_by_stratum(T0 + HOUR, T0 + 2 * HOUR)
    assert second == {"main/s=a": 30, "main/s=b": 7}
    assert sum(second.values()) == sum(d.window_start_ms == T0 + HOUR for d in decisions)


def test_counts_are_pruned_to_keep_windows() -> None:
    """The saved state must not grow with every window."""
    from samplers import PopulationCounts, Sampler, parse_policy
    from tests.samplers_fixtures import HOUR, T0, record

    policy = parse_policy(
        '[budget]\nwindow = "1h"\nkeep_windows = 3\n[[judge]]\nname = "q"\n'
        'scorer = "builtin:Safety"\n[[policy]]\nname = "p"\ntype = "probabilistic"\nrate = 0.5\n'
    )
    counts = PopulationCounts(HOUR, "r")
    sampler = Sampler(policy, counts=counts)
    for w in range(20):
        sampler.decide(record(ts=T0 + w * HOUR))
    windows = counts.windows()
    assert len(windows) == 14 and windows[-1] == T0 + 19 * HOUR  # current + lookback 12 + 1
    assert len(counts.to_dict()["replicas"]["r"]["cells"]) == len(windows)
