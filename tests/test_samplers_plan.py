"""Per-window plans: EMA forecasts, reservations, budget shares and every allocation method."""

from __future__ import annotations

import pytest

from samplers import PopulationCounts, parse_policy
from samplers.plan import build_plan, history_from_counts, history_from_populations
from tests.samplers_fixtures import HOUR, T0

JUDGE = '[[judge]]\nname = "q"\nscorer = "builtin:Safety"\n'


def policy(rules: str, budget: str = "max_traces = 100", judges: str = JUDGE):
    return parse_policy(f'[budget]\nwindow = "1h"\n{budget}\nheadroom = 0\n{judges}\n{rules}')


MAIN = '[[policy]]\nname = "main"\ntype = "stratified"\nkey_fields = ["tags.s"]\n'


def test_ema_forecast_from_counts() -> None:
    p = policy(MAIN + "ema_weight = 0.5\n")
    c = PopulationCounts(HOUR, "r")
    c.add(T0, "main", "main/s=a", population=100)
    c.add(T0 + HOUR, "main", "main/s=a", population=200)
    c.add(T0 + HOUR, "main", "main/s=new", population=80)  # first seen: not halved
    c.add(T0 + 3 * HOUR, "main", "main/s=a", population=300)  # window T0+2h had no data at all
    h = history_from_counts(p, c, T0 + 4 * HOUR)
    assert h.strata["main/s=a"].population == pytest.approx(0.5 * 300 + 0.5 * 150)
    assert h.strata["main/s=new"].population == pytest.approx(0.5 * 0 + 0.5 * 80)
    # only earlier windows count
    assert history_from_counts(p, c, T0 + HOUR).strata["main/s=a"].population == 100


def test_a_partly_observed_window_is_scaled_up() -> None:
    p = policy(MAIN)
    c = PopulationCounts(HOUR, "r")
    c.note_first_offset(T0, HOUR * 3 // 4)  # the sampler started 45 minutes into the window
    c.add(T0, "main", "main/s=a", population=50)
    assert history_from_counts(p, c, T0 + HOUR).strata["main/s=a"].population == 200
    c2 = PopulationCounts(HOUR, "r")
    c2.note_first_offset(T0, HOUR - 60_000)  # the last minute only: too little to use
    c2.add(T0, "main", "main/s=a", population=5)
    assert history_from_counts(p, c2, T0 + HOUR).strata == {}


def test_strata_of_rules_no_longer_in_the_policy_are_ignored() -> None:
    c = PopulationCounts(HOUR, "r")
    c.add(T0, "old", "old/s=a", population=100)
    assert history_from_counts(policy(MAIN), c, T0 + HOUR).strata == {}


def hist(p, pops: dict[str, float], tokens: dict[str, float] | None = None):
    return history_from_populations(
        p, {s: (s.split("/")[0], n, (tokens or {}).get(s, 0.0)) for s, n in pops.items()}
    )


def test_reservations_for_always_and_probabilistic_rules() -> None:
    p = policy(
        '[[policy]]\nname = "errors"\ntype = "always"\n'
        'conditions = [{ field = "status", op = "=", value = "ERROR" }]\n'
        '[[policy]]\nname = "vip"\ntype = "probabilistic"\nrate = 0.5\n'
        'conditions = [{ field = "tags.vip", op = "exists" }]\n'
        + MAIN
        + 'allocation = "proportional"\n'
    )
    plan = build_plan(p, hist(p, {"errors": 20, "vip": 40, "main/s=a": 800, "main/s=b": 200}), 0)
    assert plan.rate("errors") == 1 and plan.rate("vip") == 0.5
    # 100 - 20 - 20 = 60 left for main, proportional: 6%
    assert plan.rate("main/s=a") == pytest.approx(0.06) == plan.rate("main/s=b")
    assert plan.expected()["sample"] == pytest.approx(100)


def test_budget_share_and_target_rate() -> None:
    p = policy(
        MAIN.replace('"main"', '"one"') + 'allocation = "proportional"\nbudget_share = 0.25\n'
        + MAIN.replace('"main"', '"two"') + 'allocation = "proportional"\n'
        + MAIN.replace('"main"', '"three"') + 'allocation = "proportional"\ntarget_rate = 0.01\n'
    )  # fmt: skip
    plan = build_plan(p, hist(p, {"one/s=a": 1000, "two/s=a": 1000, "three/s=a": 1000}), 0)
    assert plan.strata["one/s=a"].expected_sample == pytest.approx(25)
    # the 75 left are split by population between two and three; three is capped at 1% of 1000
    assert plan.strata["two/s=a"].expected_sample == pytest.approx(37.5)
    assert plan.strata["three/s=a"].expected_sample == pytest.approx(10)


def test_fixed_allocation_and_overrides() -> None:
    p = policy(MAIN + 'allocation = "fixed"\nrate = 0.1\nstrata = { "s=b" = { rate = 0.5 } }\n')
    plan = build_plan(p, hist(p, {"main/s=a": 1000, "main/s=b": 100}), 0)
    assert plan.rate("main/s=a") == 0.1 and plan.rate("main/s=b") == 0.5
    adaptive = policy(MAIN + 'allocation = "equal"\nstrata = { "s=b" = { rate = 0.5 } }\n')
    plan = build_plan(adaptive, hist(adaptive, {"main/s=a": 1000, "main/s=b": 100}), 0)
    assert plan.rate("main/s=b") == 0.5 and plan.strata["main/s=b"].basis == "override"
    assert plan.strata["main/s=a"].expected_sample == pytest.approx(50)  # what the override left


def test_equal_and_proportional() -> None:
    for alloc, a, b in (("equal", 50, 50), ("proportional", 80, 20)):
        p = policy(MAIN + f'allocation = "{alloc}"\nmin_per_stratum = 0\n')
        plan = build_plan(p, hist(p, {"main/s=a": 4000, "main/s=b": 1000}), 0)
        assert plan.strata["main/s=a"].expected_sample == pytest.approx(a)
        assert plan.strata["main/s=b"].expected_sample == pytest.approx(b)


def test_cost_optimal_favours_cheap_strata() -> None:
    judges = (
        '[[judge]]\nname = "q"\nscorer = "builtin:Safety"\nest_tokens = 300\n'
        "trace_token_factor = 1.0\nusd_per_1k_tokens = 0.01\n"
    )
    for budget in ("max_tokens = 100000", "max_usd = 1.0"):
        p = policy(MAIN + 'allocation = "cost_optimal"\nmin_per_stratum = 0\n', budget, judges)
        h = hist(p, {"main/s=cheap": 5000, "main/s=dear": 5000}, {"main/s=dear": 2700})
        plan = build_plan(p, h, 0)
        cheap, dear = plan.strata["main/s=cheap"], plan.strata["main/s=dear"]
        # equal N and S: n_h proportional to 1/sqrt(c_h), c = 300 vs 3000 tokens
        assert cheap.expected_sample / dear.expected_sample == pytest.approx(10**0.5, rel=1e-3)
        spent = plan.expected()["tokens" if "tokens" in budget else "usd"]
        assert spent == pytest.approx(100_000 if "tokens" in budget else 1.0, rel=1e-3)
    neyman = policy(MAIN + "min_per_stratum = 0\n", "max_tokens = 100000", judges)
    plan = build_plan(neyman, h, 0)
    assert plan.rate("main/s=cheap") == pytest.approx(plan.rate("main/s=dear"))
