"""Fast Pilot tests of the explorer on frozen traces (``StaticTraceSource``, no server):
keys, sort, pause, buffer bound, palette, help, yank, export, search, hooks, repaint cost."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static

from trace_tui.config.settings import Settings
from trace_tui.tui.app import ScreenHook, TraceExplorerApp
from trace_tui.tui.commands import ExplorerCommands
from trace_tui.tui.screens.help import HelpScreen
from trace_tui.tui.screens.trace_view import TraceViewScreen
from trace_tui.tui.sources import StaticTraceSource

FIXTURES = Path(__file__).parent / "fixtures"
SIZE = (130, 36)
TREE_TRACE = "tr-de282d59e7b0dfa436cc71a5915405c0"


def frozen_app(**kwargs: object) -> TraceExplorerApp:
    source = StaticTraceSource.from_files(sorted(FIXTURES.glob("*.trace.json")))
    settings = Settings(theme="textual-dark", buffer_size=int(kwargs.pop("buffer_size", 100)))
    kwargs.setdefault("persist_settings", False)
    return TraceExplorerApp("static://fixtures", settings=settings, source=source,
                            clock=lambda: 1767268830.0, **kwargs)


async def wait_for(pilot: Pilot, predicate: Callable[[], object], timeout: float = 10.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def listed(pilot: Pilot, count: int = 8) -> TraceExplorerApp:
    app = pilot.app
    await wait_for(pilot, lambda: len(app.buffer) == count and app.conn_state == "static",
                   what="the frozen list")
    return app


async def open_trace(pilot: Pilot, trace_id: str = TREE_TRACE) -> TraceViewScreen:
    app = await listed(pilot)
    app.go_to_trace(trace_id)
    await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                   and app.screen.trace_tree is not None, what="the trace view")
    return app.screen


def shifted(info, n: int):
    """A new trace: ``info`` with another id, n seconds later."""
    return replace(info, trace_id=f"tr-{n:032x}", request_time_ms=info.request_time_ms + n * 1000)


async def test_help_lists_every_binding_with_its_id() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        ids = {row[3] for row in app.screen.rows}
        for needed in ("app.help", "app.quit", "explorer.filter", "explorer.errors_only",
                       "explorer.slow_only", "explorer.sort", "explorer.pause",
                       "explorer.experiment", "explorer.thumbs_up", "list.open", "list.down",
                       "list.half_down", "trace.search", "trace.critical", "trace.yank",
                       "trace.export", "tree.fold", "tree.unfold_all", "compare.back",
                       "session.back", "session.open"):
            assert needed in ids, needed
        assert "app.sampling" not in ids  # no hook registered
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="closed")


async def test_sort_shows_the_top_of_the_new_order_and_marks_the_column() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        table = app.table
        assert "time↓" in table.render_header(128).text
        await pilot.press("j", "j", "j")
        await pilot.press("o")
        assert app.buffer.sort == "duration"
        durations = [r.duration_ms for r in app.buffer.rows]
        assert durations == sorted(durations, reverse=True)
        assert table.cursor == 0 and table.current is app.buffer.rows[0]  # the slowest
        header = table.render_header(128).text
        assert "duration↓" in header and "time↓" not in header
        await pilot.press("o", "o")
        assert app.buffer.sort == "cost"
        assert "cost↓" in table.render_header(128).text
        await pilot.press("o")
        assert app.buffer.sort == "time"
        assert table.cursor == 0


async def test_pause_holds_arrivals_and_the_buffer_stays_bounded() -> None:
    app = frozen_app(buffer_size=10)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        newest = app.buffer.rows[0]
        await pilot.press("p")
        assert app.paused
        app.ingest([shifted(newest, 1)])
        await wait_for(pilot, lambda: "1 new" in str(app.screen.status_line.content),
                       what="paused status")
        assert len(app.buffer) == 8
        await pilot.press("p")
        await wait_for(pilot, lambda: len(app.buffer) == 9, what="resumed")
        app.ingest([shifted(newest, n) for n in range(2, 12)])
        await wait_for(pilot, lambda: app.buffer.rows[0].trace_id == f"tr-{11:032x}",
                       what="ingest")
        assert len(app.buffer) == 10  # bounded: the oldest went first
        times = [r.request_time_ms for r in app.buffer.rows]
        assert times == sorted(times, reverse=True)
        assert min(times) > newest.request_time_ms


async def test_palette_goes_to_a_trace_id() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        provider = ExplorerCommands(app.screen)
        hits = [h async for h in provider.search("tr-de282d59")]
        goto = [h for h in hits if "Go to trace tr-de282d59e7b0" in str(h.text)]
        assert goto
        goto[0].command()
        await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                       and app.screen.trace_tree is not None, what="the trace view")
        assert app.screen.trace_id == TREE_TRACE
        names = [str(h.text) for h in [h async for h in provider.search("theme")]]
        assert "Set theme: nord" in names
        names = [str(h.text) for h in [h async for h in provider.search("toggle live")]]
        assert "Toggle live" in names


async def test_yank_export_search_and_critical_path(tmp_path: Path) -> None:
    app = frozen_app(export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_trace(pilot)
        wf = screen.waterfall
        await pilot.press("y")
        span = json.loads(app.clipboard)
        assert span["span_id"] == wf.current.span_id and "children" not in span
        await pilot.press("Y")
        subtree = json.loads(app.clipboard)
        assert len(subtree["children"]) == len(wf.current.children)
        await pilot.press("x")
        await wait_for(pilot, lambda: app.last_export is not None, what="export")
        exported = json.loads(app.last_export.read_text())
        assert exported["trace_info"]["trace_id"] == TREE_TRACE
        assert app.last_export.parent == tmp_path
        assert app.last_export.stat().st_mode & 0o777 == 0o600  # production prompts inside
        # search reveals a folded match
        await pilot.press("H")
        assert wf.row_count == 1
        await pilot.press("slash")
        await pilot.press(*"router")
        await pilot.press("enter")
        assert wf.current.name == "llm_router"
        assert wf.row_count > 1
        await pilot.press("n")  # the only match: stays
        assert wf.current.name == "llm_router"
        await pilot.press("c")
        assert wf.show_critical
        assert wf.critical == set(wf.trace_tree.critical_path())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TraceViewScreen), what="back")


async def test_feedback_without_server_updates_row_and_view() -> None:
    from trace_tui.tui.messages import FeedbackLogged

    app = frozen_app()
    seen: list[object] = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = await open_trace(pilot)
        await pilot.press("plus")
        await pilot.press(*"nice", "enter")
        await wait_for(pilot, lambda: app.last_assessment is not None, what="feedback")
        assert app.last_assessment.span_id is None  # root -> trace-level
        assert app.last_assessment.rationale == "nice"
        assert "+2 -0" in str(screen.headline.content)
        assert [a.value for a in app.buffer.by_id[TREE_TRACE].assessments][-1] is True
        await wait_for(pilot, lambda: any(isinstance(m, FeedbackLogged) for m in seen),
                       what="the FeedbackLogged message")


async def test_screen_hooks_are_bound_only_when_registered() -> None:
    class Sampling(Screen[None]):
        def compose(self):
            yield Static("sampling")

    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("s")
        assert not isinstance(app.screen, Sampling)
        assert app.check_action("open_hook", ("sampling",)) is False  # hidden from the footer
        app.register_screen_hook(ScreenHook("sampling", "s", "Sampling", lambda a: Sampling()))
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, Sampling), what="hook screen")


async def test_theme_is_persisted(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "config.toml"
    monkeypatch.setenv("TRACE_TUI_CONFIG_FILE", str(config))
    app = frozen_app(persist_settings=True)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        app.set_theme("nord")
        await wait_for(pilot, lambda: config.exists() and 'theme = "nord"' in config.read_text(),
                       what="settings saved")
    assert Settings.load(config).theme == "nord"
    assert Settings.load(config).last_experiment == "frozen"


async def test_cursor_move_repaints_only_two_rows() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.pause(0.3)
        for widget in (app.table, None):
            if widget is None:
                screen = await open_trace(pilot)
                widget = screen.waterfall
                await pilot.pause(0.3)
            calls: list[int] = []
            original = widget.render_line

            def counting(y: int, original=original, calls=calls):
                calls.append(y)
                return original(y)

            widget.render_line = counting
            await pilot.press("j")
            await pilot.pause(0.1)
            widget.render_line = original
            assert 1 <= len(calls) <= 2, calls


async def test_experiment_picker_and_mouse_click() -> None:
    from trace_tui.tui.screens.modals import ExperimentPicker

    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentPicker), what="picker")
        assert [e.name for e in app.screen.experiments] == ["frozen"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExperimentPicker),
                       what="picker closed")
        table = app.table
        await pilot.click(table, offset=(20, 4))  # header line + row 3
        assert table.cursor == 3
        await pilot.click(table, offset=(20, 4), times=2)
        await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                       and app.screen.trace_tree is not None, what="opened by double click")
        assert app.screen.trace_id == app.buffer.rows[3].trace_id


async def test_a_mid_size_trace_decodes_off_the_event_loop(monkeypatch) -> None:
    """Decoding costs ~28 us a span: a 200-span trace (~6 ms) is decoded in a thread, so
    keys are answered meanwhile; a tiny one stays on the loop."""
    import threading

    import trace_tui.core.spans as spans_module

    payload = json.loads((FIXTURES / "demo-02.trace.json").read_text())
    root = next(s for s in payload["spans"] if not s.get("parent_span_id"))
    child = next(s for s in payload["spans"] if s.get("parent_span_id"))
    big = {"trace_info": {**payload["trace_info"], "trace_id": "tr-" + "b" * 32},
           "spans": [root, *({**child, "span_id": f"{n:016x}",
                              "parent_span_id": root["span_id"]} for n in range(200))]}
    threads: list[bool] = []
    decode = spans_module.decode_trace

    def recording(raw):
        threads.append(threading.current_thread() is threading.main_thread())
        return decode(raw)

    monkeypatch.setattr(spans_module, "decode_trace", recording)
    source = StaticTraceSource([payload, big])
    app = TraceExplorerApp("static://fixtures", settings=Settings(theme="textual-dark"),
                           source=source, persist_settings=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) == 2, what="the list")
        for trace_id, on_loop in ((big["trace_info"]["trace_id"], False), (TREE_TRACE, True)):
            threads.clear()
            app.go_to_trace(trace_id)
            await wait_for(pilot, lambda tid=trace_id: isinstance(app.screen, TraceViewScreen)
                           and app.screen.trace_tree is not None
                           and app.screen.trace_tree.trace_id == tid, what="the trace")
            assert threads == [on_loop], trace_id
            await pilot.press("escape")
