"""Two policies on one experiment: each keeps its own sample, queue and report.

Policies without a salt share their randomness, so their samples nest and overlap almost
entirely: before per-policy tags the second policy's `sample` overwrote the first one's
tags on every shared trace and the first report silently lost those verdicts."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from tests.test_evaluation import (
    cli,
    judge_url,  # noqa: F401 - the module-scoped fake judge fixture
    policy_traces,
    seed_known_population,
    state_of,
    write_policy,
)
from trace_tui.evaluation import queue


def write_uniform_policy(path: Path, stratified: Path, rate: float) -> str:
    """The stratified policy's judges with one uniform (probabilistic) rule instead."""
    name = f"u-{uuid.uuid4().hex[:8]}"
    head = stratified.read_text().split("[[policy]]")[0]
    head = re.sub(r'^name = ".*"$', f'name = "{name}"', head, count=1, flags=re.M)
    path.write_text(head + f'[[policy]]\nname = "all"\ntype = "probabilistic"\nrate = {rate}\n'
                    'judges = ["quality"]\n')
    return name


def report(policy_file: Path, uri: str) -> dict:
    out = cli("report", "--policy", str(policy_file), "--format", "json", uri=uri)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def run_policy(policy_file: Path, uri: str) -> dict:
    sample = cli("sample", "--policy", str(policy_file), uri=uri)
    assert sample.returncode == 0, sample.stderr
    evaluated = cli("eval", "--policy", str(policy_file), uri=uri)
    assert evaluated.returncode == 0, evaluated.stderr
    return json.loads(sample.stdout)


async def test_two_policies_keep_their_own_samples_and_reports(
        mlflow_uri: str, fresh_experiment, judge_url, tmp_path: Path) -> None:  # noqa: F811
    _, exp = fresh_experiment
    truth = seed_known_population(mlflow_uri, exp, 100, seed=31)
    strat_file, uni_file = tmp_path / "stratified.toml", tmp_path / "uniform.toml"
    strat = write_policy(strat_file, exp, judge_url, rate=0.5, judges="quality")
    uni = write_uniform_policy(uni_file, strat_file, rate=0.6)

    strat_stats = run_policy(strat_file, mlflow_uri)
    strat_before = report(strat_file, mlflow_uri)

    uni_stats = run_policy(uni_file, mlflow_uri)
    uni_before = report(uni_file, mlflow_uri)
    assert report(strat_file, mlflow_uri) == strat_before  # untouched by the second policy

    strat_infos = await policy_traces(mlflow_uri, exp, strat)
    uni_infos = await policy_traces(mlflow_uri, exp, uni)
    shared = {i.trace_id for i in strat_infos} & {i.trace_id for i in uni_infos}
    assert len(strat_infos) == strat_stats["selected"] and len(uni_infos) == uni_stats["selected"]
    assert len(shared) > 10  # unsalted policies nest: the overlap is real
    for infos, name in ((strat_infos, strat), (uni_infos, uni)):
        assert all(state_of(i, name) == queue.DONE for i in infos)
    # Verdicts are shared by judge name: a shared trace was judged once, not once per policy.
    for info in uni_infos:
        verdicts = [a for a in info.assessments if a.name == "quality"]
        assert len(verdicts) == 1 and verdicts[0].value is truth[info.trace_id]
    quality = uni_before["judges"][0]
    assert quality["population"] == 100 and quality["n_judged"] == len(uni_infos)
    assert strat_before["judges"][0]["n_judged"] == len(strat_infos)

    # The first policy runs again (new traffic too): the second one's report is unchanged.
    seed_known_population(mlflow_uri, exp, 20, seed=32)
    run_policy(strat_file, mlflow_uri)
    assert report(uni_file, mlflow_uri) == uni_before
    assert report(strat_file, mlflow_uri)["judges"][0]["population"] == 120


def test_policy_tags_are_separate_and_badges_read_them() -> None:
    from trace_tui.core import tags
    from trace_tui.core.render import list_badges

    assert tags.queue_tag("p-1") == "trace_tui.queue.p-1"
    odd = tags.policy_key("team a/checkout@2")  # characters MLflow tag keys refuse
    assert odd.startswith("team_a_checkout_2-") and odd != tags.policy_key("team a/checkout#2")
    both = {tags.queue_tag("a"): "done", tags.queue_tag("b"): "queued"}
    assert list_badges(both, []) == "Q"  # one policy still waiting
    assert list_badges({**both, tags.queue_tag("c"): "failed"}, []) == "F"
    assert list_badges({tags.queue_tag("a"): "done"}, []) == "J"
    # Data from before per-policy tags still shows, next to new tags.
    legacy = {"trace_tui.policy": "old", "trace_tui.queue": "failed"}
    assert list_badges(legacy, []) == "F"
    assert tags.queue_states({**legacy, tags.queue_tag("new"): "done"}) == {"old": "failed",
                                                                          "new": "done"}


def test_facts_of_one_policy_ignore_the_others() -> None:
    facts = {name: queue.SampleFacts(policy=name, stratum=f"s-{name}", probability=p, weight=1 / p,
                                     judges={"quality": p})
             for name, p in (("a", 0.5), ("b", 0.25))}
    tags = {**facts["a"].tags(), **facts["b"].tags()}
    for name in ("a", "b"):
        assert queue.SampleFacts.from_tags(tags, name) == facts[name]
        assert queue.queue_state(tags, name) == queue.QUEUED
    assert queue.SampleFacts.from_tags(tags, "c") is None
    legacy = {queue.POLICY: "old", queue.STRATUM: "s", queue.PROBABILITY: "0.5",
              queue.SAMPLE: '{"rule":"r","weight":2.0,"window":0,"judges":{}}',
              queue.QUEUE: queue.DONE}
    old = queue.SampleFacts.from_tags({**tags, **legacy}, "old")
    assert old is not None and old.stratum == "s" and old.probability == 0.5
    assert queue.state_tag({**tags, **legacy}, "old") == queue.QUEUE
    assert queue.state_tag({**tags, **legacy}, "a") == "trace_tui.queue.a"
