"""Snapshot tests of the explorer on frozen traces (no server).

The fixtures ``tests/fixtures/demo-*.trace.json`` are ``traces/get`` JSON captured once from
the demo server: ``seed_bulk(uri, exp, 40, seed=2024, start_ms=1767268800000)`` (2026-01-01
12:00 UTC), eight of them kept (two with errors), the experiment id set to "1", the
``mlflow.artifactLocation`` tag dropped, and a few assessments added by hand. They are served
by ``StaticTraceSource``; the clock, time zone, theme and terminal size are fixed.

Update after reviewing the report: ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from trace_tui.config.settings import Settings
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.screens.trace_view import TraceViewScreen
from trace_tui.tui.sources import StaticTraceSource

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (130, 36)
FROZEN_NOW = 1767268830.0  # 2026-01-01 12:00:30 UTC, 30 s after the first fixture trace
TREE_TRACE = "tr-de282d59e7b0dfa436cc71a5915405c0"  # rag_agent with a nested router LLM
ERROR_TRACE = "tr-a1277707c9288d5416c099ee71fb8ee3"  # rag_agent that failed


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """List times render in local time: pin it."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def frozen_app() -> TraceExplorerApp:
    source = StaticTraceSource.from_files(sorted(FIXTURES.glob("*.trace.json")),
                                          experiment_name="demo-fixtures")
    settings = Settings(theme="textual-dark", buffer_size=100)
    return TraceExplorerApp("static://fixtures", settings=settings, source=source,
                            server_label="http://127.0.0.1:5000", clock=lambda: FROZEN_NOW,
                            persist_settings=False)


async def wait_until(pilot: Pilot, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


async def listed(pilot: Pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: len(app.buffer) == 8 and app.conn_state == "static")
    await pilot.pause()


async def open_trace(pilot: Pilot, trace_id: str) -> TraceViewScreen:
    app = pilot.app
    await listed(pilot)
    app.go_to_trace(trace_id)
    await wait_until(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                     and app.screen.trace_tree is not None)
    await pilot.pause(0.1)
    return app.screen


def test_snapshot_trace_list(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await listed(pilot)
        await pilot.press("j", "j")
        await pilot.pause()

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_trace_tree(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await open_trace(pilot, TREE_TRACE)
        await pilot.press("c", "j", "j", "j", "j")
        await pilot.pause(0.2)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_span_detail_error(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        screen = await open_trace(pilot, ERROR_TRACE)
        failing = next(i for i, s in enumerate(screen.waterfall.rows)
                       if s.is_error and not s.children)
        screen.waterfall.cursor = failing
        await pilot.press("t", "t", "t")  # inputs -> outputs -> attributes -> events
        await pilot.pause(0.2)
        assert screen.detail.active_tab == "events"

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_span_detail_inputs(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        screen = await open_trace(pilot, TREE_TRACE)
        router = next(i for i, s in enumerate(screen.waterfall.rows) if s.name == "llm_router")
        screen.waterfall.cursor = router
        await pilot.pause(0.2)

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=run_before)
