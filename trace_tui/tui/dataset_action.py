"""The explorer's `D`: add the marked traces (else the one under the cursor) to an MLflow
evaluation dataset, asking for its name (created in the current experiment if missing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from trace_tui.core.errors import TraceTuiError

if TYPE_CHECKING:
    from trace_tui.core.client import MlflowClient
    from trace_tui.tui.app import TraceExplorerApp


def ask_add_to_dataset(app: TraceExplorerApp, trace_ids: list[str]) -> None:
    from trace_tui.tui.screens.modals import PromptScreen

    if not trace_ids or app.experiment is None:
        return

    def done(name: str | None) -> None:
        if name and name.strip():
            app.run_worker(add_to_dataset(app, name.strip(), list(trace_ids)), group="dataset")

    n = len(trace_ids)
    app.push_screen(PromptScreen(f"add {n} trace{'s' * (n != 1)} to dataset", "dataset name"),
                    done)


async def add_to_dataset(app: TraceExplorerApp, name: str, trace_ids: list[str]) -> None:
    from trace_tui.evaluation.datasets import add_traces

    assert app.experiment is not None
    try:
        client = cast("MlflowClient", await app._ensure_client())
        result = await add_traces(client, name, [app.experiment.experiment_id], trace_ids)
    except TraceTuiError as exc:
        app.notify(f"dataset {name}: {exc}", severity="error")
        return
    same = (f", {len(result.same_inputs)} not added (same inputs as another trace's record)"
            if result.same_inputs else "")
    app.notify(f"dataset {name}{' (new)' if result.created else ''}: "
               f"{result.inserted} added, {result.updated} updated{same}")
