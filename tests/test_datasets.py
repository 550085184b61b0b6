"""`trace-tui dataset add`: an MLflow GenAI evaluation dataset that MLflow's own API reads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.test_evaluation import cli
from tests.test_review_queue import judged_setup


async def test_dataset_add_creates_then_updates_without_duplicates(
        mlflow_uri, fresh_experiment, tmp_path: Path, monkeypatch) -> None:
    from trace_tui.core.client import MlflowClient

    _, exp = fresh_experiment
    path, _, ids = await judged_setup(mlflow_uri, exp, tmp_path, n=6, seed=47)
    async with MlflowClient(mlflow_uri) as client:
        infos = sorted(await client.batch_get_trace_infos(ids),
                       key=lambda i: (i.request_time_ms, i.trace_id))  # the queue's order
        trees = {t.trace_id: t for t in await client.batch_get_traces(ids)}
    # the server keeps one record per distinct inputs: the first trace asking a question owns
    # its record, later ones with the same inputs are reported, not merged into it
    owners: dict[str, str] = {}
    for info in infos:
        owners.setdefault(json.dumps(trees[info.trace_id].roots[0].inputs, sort_keys=True),
                          info.trace_id)
    labelled = infos[0].trace_id
    assert len(owners) < len(ids)  # the demo questions repeat: the case is exercised
    await asyncio.to_thread(cli, "review", "--policy", str(path), "--queue", uri=mlflow_uri)
    await asyncio.to_thread(cli, "label", labelled, "--judge", "quality", "--value", "y",
                            "--policy", str(path), "--reviewer", "ana", uri=mlflow_uri)
    out = await asyncio.to_thread(cli, "dataset", "add", "golden", "--policy", str(path),
                                  uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["created"] and first["inserted"] == len(owners)
    assert sorted(first["same_inputs_as_another_trace"]) == sorted(
        set(ids) - set(owners.values()))
    await asyncio.to_thread(cli, "label", labelled, "--judge", "quality", "--value", "n",
                            "--policy", str(path), "--reviewer", "ana", uri=mlflow_uri)
    again = json.loads((await asyncio.to_thread(cli, "dataset", "add", "golden", "--policy",
                                                str(path), uri=mlflow_uri)).stdout)
    assert again["dataset_id"] == first["dataset_id"] and not again["created"]
    assert (again["inserted"], again["updated"]) == (0, len(owners))

    import mlflow
    from mlflow.genai.datasets import get_dataset

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    mlflow.set_tracking_uri(mlflow_uri)
    dataset = await asyncio.to_thread(get_dataset, dataset_id=first["dataset_id"])
    frame = dataset.to_df()
    assert len(frame) == len(owners) and dataset.name == "golden"
    by_trace = {row["source"].source_data["trace_id"] if hasattr(row["source"], "source_data")
                else row["source"]["source_data"]["trace_id"]: row
                for _, row in frame.iterrows()}
    assert set(by_trace) == set(owners.values())
    assert by_trace[labelled]["expectations"] == {"quality": False}  # the updated label
    assert all(isinstance(r["inputs"], dict) and r["inputs"] for r in by_trace.values())


async def test_explorer_key_adds_marked_traces_to_a_dataset(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    from tests.test_tui_pilot import SIZE, make_app, wait_for
    from trace_tui.core.client import MlflowClient
    from trace_tui.evaluation.datasets import dataset_records, find_dataset

    name, exp = fresh_experiment
    await judged_setup(mlflow_uri, exp, tmp_path, n=2, seed=67)
    app = make_app(mlflow_uri, name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live" and len(app.buffer) == 2,
                       what="the two traces listed")
        await pilot.press("space")  # mark the first
        marked = app.selected_trace_ids
        await pilot.press("D")
        await pilot.pause()
        await pilot.press(*"picked", "enter")
        await wait_for(pilot, lambda: any("dataset picked (new): 1 added" in n.message
                                          for n in app._notifications), what="the toast")
    async with MlflowClient(mlflow_uri) as client:
        found = await find_dataset(client, "picked", [exp])
        assert found is not None
        records = await dataset_records(client, found["dataset_id"])
    assert [r["source"]["source_data"]["trace_id"] for r in records] == marked


async def test_marks_from_the_explorer_feed_dataset_add_marked(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    """Space in the explorer keeps the marks per server; `dataset add --marked` takes them."""
    from trace_tui.config import marks
    from trace_tui.config.settings import Settings
    from trace_tui.tui.app import TraceExplorerApp

    name, exp = fresh_experiment
    path, _, ids = await judged_setup(mlflow_uri, exp, tmp_path, n=4, seed=53)
    marks.save_marks(mlflow_uri, [])  # other tests marked traces on this server
    none = await asyncio.to_thread(cli, "dataset", "add", "picked", "--policy", str(path),
                                   "--marked", uri=mlflow_uri)
    assert none.returncode == 2 and "no marked traces" in none.stderr
    assert none.stderr.count("\n") == 1
    app = TraceExplorerApp(mlflow_uri, experiment=name, settings=Settings(),
                           persist_settings=False)
    async with app.run_test(size=(160, 40)) as pilot:
        for _ in range(400):
            if len(app.buffer) == len(ids):
                break
            await pilot.pause(0.05)
        await pilot.press("space", "space")
        for _ in range(400):
            if len(marks._read(marks.marks_file()).get(marks._server_key(mlflow_uri), [])) == 2:
                break
            await pilot.pause(0.05)
        picked = app.selected_trace_ids
    assert len(picked) == 2
    assert marks.marks_file().stat().st_mode & 0o777 == 0o600
    out = await asyncio.to_thread(cli, "dataset", "add", "picked", "--policy", str(path),
                                  "--marked", uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["traces"] == 2 and result["created"]
    assert result["inserted"] + len(result["same_inputs_as_another_trace"]) == 2
