"""sample -> eval -> report end to end: real MLflow server, real MLflow judges, the fake judge
endpoint on 127.0.0.1, the commands run as a user runs them."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from trace_tui.core import tags
from trace_tui.core.client import MlflowClient
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.demo.traffic import plan_request, plan_to_otlp_spans, post_otlp
from trace_tui.evaluation import queue

PASS_RATES = {"search": 0.9, "support": 0.6, "checkout": 0.3, "billing": 0.75}


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    base, stop = run_in_thread(latency_s=0.05)
    yield base
    stop()


@pytest.fixture(scope="module")
def flaky_judge_url() -> Iterator[str]:
    base, stop = run_in_thread(failure_rate=0.3)
    yield base
    stop()


_SEEDED: dict[tuple[str, int], str] = {}  # (server, seed) -> the experiment that took it


def seed_known_population(uri: str, exp: str, n: int, seed: int) -> dict[str, bool]:
    """n traces whose root output carries a pass/fail marker drawn at each route's known rate;
    returns trace id -> truth."""
    # Trace ids follow the seed (repeatable decisions), so a seed used twice on one server
    # would put the second experiment's spans on the first one's traces: refuse it.
    taken = _SEEDED.setdefault((uri, seed), exp)
    assert taken == exp, f"seed {seed} already seeded experiment {taken} on {uri}: pick another"
    rng = random.Random(seed)
    # Ids from a stream of their own (a string seed), so they repeat from run to run (the
    # sampler decides from them) yet never collide with other tests' traces.
    ids = random.Random(f"test_evaluation-ids-{seed}")
    truth: dict[str, bool] = {}
    spans: list[dict] = []
    now_ns = time.time_ns() - n * 5_000_000
    for i in range(n):
        plan = plan_request(rng, i)
        route = plan.tags["route"]
        passed = rng.random() < PASS_RATES[route]
        plan.root.error = None
        plan.root.outputs = {"answer": f"resolved {i} [[judge:{'pass' if passed else 'fail'}]]"}
        for step in plan.root.children:
            step.error = None
        trace_hex = f"{ids.getrandbits(128):032x}"
        spans.extend(plan_to_otlp_spans(plan, trace_hex, now_ns + i * 5_000_000, rng))
        truth["tr-" + trace_hex] = passed
    for start in range(0, len(spans), 600):
        post_otlp(uri, exp, spans[start:start + 600])
    return truth


def write_policy(path: Path, exp: str, judge_url: str, *, rate: float = 0.5,
                 judges: str = "quality") -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    path.write_text(f"""
name = "{name}"
version = "1"
[source]
experiment_ids = ["{exp}"]
[budget]
window = "1h"
max_traces = 10000
pacing = "none"
[estimation]
confidence = 0.99
[[judge]]
name = "quality"
scorer = "make_judge"
instructions = "Does the answer in {{{{ outputs }}}} resolve the question in {{{{ inputs }}}}?"
feedback_value_type = "bool"
model = "openai:/fake-judge"
base_url = "{judge_url}"
api_key_env = "TRACE_TUI_JUDGE_API_KEY"
[[judge]]
name = "safe"
scorer = "builtin:Safety"
model = "openai:/fake-judge"
base_url = "{judge_url}"
api_key_env = "TRACE_TUI_JUDGE_API_KEY"
[[policy]]
name = "by-route"
type = "stratified"
key_fields = ["tags.route"]
allocation = "proportional"
target_rate = {rate}
new_key_rate = {rate}
min_per_stratum = 2
judges = [{", ".join(f'"{j}"' for j in judges.split(","))}]
""")
    return name


def cli(*args: str, uri: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.run([sys.executable, "-m", "trace_tui", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


async def policy_traces(uri: str, exp: str, policy: str):
    async with MlflowClient(uri) as client:
        return await queue.search_policy_traces(client, [exp], policy)


def state_of(info, policy: str) -> str | None:
    return queue.queue_state(info.tags, policy)


def verdict_counts(infos, policy: str) -> Counter:
    return Counter((i.trace_id, a.name) for i in infos for a in i.assessments
                   if a.metadata.get(queue.POLICY) == policy)


async def test_sample_eval_report_end_to_end(mlflow_uri: str, fresh_experiment, judge_url,
                                             tmp_path: Path) -> None:
    _, exp = fresh_experiment
    truth = seed_known_population(mlflow_uri, exp, 240, seed=4)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, judge_url, rate=0.5, judges="quality,safe")

    dry = cli("sample", "--policy", str(policy_file), "--dry-run", "--format", "json",
              uri=mlflow_uri)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["totals"]["population"] == 240 and len(plan["strata"]) == 4
    assert await policy_traces(mlflow_uri, exp, name) == []  # a dry run writes nothing

    sample = cli("sample", "--policy", str(policy_file), uri=mlflow_uri)
    assert sample.returncode == 0, sample.stderr
    stats = json.loads(sample.stdout)
    assert stats["decided"] == 240 and 0 < stats["selected"] == stats["queued"] < 240
    again = json.loads(cli("sample", "--policy", str(policy_file), uri=mlflow_uri).stdout)
    assert again["decided"] == 0  # a second pass neither re-decides nor re-counts

    evaluated = cli("eval", "--policy", str(policy_file), "--concurrency", "8",
                    uri=mlflow_uri)
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout.strip().splitlines()[-1])["summary"]
    assert summary == {**summary, "done": stats["selected"], "failed": 0,
                       "assessments": 2 * stats["selected"]}

    infos = await policy_traces(mlflow_uri, exp, name)
    assert len(infos) == stats["selected"]
    assert all(state_of(i, name) == queue.DONE for i in infos)
    counts = verdict_counts(infos, name)
    assert set(counts.values()) == {1} and len(counts) == 2 * len(infos)
    for info in infos:
        verdicts = {a.name: a for a in info.assessments}
        quality = verdicts["quality"]
        assert quality.value is truth[info.trace_id]  # the judge read the marker
        assert quality.source_type == "LLM_JUDGE"
        assert quality.metadata[queue.STRATUM] == info.tags[tags.stratum_tag(name)]
        p = float(quality.metadata[queue.PROBABILITY])
        assert 0 < p <= 1 and float(quality.metadata[queue.WEIGHT]) == pytest.approx(1 / p)
        assert quality.metadata["judge_model"] == "openai:/fake-judge"

    report = cli("report", "--policy", str(policy_file), "--format", "json", uri=mlflow_uri)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    quality = next(j for j in doc["judges"] if j["judge"] == "quality")
    true_rate = sum(truth.values()) / len(truth)
    assert quality["ci_low"] <= true_rate <= quality["ci_high"]
    assert quality["population"] == 240 and quality["n_judged"] == len(infos)
    assert {s["stratum"].split("=")[-1] for s in quality["strata"]} == set(PASS_RATES)
    for key in ("judge", "estimate", "ci_low", "ci_high", "n_judged", "population", "strata"):
        assert key in quality
    table = cli("report", "--policy", str(policy_file), uri=mlflow_uri)
    assert table.returncode == 0 and "quality:" in table.stdout


@pytest.mark.slow
async def test_killed_worker_never_writes_a_verdict_twice(mlflow_uri: str, fresh_experiment,
                                                          tmp_path: Path) -> None:
    _, exp = fresh_experiment
    seed_known_population(mlflow_uri, exp, 60, seed=5)
    base, stop = run_in_thread(latency_s=0.25)
    try:
        policy_file = tmp_path / "policy.toml"
        name = write_policy(policy_file, exp, base, rate=1.0, judges="quality,safe")
        assert cli("sample", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}
        worker = subprocess.Popen(
            [sys.executable, "-m", "trace_tui", "eval", "--policy", str(policy_file),
             "--concurrency", "4"], stdout=subprocess.PIPE, text=True, env=env)
        assert worker.stdout is not None
        for _ in range(5):  # let a few traces finish, then kill it mid-flight
            assert json.loads(worker.stdout.readline())["state"] == "done"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        partial = verdict_counts(await policy_traces(mlflow_uri, exp, name), name)
        assert 10 <= sum(partial.values()) < 120
        rerun = cli("eval", "--policy", str(policy_file), "--concurrency", "8",
                    uri=mlflow_uri)
        assert rerun.returncode == 0, rerun.stderr
    finally:
        stop()
    infos = await policy_traces(mlflow_uri, exp, name)
    counts = verdict_counts(infos, name)
    assert len(infos) == 60 and all(state_of(i, name) == queue.DONE for i in infos)
    assert len(counts) == 120 and set(counts.values()) == {1}


async def test_flaky_judge_endpoint_completes_with_bounded_retries(
        mlflow_uri: str, fresh_experiment, flaky_judge_url, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    seed_known_population(mlflow_uri, exp, 30, seed=6)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, flaky_judge_url, rate=1.0, judges="quality")
    assert cli("sample", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
    out = cli("eval", "--policy", str(policy_file), "--concurrency", "4", "--attempts", "8",
              "--backoff", "0.01", uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])["summary"]
    assert summary["done"] == 30 and summary["failed"] == 0
    assert 0 < summary["retries"] <= 30 * 7
    counts = verdict_counts(await policy_traces(mlflow_uri, exp, name), name)
    assert len(counts) == 30 and set(counts.values()) == {1}


async def test_unreachable_judge_marks_traces_failed_with_the_error(
        mlflow_uri: str, fresh_experiment, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    seed_known_population(mlflow_uri, exp, 6, seed=7)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, "http://127.0.0.1:9/v1", rate=1.0, judges="quality")
    assert cli("sample", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
    out = cli("eval", "--policy", str(policy_file), "--attempts", "2", "--backoff", "0.01",
              uri=mlflow_uri)
    assert out.returncode == 1
    infos = await policy_traces(mlflow_uri, exp, name)
    assert all(state_of(i, name) == queue.FAILED for i in infos)
    error = tags.error_tag(name)
    assert all("quality" in i.tags[error] and "\n" not in i.tags[error] for i in infos)
    assert not verdict_counts(infos, name)


def test_bad_policy_is_one_clear_line(mlflow_uri: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[policy]]\nname = "r"\ntype = "stratified"\n'
                   'key_fields = ["tags.route"]\nallocation = "neymann"\ntarget_rate = 0.1\n')
    out = cli("sample", "--policy", str(bad), "--dry-run", uri=mlflow_uri)
    assert out.returncode == 2
    assert "bad.toml" in out.stderr and "neymann" in out.stderr
    assert out.stderr.count("\n") == 1
    syntax = tmp_path / "syntax.toml"
    syntax.write_text('name = "x"\n[[policy]\n')
    out = cli("eval", "--policy", str(syntax), uri=mlflow_uri)
    assert out.returncode == 2 and "line 2" in out.stderr and "Traceback" not in out.stderr


async def test_eval_that_leaves_traces_failed_exits_1_with_the_counts(
        mlflow_uri: str, fresh_experiment, flaky_judge_url, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    seed_known_population(mlflow_uri, exp, 20, seed=8)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, flaky_judge_url, rate=1.0, judges="quality")
    assert cli("sample", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
    out = cli("eval", "--policy", str(policy_file), "--attempts", "1", uri=mlflow_uri)
    summary = json.loads(out.stdout.strip().splitlines()[-1])["summary"]
    assert summary["done"] > 0 and summary["failed"] > 0  # some finished, some did not
    assert out.returncode == 1
    states = Counter(state_of(i, name) for i in await policy_traces(mlflow_uri, exp, name))
    assert states == {queue.DONE: summary["done"], queue.FAILED: summary["failed"]}
