"""Headless labels: `trace-tui label` and `trace-tui review --import`, same assessments,
same validation, idempotent on re-import."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.test_evaluation import cli
from tests.test_review_queue import judged_setup
from trace_tui.core.client import MlflowClient
from trace_tui.evaluation import labels


def human(info, judge: str):
    return [a for a in info.assessments if a.name == judge and a.source_type == "HUMAN"]


async def test_label_writes_one_human_assessment_named_like_the_judge(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    path, name, ids = await judged_setup(mlflow_uri, exp, tmp_path, n=2, seed=41)
    await asyncio.to_thread(cli, "review", "--policy", str(path), "--queue", uri=mlflow_uri)
    args = ("label", ids[0], "--judge", "quality", "--value", "n", "--policy", str(path),
            "--reviewer", "ana", "--rationale", "wrong tool")
    out = await asyncio.to_thread(cli, *args, uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"] == "created"
    again = await asyncio.to_thread(cli, *args, uri=mlflow_uri)
    assert json.loads(again.stdout)["result"] == "unchanged"
    async with MlflowClient(mlflow_uri) as client:
        info = await client.get_trace_info(ids[0])
    [label] = human(info, "quality")
    assert (label.value, label.source_id, label.rationale) == (False, "ana", "wrong tool")
    meta = label.metadata
    assert meta["trace_tui.policy"] == name and meta["trace_tui.stratum"] == "route=a"
    assert meta["trace_tui.window"] == "1000"
    assert float(meta["trace_tui.judge_probability"]) == 0.5
    assert float(meta["trace_tui.review_probability"]) == 1.0
    assert meta["trace_tui.label_via"] == "label"
    # no policy: the type comes from the judge's verdict on the trace ("yes" -> yes_no)
    out = await asyncio.to_thread(cli, "label", ids[1], "--judge", "safe", "--value", "y",
                                  "--reviewer", "ana", uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == "yes"


def test_bad_label_values_exit_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    from tests.test_evaluation import write_policy

    write_policy(path, "0", "http://127.0.0.1:9/v1", judges="quality,safe")
    for value, needle in (("maybe", "'quality' takes y/n"),):
        out = cli("label", "tr-1", "--judge", "quality", "--value", value, "--policy",
                  str(path), uri="http://127.0.0.1:9")
        assert out.returncode == 2 and needle in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    out = cli("label", "tr-1", "--judge", "nope", "--value", "y", "--policy", str(path),
              uri="http://127.0.0.1:9")
    assert out.returncode == 2 and "'nope'" in out.stderr
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("trace_id,judge,value\ntr-1,quality,y\ntr-2,quality,perhaps\n")
    out = cli("review", "--policy", str(path), "--import", str(csv_file),
              uri="http://127.0.0.1:9")
    assert out.returncode == 2 and f"{csv_file}:3" in out.stderr and "perhaps" in out.stderr


def test_value_parsing_follows_the_judge_type() -> None:
    k = labels.JudgeKind
    assert labels.parse_value(k("a", "bool"), "y") is True
    assert labels.parse_value(k("a", "yes_no"), "n") == "no"
    assert labels.parse_value(k("a", "int"), "4") == 4
    assert labels.parse_value(k("a", "float"), "0.5") == 0.5
    for kind, bad in ((k("a", "int"), "4.5"), (k("a", "float"), "nan"), (k("a", "str"), " ")):
        try:
            labels.parse_value(kind, bad)
        except labels.LabelError:
            continue
        raise AssertionError(f"{bad!r} accepted for {kind}")


async def test_import_is_idempotent_and_matches_label(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    path, name, ids = await judged_setup(mlflow_uri, exp, tmp_path, n=2, seed=43)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(f"trace_id,judge,value,rationale,reviewer\n"
                        f"{ids[0]},quality,y,fine,bo\n{ids[0]},safe,n,,bo\n{ids[1]},quality,0,,\n")
    out = await asyncio.to_thread(cli, "review", "--policy", str(path), "--import",
                                  str(csv_file), uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["created"] == 3
    out = await asyncio.to_thread(cli, "review", "--policy", str(path), "--import",
                                  str(csv_file), uri=mlflow_uri)
    assert json.loads(out.stdout) == {"policy": name, "rows": 3, "created": 0,
                                           "updated": 0, "unchanged": 3}
    async with MlflowClient(mlflow_uri) as client:
        infos = {i.trace_id: i for i in await client.batch_get_trace_infos(ids)}
    [q] = human(infos[ids[0]], "quality")
    assert (q.value, q.source_id, q.rationale) == (True, "bo", "fine")
    assert q.metadata["trace_tui.label_via"] == "import"
    assert [a.value for a in human(infos[ids[0]], "safe")] == ["no"]
    assert [a.value for a in human(infos[ids[1]], "quality")] == [False]


async def test_two_reviewers_on_one_trace_and_their_agreement(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    path, _, ids = await judged_setup(mlflow_uri, exp, tmp_path, n=3, seed=61)
    rows = ["trace_id,judge,value,rationale,reviewer"]
    for tid, (a, b) in zip(ids, (("y", "y"), ("n", "n"), ("y", "n")), strict=True):
        rows += [f"{tid},quality,{a},,ana", f"{tid},quality,{b},,bo"]
    csv_file = tmp_path / "two.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    out = await asyncio.to_thread(cli, "review", "--policy", str(path), "--import",
                                  str(csv_file), uri=mlflow_uri)
    assert json.loads(out.stdout)["created"] == 6, out.stderr
    out = await asyncio.to_thread(cli, "review", "--policy", str(path), "--queue",
                                  uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    quality = next(a for a in json.loads(out.stdout)["reviewers"] if a["judge"] == "quality")
    # 3 pairs, 2 agree; cells (yy, yn, ny, nn) = (1, .5, .5, 1)/3 -> kappa 1/3
    assert (quality["traces"], quality["pairs"]) == (3, 3)
    assert abs(quality["agreement"] - 2 / 3) < 1e-9 and abs(quality["kappa"] - 1 / 3) < 1e-9


def test_review_without_a_terminal_says_how_to_label_headless(tmp_path: Path) -> None:
    from tests.test_evaluation import write_policy

    path = tmp_path / "p.toml"
    write_policy(path, "0", "http://127.0.0.1:9/v1")
    out = cli("review", "--policy", str(path), uri="http://127.0.0.1:9")
    assert out.returncode == 2 and "needs a terminal" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
