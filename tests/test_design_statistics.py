"""The designer's expected half-width against sampling and judging for real (simulated
populations with known stratum pass rates), and the preview against `dry_run`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samplers import JudgedOutcome, Sampler, dry_run, estimate, parse_policy
from samplers.precision import StratumDesign, stratified_half_width, uniform_half_width
from samplers.synthetic import synthetic_population
from trace_tui.design import Draft, JudgeChoice, preview, window_of

HOUR = 3_600_000


def _population(seed: int = 3):
    # 2 hours: the first warms the sampler up (steady-state rates), the second is measured.
    return synthetic_population(40_000, routes=4, tiers=2, versions=1, span_ms=2 * HOUR,
                                start_ms=472_223 * HOUR,
                                low_share=0.4, low_rates=(0.4, 0.7), zipf=0.6, seed=seed)


def _policy(budget: int, salt: str = ""):
    text = Draft(name="sim", window="1h", budget=budget, key_fields=("tags.route", "tags.tier"),
                 judges=(JudgeChoice("relevance"),)).to_toml()
    if salt:
        text += f'\n[randomness]\nsalt = "{salt}"\n'
    return parse_policy(text)


def _past_verdicts(pop, share: float, seed: int) -> dict[str, dict[str, bool]]:
    rng = np.random.default_rng(seed)
    out = {}
    for rec, p in zip(pop.records, pop.pass_prob, strict=True):
        if rng.random() < share:
            out[rec.trace_id] = {"relevance": bool(rng.random() < p)}
    return out


def test_expected_half_width_within_15_percent_of_obtained() -> None:
    pop = _population()
    start = pop.records[0].timestamp_ms // HOUR * HOUR
    second = [r for r in pop.records if r.timestamp_ms >= start + HOUR]
    window = window_of(second, _past_verdicts(pop, 0.1, seed=1))
    expected = preview(_policy(300), window).half_width
    assert math.isfinite(expected) and expected > 0

    obtained = []
    for rep in range(12):
        policy = _policy(300, salt=f"rep{rep}")
        sampler = Sampler(policy)
        rng = np.random.default_rng(100 + rep)
        judged = []
        for rec, p in zip(pop.records, pop.pass_prob, strict=True):
            d = sampler.decide(rec)
            if d.selected and rec.timestamp_ms >= start + HOUR:
                judged.append(JudgedOutcome(rec.trace_id, "relevance", d.stratum,
                                            bool(rng.random() < p), d.probability,
                                            d.window_start_ms))
        report = estimate(judged, sampler.counts, method="wilson_kish",
                          start_ms=start + HOUR)
        est = report.judge("relevance")
        assert est.ci_low is not None and est.ci_high is not None
        obtained.append((est.ci_high - est.ci_low) / 2)
    mean_obtained = float(np.mean(obtained))
    assert abs(expected - mean_obtained) / mean_obtained < 0.15, (expected, mean_obtained)


def test_stratifying_beats_uniform_where_pass_rates_differ() -> None:
    strata = [StratumDesign(9000, 30, 0.98), StratumDesign(1000, 30, 0.5)]
    strat = stratified_half_width(strata)
    uniform = uniform_half_width(strata, 60)
    assert strat < uniform
    # equal rates, proportional allocation: the two agree
    same = [StratumDesign(5000, 50, 0.8), StratumDesign(5000, 50, 0.8)]
    assert stratified_half_width(same) == pytest.approx(uniform_half_width(same, 100), rel=0.02)
    assert stratified_half_width([StratumDesign(10, 0, 0.5)]) == math.inf


def test_preview_matches_dry_run_of_the_saved_text() -> None:
    pop = synthetic_population(6_000, routes=5, tiers=2, versions=2, seed=5)
    policy = _policy(120)
    rows = {r.stratum: r for r in preview(policy, window_of(pop.records)).rows}
    frame = dry_run(policy, pop.records)
    assert len(frame) == len(rows) > 5
    for d in frame.to_dict(orient="records"):
        r = rows[d["stratum"]]
        assert r.population == pytest.approx(d["population_per_window"])
        assert r.rate == pytest.approx(d["rate"])
        windows = frame.attrs["windows"]
        assert r.expected_sample == pytest.approx(d["expected_sample_per_window"])
        assert r.judge_tokens == pytest.approx(d["expected_judge_tokens"] / windows)
        assert r.cost_usd == pytest.approx(d["expected_cost_usd"] / windows)


def test_subsampled_window_scales_to_the_traffic_it_stands_for() -> None:
    pop = synthetic_population(30_000, routes=3, tiers=2, versions=1, seed=7)
    policy = _policy(100)
    full = preview(policy, window_of(pop.records))
    sub = preview(policy, window_of(pop.records, cap=5_000))
    assert sub.population == pytest.approx(full.population, rel=1e-9)
    assert sub.expected_sample == pytest.approx(full.expected_sample, rel=0.05)
    assert sub.half_width == pytest.approx(full.half_width, rel=0.1)
