"""`sample --backfill` end to end (real server, fake judge): the proportional pilot is queued
and judged first, then the rest by Neyman on the pilot's verdicts; the report's weights are
the two-phase inclusion probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samplers import Moments
from samplers.two_phase import pilot_plan, second_phase, selected
from tests.test_evaluation import (
    cli,
    judge_url,
    policy_traces,
    seed_known_population,
    write_policy,
)
from trace_tui.evaluation import queue

__all__ = ["judge_url"]


async def test_backfill_pilot_then_neyman_second_phase(mlflow_uri: str, fresh_experiment,
                                                       judge_url, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    truth = seed_known_population(mlflow_uri, exp, 160, seed=21)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, judge_url, rate=0.3, judges="quality")

    first = cli("sample", "--policy", str(policy_file), "--backfill", uri=mlflow_uri)
    assert first.returncode == 0, first.stderr
    pilot = json.loads(first.stdout)
    assert pilot["phase"] == "pilot" and pilot["decided"] == 160
    assert 0 < pilot["queued"] == pilot["selected"] < pilot["budget"]
    infos = await policy_traces(mlflow_uri, exp, name)
    assert len(infos) == pilot["queued"]  # only the pilot is queued
    early = cli("sample", "--policy", str(policy_file), "--backfill", uri=mlflow_uri)
    assert early.returncode == 2 and "pilot is not judged yet" in early.stderr

    assert cli("eval", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
    second = cli("sample", "--policy", str(policy_file), "--backfill", uri=mlflow_uri)
    assert second.returncode == 0, second.stderr
    final = json.loads(second.stdout)
    assert final["phase"] == "final" and final["selected"] > pilot["selected"]
    assert final["queued"] == final["selected"] - pilot["selected"]
    assert cli("eval", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0

    # the probabilities are the two-phase ones, recomputed here from the pilot's verdicts
    infos = {i.trace_id: i for i in await policy_traces(mlflow_uri, exp, name)}
    facts = {t: queue.SampleFacts.from_tags(i.tags, name) for t, i in infos.items()}
    assert all(f is not None for f in facts.values())
    assert all(queue.queue_state(i.tags, name) == queue.DONE for i in infos.values())
    strata = {t: f.stratum for t, f in facts.items() if f is not None}
    populations: dict[str, int] = {}
    report = json.loads(cli("report", "--policy", str(policy_file), "--format", "json",
                            uri=mlflow_uri).stdout)
    [quality] = report["judges"]
    for s in quality["strata"]:
        populations[s["stratum"]] = int(s["population"])
    assert sum(populations.values()) == 160 and quality["n_judged"] == len(infos)
    plan = pilot_plan(populations, pilot["budget"], 0.4)
    in_pilot = {t for t, s in strata.items() if selected(t, plan.pilot_rates[s])}
    assert len(in_pilot) == pilot["selected"]
    assert plan.pilot_rates == pytest.approx(pilot["pilot_rates"])
    moments: dict[str, Moments] = {}
    for t in in_pilot:
        v = 1.0 if truth[t] else 0.0
        moments[strata[t]] = moments.get(strata[t], Moments()) + Moments(1, v, v)
    two = second_phase(plan, pilot["budget"], moments)
    for t, f in facts.items():
        assert f is not None
        pv = (1.0 if truth[t] else 0.0) if t in in_pilot else None
        assert f.probability == pytest.approx(two.probability(f.stratum, pv))
        assert f.judges["quality"] == pytest.approx(f.probability)
    assert len({round(f.probability, 6) for f in facts.values() if f}) > 1  # not proportional
    true_rate = sum(truth.values()) / len(truth)
    assert quality["ci_low"] <= true_rate <= quality["ci_high"]
