"""Pilot tests of long work on the sampling (s) and evaluation (e) screens against the suite's
real server and the fake judge on 127.0.0.1: a sampling run shows its progress and is never
restarted silently, the queue counts follow the worker, the report does not ask for a sample
while one runs, and esc goes back to the list."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable

from tests.test_evaluation import seed_known_population
from tests.test_evaluation import write_policy as write_test_policy
from tests.test_tui_pilot import SIZE, make_app, wait_for
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.tui.screens.evaluation import EvaluationScreen
from trace_tui.tui.screens.explorer import ExplorerScreen
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.screens.sampling import SamplingScreen
from trace_tui.tui.widgets.safe import SafeStatic


def shown(screen, selector: str) -> str:
    content = screen.query_one(selector, SafeStatic).content
    return getattr(content, "plain", str(content))


async def test_sampling_progress_live_counts_and_esc(mlflow_uri, fresh_experiment,
                                                     tmp_path: Path) -> None:
    name, exp = fresh_experiment
    await asyncio.to_thread(seed_known_population, mlflow_uri, exp, 40, 221)
    base, stop = run_in_thread(latency_s=0.05)
    try:
        policy_file = tmp_path / "policy.toml"
        write_test_policy(policy_file, exp, base, rate=0.5, judges="quality")
        app = make_app(mlflow_uri, name)
        for hook in judge_screen_hooks(policy_file):
            app.register_screen_hook(hook)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.conn_state == "live", what="live")
            await pilot.press("s")
            screen = app.screen
            assert isinstance(screen, SamplingScreen)
            console = screen.console
            table = screen.query_one("#strata", DataTable)
            await wait_for(pilot, lambda: table.row_count == 4, timeout=30, what="the dry run")
            await pilot.press("r")
            run = console.sampling
            assert run is not None and run.running
            assert shown(screen, "#sampling-progress").startswith("sampling …")
            await pilot.press("r", "d")  # neither restarts nor cancels the run
            assert console.sampling is run
            assert any("already running, not restarted" in n.message
                       for n in app._notifications)
            await pilot.press("e")
            ev = app.screen
            assert isinstance(ev, EvaluationScreen)
            if run.running:  # the report waits for the run instead of asking for one
                await wait_for(pilot, lambda: ev.report_message or not run.running,
                               what="the report attempt")
                if run.running:
                    assert "sampling …" in ev.report_message
                    assert "sample --policy" not in ev.report_message
            await wait_for(pilot, lambda: not run.running, timeout=60, what="the sample")
            assert run.error == "" and run.stats is not None and run.stats.queued > 0
            await wait_for(pilot, lambda: console.counts is not None
                           and console.counts.queued == run.stats.queued
                           and ev.report_message == "", timeout=30,
                           what="queue counts and the report after the run")
            queued = console.counts.queued
            await pilot.press("r")  # start the worker; the counts follow it, no R needed
            await wait_for(pilot, lambda: console.summary is not None
                           and console.summary.done == queued, timeout=120,
                           what="every queued trace judged")
            assert (console.counts.queued, console.counts.done) == (0, queued)
            await wait_for(pilot, lambda: f"queue: 0 queued · {queued} done"
                           in shown(ev, "#eval-status"), what="the counts on screen")
            await pilot.press("r")
            await wait_for(pilot, lambda: not console.running, timeout=30, what="stopped")
            # s and e back and forth, then esc: the list, not every visit in turn
            await pilot.press("s", "e", "s", "e")
            assert isinstance(app.screen, EvaluationScreen)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen),
                           what="back on the list")
    finally:
        stop()
