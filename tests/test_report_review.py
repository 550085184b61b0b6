"""Judge trust in `report`: human labels (HUMAN assessments named like the judge, written the
way the label import writes them) -> agreement and corrected estimates; policy versions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from samplers import HumanLabel, JudgedOutcome, PassRule, corrected_estimates
from tests.test_evaluation import cli, judge_url, policy_traces, seed_known_population
from trace_tui.core.client import MlflowClient
from trace_tui.evaluation import queue, sampling
from trace_tui.evaluation.report import group_versions

__all__ = ["judge_url"]  # the module-scoped fake judge fixture


def review_policy(path: Path, exp: str, url: str) -> str:
    name = f"rv-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    path.write_text(f"""
name = "{name}"
version = "3"
[source]
experiment_ids = ["{exp}"]
[budget]
window = "1h"
max_traces = 10000
pacing = "none"
[review]
fraction = 0.5
min_per_stratum = 2
[[judge]]
name = "quality"
scorer = "make_judge"
instructions = "Does the answer in {{{{ outputs }}}} resolve the question in {{{{ inputs }}}}?"
feedback_value_type = "bool"
model = "openai:/fake-judge"
base_url = "{url}"
api_key_env = "TRACE_TUI_JUDGE_API_KEY"
[[policy]]
name = "by-route"
type = "stratified"
key_fields = ["tags.route"]
allocation = "proportional"
target_rate = 0.5
new_key_rate = 0.5
min_per_stratum = 2
judges = ["quality"]
""")
    return name


async def test_report_gives_agreement_and_corrected_estimate_for_human_labels(
        mlflow_uri: str, fresh_experiment, judge_url, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    seed_known_population(mlflow_uri, exp, 80, seed=11)
    policy_file = tmp_path / "policy.toml"
    name = review_policy(policy_file, exp, judge_url)
    assert cli("sample", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
    evaluated = cli("eval", "--policy", str(policy_file), "--concurrency", "8", uri=mlflow_uri)
    assert evaluated.returncode == 0, evaluated.stderr

    infos = await policy_traces(mlflow_uri, exp, name)
    judged = {i.trace_id: queue.verdict_of(i, "quality") for i in infos}
    ids = sorted(t for t, a in judged.items() if a is not None)
    assert len(ids) >= 20
    # Review half the judged traces at r = 0.5; the human overrules the judge on every fourth
    # reviewed pass (judge pass, human fail), in the label vocabulary a reviewer types.
    reviewed = ids[: len(ids) // 2]
    human: dict[str, bool] = {}
    passes_seen = 0
    for tid in reviewed:
        j = judged[tid].value is True
        if j:
            passes_seen += 1
        human[tid] = j and passes_seen % 4 != 0
    outside = ids[len(ids) // 2]  # a label from outside the review sample: agreement only
    async with MlflowClient(mlflow_uri) as client:
        for tid in reviewed:
            info = next(i for i in infos if i.trace_id == tid)
            facts = queue.SampleFacts.from_tags(info.tags, name)
            assert facts is not None
            await client.create_assessment(
                tid, "quality", "pass" if human[tid] else "fail", source_id="ana",
                metadata={"trace_tui.policy": name, "trace_tui.stratum": facts.stratum,
                          "trace_tui.window": str(facts.window_start_ms),
                          "trace_tui.judge_probability": repr(facts.probability),
                          "trace_tui.review_probability": "0.5",
                          "trace_tui.label_via": "import"})
        await client.create_assessment(outside, "quality", judged[outside].value,
                                       source_id="bo")
        run = (await client.search_runs(
            [exp], filter_string=f"tags.`{sampling.RUN_TAG}` = '{name}'"))[0]
        counts = await sampling.load_all_counts(client, run["info"]["run_id"])
    assert counts is not None

    report = cli("report", "--policy", str(policy_file), "--format", "json", uri=mlflow_uri)
    assert report.returncode == 0, report.stderr
    quality = next(j for j in json.loads(report.stdout)["judges"] if j["judge"] == "quality")
    for key in ("estimate", "ci_low", "ci_high", "n_judged", "population", "strata"):
        assert key in quality  # today's keys stay

    # agreement: every label counts, the outside one too
    pairs = [(judged[t].value is True, human[t]) for t in reviewed]
    pairs.append((judged[outside].value is True, judged[outside].value is True))
    expected = {"tp": sum(j and h for j, h in pairs), "fp": sum(j and not h for j, h in pairs),
                "fn": sum(h and not j for j, h in pairs),
                "tn": sum(not j and not h for j, h in pairs)}
    overall = quality["agreement"]["overall"]
    assert overall["confusion"] == expected and overall["n_reviewed"] == len(reviewed) + 1
    assert expected["fp"] >= 1 and overall["kappa"]["estimate"] < 1
    assert overall["true_pass_rate"]["estimate"] == 1.0  # the judge never failed a human pass
    assert overall["true_fail_rate"]["estimate"] < 1.0
    assert sum(s["n_reviewed"] for s in quality["agreement"]["strata"]) == len(reviewed) + 1

    # corrected: the review sample only, equal to the library on the same data
    outcomes = []
    for info in infos:
        a = judged[info.trace_id]
        facts = queue.SampleFacts.from_tags(info.tags, name)
        if a is not None and facts is not None:
            outcomes.append(JudgedOutcome(info.trace_id, "quality", facts.stratum, a.value,
                                          facts.probability, facts.window_start_ms))
    labels = [HumanLabel(t, "quality", human[t], 0.5) for t in reviewed]
    [want] = corrected_estimates(outcomes, labels, counts, 0.95,
                                 rules={"quality": PassRule("bool")})
    corrected = quality["corrected"]
    assert corrected["n_reviewed"] == len(reviewed)
    assert corrected["estimate"] == pytest.approx(want.corrected.estimate)
    assert corrected["ci_low"] == pytest.approx(want.corrected.ci_low)
    assert corrected["ci_high"] == pytest.approx(want.corrected.ci_high)
    assert corrected["estimate"] < quality["estimate"]  # the humans failed some judge passes
    assert quality["human_only"]["n_reviewed"] == len(reviewed)

    table = cli("report", "--policy", str(policy_file), uri=mlflow_uri)
    assert table.returncode == 0, table.stderr
    assert "corrected" in table.stdout and "kappa" in table.stdout
    rows = list(csv.DictReader(io.StringIO(
        cli("report", "--policy", str(policy_file), "--format", "csv", uri=mlflow_uri).stdout)))
    top = next(r for r in rows if r["judge"] == "quality" and r["level"] == "overall")
    assert float(top["corrected"]) == pytest.approx(corrected["estimate"])
    assert int(top["fp"]) == expected["fp"] and int(float(top["n_reviewed"])) == len(pairs)

    # which policy version drew the sample, by the file's hash
    sha = hashlib.sha256(policy_file.read_bytes()).hexdigest()[:16]
    [version] = json.loads(report.stdout)["policy_versions"]
    assert (version["version"], version["sha256"]) == ("3", sha) and version["windows"] >= 1
    assert f"sample from {name} v3 (sha256 {sha})" in table.stdout


def test_windows_group_by_version_and_hash() -> None:
    tags = {**sampling.window_version_tags_for("1", "aaa", [0, 3_600_000]),
            **sampling.window_version_tags_for("2", "bbb", [7_200_000])}
    groups = group_versions(sampling.window_versions(tags))
    assert [(g["version"], g["sha256"], g["windows"]) for g in groups] == [
        ("1", "aaa", 2), ("2", "bbb", 1)]
    assert groups[1]["first_window_ms"] == 7_200_000
