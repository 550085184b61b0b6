"""Pilot tests of the explorer against the suite's real MLflow server (no mocks).

Synchronisation is by polling app state with a deadline (``wait_for``), never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from trace_tui.config.settings import Settings
from trace_tui.core.client import MlflowClient
from trace_tui.core.render import FEEDBACK_NAME, fmt_count, fmt_duration, fmt_tokens
from trace_tui.demo.traffic import seed_bulk
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.screens.trace_view import TraceViewScreen

SIZE = (140, 40)


def make_app(uri: str, experiment: str, **settings: object) -> TraceExplorerApp:
    base = {"refresh_interval_s": 0.3, "buffer_size": 2000, "lookback_s": 120.0}
    base.update(settings)
    return TraceExplorerApp(uri, experiment=experiment, settings=Settings(**base),
                            persist_settings=False)


async def wait_for(pilot: Pilot, predicate: Callable[[], object], timeout: float = 20.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def type_text(pilot: Pilot, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in text])


async def open_current(pilot: Pilot) -> TraceViewScreen:
    app = pilot.app
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                   and app.screen.trace_tree is not None, what="the trace view")
    screen = app.screen
    assert isinstance(screen, TraceViewScreen)
    return screen


async def test_traces_logged_after_start_appear(mlflow_uri, fresh_experiment) -> None:
    name, exp_id = fresh_experiment
    app = make_app(mlflow_uri, name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        assert len(app.buffer) == 0
        first = await asyncio.to_thread(seed_bulk, mlflow_uri, exp_id, 4, seed=101)
        await wait_for(pilot, lambda: set(first) <= app.buffer.by_id.keys(),
                       what="the first traces")
        table = app.table
        assert table is not None
        await pilot.press("j")  # cursor on the second-newest trace
        kept = table.current
        assert kept is not None
        more = await asyncio.to_thread(seed_bulk, mlflow_uri, exp_id, 3, seed=102)
        await wait_for(pilot, lambda: set(more) <= app.buffer.by_id.keys(),
                       what="the later traces")
        # newest first, cursor still on the same trace
        times = [r.request_time_ms for r in app.buffer.rows]
        assert times == sorted(times, reverse=True)
        assert table.current is not None and table.current.trace_id == kept.trace_id
        status = app.screen.status_line
        await wait_for(pilot, lambda: status.status.count == 7, what="the status count")


async def test_enter_opens_tree_with_spans_durations_tokens(seeded) -> None:
    app = make_app(seeded.uri, seeded.experiment_name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) == len(seeded.trace_ids),
                       what="the seeded list")
        # a RAG trace with a nested router LLM (deepest tree in the demo traffic)
        table = app.table
        assert table is not None
        rows = app.buffer.rows
        target = next(i for i, r in enumerate(rows) if r.name == "rag_agent")
        table.cursor = target
        trace_id = rows[target].trace_id
        screen = await open_current(pilot)
        async with MlflowClient(seeded.uri) as client:
            expected = await client.get_trace(trace_id)
        spans = list(expected.walk())
        assert screen.trace_id == trace_id
        assert [s.name for s in screen.waterfall.rows] == [s.name for s in spans]
        for i, span in enumerate(spans):
            text = screen.waterfall.row_text(i)
            assert span.name in text
            assert fmt_duration(span.duration_ms) in text
            if span.tokens is not None:
                assert fmt_count(span.tokens.total) in text
            if span.tokens_total.total:
                assert fmt_count(span.tokens_total.total) in text
        headline = str(screen.headline.content)
        assert fmt_tokens(expected.tokens) in headline
        assert fmt_duration(expected.duration_ms) in headline
        assert f"{len(spans)} spans" in headline
        # the detail follows the cursor
        await pilot.press("j")
        await wait_for(pilot, lambda: screen.detail.span is not None
                       and screen.detail.span.span_id == spans[1].span_id, what="detail update")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TraceViewScreen),
                       what="back to the list")


async def test_fold_and_unfold_one_and_all(seeded) -> None:
    app = make_app(seeded.uri, seeded.experiment_name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) > 0, what="the list")
        screen = await open_current(pilot)
        wf = screen.waterfall
        total = len(wf.trace_tree.spans)
        assert wf.row_count == total > 1
        await pilot.press("g", "h")  # fold the root
        assert wf.row_count == 1
        assert "▸" in wf.row_text(0)
        await pilot.press("l")  # unfold it
        assert wf.row_count == total
        await pilot.press("j", "h")  # a leaf: h moves to the parent
        assert wf.cursor == 0
        await pilot.press("H")  # fold all
        assert wf.row_count == len(wf.trace_tree.roots)
        await pilot.press("L")  # unfold all
        assert wf.row_count == total
        await pilot.press("space")  # toggle on the root
        assert wf.row_count == 1
        await pilot.press("space")
        assert wf.row_count == total


async def test_bad_filter_shows_server_message_and_app_keeps_running(seeded) -> None:
    app = make_app(seeded.uri, seeded.experiment_name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) == len(seeded.trace_ids),
                       what="the seeded list")
        screen = app.screen
        await pilot.press("slash")
        await type_text(pilot, "trace.bogus = 1")
        await pilot.press("enter")
        bar = screen.filter_bar
        await wait_for(pilot, lambda: bar.error, what="the filter error")
        assert bar.error.startswith("INVALID_PARAMETER_VALUE")
        assert "bogus" in bar.error
        assert app.user_filter == ""  # the previous filter stays
        assert len(app.buffer) == len(seeded.trace_ids)
        assert app.is_running
        # the next keypress works: the errors-only quick filter narrows the list
        await pilot.press("E")
        await wait_for(pilot, lambda: app.active_filter == "trace.status = 'ERROR'"
                       and app.conn_state == "live", what="errors only")
        assert not bar.error
        assert 0 < len(app.buffer) < len(seeded.trace_ids)
        assert all(r.state == "ERROR" for r in app.buffer.rows)
        # a good user filter is applied server-side and combined with the quick filter
        await pilot.press("slash")
        await type_text(pilot, "tags.route = 'search'")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.active_filter
                       == "tags.route = 'search' AND trace.status = 'ERROR'",
                       what="the combined filter")
        assert all(r.tags.get("route") == "search" and r.state == "ERROR"
                   for r in app.buffer.rows)


async def test_feedback_lands_in_mlflow_and_shows_at_once(mlflow_uri, fresh_experiment) -> None:
    name, exp_id = fresh_experiment
    ids = await asyncio.to_thread(seed_bulk, mlflow_uri, exp_id, 3, seed=103)
    app = make_app(mlflow_uri, name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) == 3, what="the list")
        table = app.table
        assert table is not None
        trace_id = table.current.trace_id
        await pilot.press("plus")
        await type_text(pilot, "spot on")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.last_assessment is not None, what="feedback")
        row = app.buffer.by_id[trace_id]
        assert [a.value for a in row.assessments] == [True]
        assert "+1 -0" in table.render_row(table.cursor, 140, False).text
        async with MlflowClient(mlflow_uri) as client:
            info = await client.get_trace_info(trace_id)
        found = [a for a in info.assessments if a.name == FEEDBACK_NAME]
        assert len(found) == 1
        assert found[0].value is True
        assert found[0].source_type == "HUMAN"
        assert found[0].rationale == "spot on"
        # thumbs down on a span from the trace view, no comment
        screen = await open_current(pilot)
        await pilot.press("j")
        span = screen.waterfall.current
        app.last_assessment = None
        await pilot.press("minus")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.last_assessment is not None, what="span feedback")
        assert app.last_assessment.span_id == span.span_id
        await wait_for(pilot, lambda: screen.detail.span is span, what="detail")
        assert "this span" in screen.detail.body_text("assessments")
        assert "+1 -1" in str(screen.headline.content)
        async with MlflowClient(mlflow_uri) as client:
            info = await client.get_trace_info(trace_id)
        by_span = [a for a in info.assessments if a.span_id == span.span_id]
        assert [a.value for a in by_span] == [False]
    assert set(ids) >= {trace_id}


@pytest.mark.slow
async def test_server_restart_shows_reconnecting_then_resumes(
        server_handle, mlflow_uri, fresh_experiment) -> None:
    name, exp_id = fresh_experiment
    app = make_app(mlflow_uri, name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        status = app.screen.status_line
        try:
            await asyncio.to_thread(server_handle.stop)
            await wait_for(pilot, lambda: app.conn_state == "reconnecting", timeout=30,
                           what="reconnecting")
            await wait_for(pilot, lambda: "reconnecting" in str(status.content), timeout=5,
                           what="the status line")
            assert "unreachable" in app.conn_error
        finally:
            await asyncio.to_thread(server_handle.start)
        await wait_for(pilot, lambda: app.conn_state == "live", timeout=60, what="live again")
        assert "live" in str(status.content)
        ids = await asyncio.to_thread(seed_bulk, mlflow_uri, exp_id, 2, seed=104)
        await wait_for(pilot, lambda: set(ids) <= app.buffer.by_id.keys(), timeout=30,
                       what="traces logged after the restart")
