"""Allocation math: shapes, bounds, several budgets, shrunk variances."""

from __future__ import annotations

import numpy as np
import pytest

from samplers import Moments
from samplers.allocation import (
    DEFAULT_VARIANCE,
    allocation_shape,
    bounded_allocation,
    combined_std,
    shrunk_variance,
)

POP = np.array([1000.0, 500.0, 100.0, 10.0])
STD = np.array([0.1, 0.5, 0.5, 0.3])
COST = np.array([1.0, 4.0, 1.0, 1.0])


def test_shapes() -> None:
    assert allocation_shape("proportional", POP, STD, COST).tolist() == POP.tolist()
    assert allocation_shape("equal", POP, STD, COST).tolist() == [1, 1, 1, 1]
    assert np.allclose(allocation_shape("neyman", POP, STD, COST), POP * STD)
    assert np.allclose(allocation_shape("cost_optimal", POP, STD, COST), POP * STD / np.sqrt(COST))
    with pytest.raises(ValueError):
        allocation_shape("random", POP, STD, COST)


def one_resource(n: float) -> tuple[np.ndarray, np.ndarray]:
    return np.ones((len(POP), 1)), np.array([n])


def test_neyman_allocation_is_proportional_to_n_times_s_within_bounds() -> None:
    costs, limits = one_resource(100)
    n, ok = bounded_allocation(POP * STD, np.zeros(4), POP, costs, limits)
    assert ok and n.sum() == pytest.approx(100, rel=1e-6)
    assert n[0] / n[1] == pytest.approx((1000 * 0.1) / (500 * 0.5), rel=1e-6)


def test_upper_bounds_pass_the_surplus_on() -> None:
    costs, limits = one_resource(300)
    upper = POP.copy()
    n, ok = bounded_allocation(np.ones(4), np.zeros(4), upper, costs, limits)
    assert ok and n[3] == pytest.approx(10)  # capped at its population
    assert n.sum() == pytest.approx(300, rel=1e-6)
    assert n[0] == pytest.approx(n[1]) == pytest.approx(n[2]) == pytest.approx(290 / 3, rel=1e-6)


def test_lower_bounds_are_honoured_then_the_rest_is_allocated() -> None:
    costs, limits = one_resource(50)
    lower = np.array([0.0, 0.0, 0.0, 8.0])
    n, ok = bounded_allocation(POP, lower, POP, costs, limits)
    assert ok and n[3] == pytest.approx(8) and n.sum() == pytest.approx(50, rel=1e-6)


def test_every_budget_holds_at_once() -> None:
    costs = np.stack([np.ones(4), COST * 100], axis=1)  # traces and tokens
    limits = np.array([1000.0, 5000.0])  # tokens bind first
    n, ok = bounded_allocation(POP * STD, np.zeros(4), POP, costs, limits)
    spend = costs.T @ n
    assert ok and spend[0] < 1000 and spend[1] == pytest.approx(5000, rel=1e-6)


def test_minimums_exceeding_the_budget_are_scaled_down() -> None:
    costs, limits = one_resource(10)
    lower = np.array([5.0, 5.0, 5.0, 5.0])
    n, ok = bounded_allocation(POP, lower, POP, costs, limits)
    assert not ok and n.sum() == pytest.approx(10) and np.allclose(n, 2.5)


def test_unlimited_budget_takes_everything_up_to_the_bounds() -> None:
    costs, limits = one_resource(np.inf)
    n, ok = bounded_allocation(POP, np.zeros(4), POP * 0.5, costs, limits)
    assert ok and np.allclose(n, POP * 0.5)


def test_shrinkage_keeps_0_and_100_percent_strata_alive() -> None:
    pooled = Moments(1000, 800, 800)  # pooled pass rate 0.8, binary
    all_pass = Moments(50, 50, 50)
    all_fail = Moments(50, 0, 0)
    assert shrunk_variance(all_pass, pooled, 2.0) > 0
    assert shrunk_variance(all_fail, pooled, 2.0) > shrunk_variance(all_pass, pooled, 2.0)
    assert shrunk_variance(all_pass, pooled, 0.0) == 0
    unseen = shrunk_variance(Moments(), pooled, 2.0)
    assert unseen == pytest.approx(0.8 * 0.2)
    assert shrunk_variance(Moments(), Moments(), 2.0) == DEFAULT_VARIANCE
    # a stratum with lots of data keeps its own variance
    half = Moments(10_000, 5_000, 5_000)
    assert shrunk_variance(half, pooled, 2.0) == pytest.approx(0.25, abs=1e-3)


def test_combined_std_floor_mean_max_and_numeric_rescaling() -> None:
    pooled = Moments(1000, 900, 900)
    perfect = (Moments(100, 100, 100), pooled)
    coin = (Moments(100, 50, 50), pooled)
    assert combined_std([perfect], 0.0, 0.05, "mean") == 0.05  # floor
    mean = combined_std([perfect, coin], 2.0, 0.0, "mean")
    assert combined_std([perfect, coin], 2.0, 0.0, "max") > mean
    assert combined_std([], 2.0, 0.05) == pytest.approx(0.5)
    # scores on a 1-5 scale are rescaled by their pooled variance, so their unit is irrelevant
    scores = Moments(100, 300, 100 * (3**2 + 1))  # mean 3, variance 1
    scores_x10 = Moments(100, 3000, 100 * (30**2 + 100))
    a = combined_std([(scores, scores)], 2.0, 0.0)
    b = combined_std([(scores_x10, scores_x10)], 2.0, 0.0)
    assert a == pytest.approx(b) == pytest.approx(0.5)
