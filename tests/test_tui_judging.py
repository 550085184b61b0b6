"""Pilot test of the sampling (s) and evaluation (e) screens: real server, real judges,
the fake judge endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable

from tests.test_evaluation import policy_traces, seed_known_population, verdict_counts
from tests.test_evaluation import write_policy as write_test_policy
from tests.test_tui_pilot import SIZE, make_app, wait_for
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.evaluation import queue
from trace_tui.tui.screens.evaluation import EvaluationScreen
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.screens.sampling import SamplingScreen


async def test_sample_then_judge_from_the_explorer(mlflow_uri, fresh_experiment,
                                                   tmp_path: Path) -> None:
    name, exp = fresh_experiment
    await asyncio.to_thread(seed_known_population, mlflow_uri, exp, 40, 12)
    base, stop = run_in_thread(latency_s=0.02)
    try:
        policy_file = tmp_path / "policy.toml"
        policy = write_test_policy(policy_file, exp, base, rate=0.5, judges="quality")
        bad = tmp_path / "bad.toml"
        bad.write_text('name = "x"\n[[policy]]\nname = "r"\ntype = "sometimes"\n')
        app = make_app(mlflow_uri, name)
        for hook in judge_screen_hooks(bad):
            app.register_screen_hook(hook)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.conn_state == "live", what="live")
            await pilot.press("s")
            screen = app.screen
            assert isinstance(screen, SamplingScreen)
            await wait_for(pilot, lambda: "sometimes" in screen.console.error,
                           what="the policy error inline")
            path_input = screen.query_one("#policy-path")
            path_input.value = str(policy_file)
            path_input.focus()
            await pilot.press("enter")
            table = screen.query_one("#strata", DataTable)
            await wait_for(pilot, lambda: table.row_count == 4, timeout=30,
                           what="the dry-run table (4 routes)")
            assert screen.console.error == ""
            assert await policy_traces(mlflow_uri, exp, policy) == []  # preview wrote nothing
            await pilot.press("r")
            await wait_for(pilot, lambda: bool(screen.console.loop) and any(
                "queued" in n.message for n in app._notifications), timeout=30,
                what="the sample notification")
            await pilot.press("escape", "e")
            ev = app.screen
            assert isinstance(ev, EvaluationScreen)
            await wait_for(pilot, lambda: ev.console.counts is not None
                           and ev.console.counts.queued > 0, timeout=30, what="queue counts")
            queued = ev.console.counts.queued
            await pilot.press("r")  # start the worker
            await wait_for(pilot, lambda: ev.console.summary is not None
                           and ev.console.summary.done == queued, timeout=120,
                           what="every queued trace judged")
            await pilot.press("r")  # stop it
            await wait_for(pilot, lambda: not ev.console.running, timeout=30,
                           what="the worker to stop")
            await pilot.press("R")
            report = ev.query_one("#report", DataTable)
            await wait_for(pilot, lambda: report.row_count >= 5, timeout=30,
                           what="the report rows")
    finally:
        stop()
    infos = await policy_traces(mlflow_uri, exp, policy)
    assert infos and all(queue.queue_state(i.tags, policy) == queue.DONE for i in infos)
    assert set(verdict_counts(infos, policy).values()) == {1}
