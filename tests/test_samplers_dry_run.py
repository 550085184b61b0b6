"""Dry run: per-stratum population, rate, expected sample and judge cost."""

from __future__ import annotations

import functools
import random

import pytest

from samplers import PopulationCounts, dry_run, dry_run_totals, parse_policy
from tests.samplers_fixtures import HOUR, T0, record, stream

POLICY = parse_policy(
    """
[budget]
window = "1h"
max_traces = 30
[[judge]]
name = "cheap"
scorer = "builtin:Safety"
usd_per_1k_tokens = 0.002
[[judge]]
name = "deep"
scorer = "make_judge"
instructions = "Judge {{ trace }}"
usd_per_1k_tokens = 0.01
sample_fraction = 0.5
[[policy]]
name = "drop-eval"
type = "drop"
conditions = [{ field = "metadata.`mlflow.sourceRun`", op = "exists" }]
[[policy]]
name = "errors"
type = "always"
conditions = [{ field = "status", op = "=", value = "ERROR" }]
judges = ["cheap"]
[[policy]]
name = "main"
type = "stratified"
conditions = [{ field = "tags.s", op = "exists" }]
key_fields = ["tags.s"]
allocation = "proportional"
max_keys = 3
"""
)


@functools.cache
def records() -> tuple:
    rng = random.Random(30)
    recs = stream({"a": 500, "b": 200, "c": 50, "d": 10, "e": 5}, windows=6, seed=31)
    recs += [record(rng, ts=T0 + i * 1000, status="ERROR") for i in range(48)]
    recs += [record(rng, ts=T0 + i, metadata={"mlflow.sourceRun": "r"}) for i in range(30)]
    recs += [record(rng, ts=T0 + i) for i in range(12)]  # matches no rule
    return tuple(recs)


def test_dry_run_reports_every_stratum_with_rates_and_costs() -> None:
    df = dry_run(POLICY, records())
    assert df.attrs["windows"] == 6
    rows = df.set_index("stratum")
    assert set(rows.index) == {
        "drop-eval", "errors", "main/s=a", "main/s=b", "main/s=c", "main/__other__",
        "<unmatched>",
    }  # fmt: skip
    assert rows.loc["main/__other__", "population"] == 15 * 6  # d and e overflow max_keys = 3
    assert rows.loc["drop-eval", "rate"] == 0 and rows.loc["<unmatched>", "rate"] == 0
    assert rows.loc["errors", "rate"] == 1 and rows.loc["errors", "expected_sample"] == 48
    # proportional: one rate for the keyed strata; the overflow's 15 traces a window are
    # lifted to min_per_stratum = 1
    keyed = rows.loc[["main/s=a", "main/s=b", "main/s=c"], "rate"]
    assert keyed.nunique() == 1
    assert rows.loc["main/__other__", "rate"] == pytest.approx(1 / 15)
    per_window = df["expected_sample_per_window"].sum()
    assert per_window == pytest.approx(0.9 * 30, rel=1e-3)  # headroom 0.1
    # costs: the deep judge runs on a nested half, errors only run the cheap judge
    a = rows.loc["main/s=a"]
    assert a["inclusion_probability"] == pytest.approx(a["rate"])
    assert a["expected_judge_tokens"] == pytest.approx(a["expected_sample"] * (300 + 0.5 * 6000))
    e = rows.loc["errors"]
    assert e["expected_judge_tokens"] == pytest.approx(48 * 300)
    assert e["expected_cost_usd"] == pytest.approx(48 * 0.3 * 0.002)


def test_totals_and_budget() -> None:
    df = dry_run(POLICY, records())
    t = dry_run_totals(df, POLICY)
    assert t["population"] == len(records())
    assert t["expected_sample"] == pytest.approx(df["expected_sample"].sum())
    assert t["expected_sample_per_window"] == pytest.approx(27, rel=1e-3)
    assert t["budget_per_window"]["max_traces"] == 30
    assert t["strata"] == 7 and t["windows"] == 6


def test_dry_run_uses_observed_variances_for_neyman() -> None:
    neyman = parse_policy(
        """
[budget]
max_traces = 50
[[judge]]
name = "q"
scorer = "builtin:Safety"
[[policy]]
name = "main"
type = "stratified"
key_fields = ["tags.s"]
"""
    )
    recs = stream({"a": 500, "b": 500}, windows=2, seed=32)
    flat = dry_run(neyman, recs).set_index("stratum")["rate"]
    assert flat["main/s=a"] == pytest.approx(flat["main/s=b"])
    counts = PopulationCounts(HOUR, "r")
    coin = random.Random(33)
    for _ in range(50):
        counts.add_outcome(T0, "main/s=a", "q", 1.0)
        counts.add_outcome(T0, "main/s=b", "q", float(coin.random() < 0.5))
    informed = dry_run(neyman, recs, counts=counts).set_index("stratum")["rate"]
    assert informed["main/s=b"] > 2 * informed["main/s=a"]


def test_empty_input() -> None:
    df = dry_run(POLICY, [])
    assert df.empty and "expected_cost_usd" in df.columns
    assert dry_run_totals(df)["population"] == 0
