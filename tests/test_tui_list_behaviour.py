"""The list on frozen traces: the selection stays where the user put it (issue 9, item 4)
and an 80x24 terminal keeps what matters (item 7)."""

from __future__ import annotations

from trace_tui.tui.widgets.trace_table import layout_columns

from .test_tui_static import frozen_app, listed, shifted


async def test_at_the_top_the_cursor_follows_the_newest_trace() -> None:
    app = frozen_app()
    async with app.run_test(size=(130, 36)) as pilot:
        await listed(pilot)
        table = app.table
        newest = app.buffer.rows[0]
        await pilot.press("g")
        app.ingest([shifted(newest, 1), shifted(newest, 2)])
        await _ticked(pilot, app, 10)
        assert table.cursor == 0
        assert table.current.trace_id == f"tr-{2:032x}"  # the newest, on screen
        assert table.new_above == 0


async def test_below_the_top_the_selection_keeps_its_trace_and_screen_line() -> None:
    app = frozen_app()
    async with app.run_test(size=(130, 12)) as pilot:  # more rows than lines
        await listed(pilot)
        table = app.table
        newest = app.buffer.rows[0]
        await pilot.press("j", "j")
        kept = table.current.trace_id
        line = table.row_screen_y(table.cursor)
        app.ingest([shifted(newest, n) for n in (1, 2, 3)])
        await _ticked(pilot, app, 11)
        assert table.current.trace_id == kept
        assert table.row_screen_y(table.cursor) == line  # the highlight did not move
        status = app.screen.status_line
        await _until(pilot, lambda: "↑ 3 new" in str(status.content))
        await pilot.press("enter")  # opens the trace the user sees highlighted
        await _until(pilot, lambda: getattr(app.screen, "trace_id", None) == kept)
        await pilot.press("escape")
        await pilot.press("g")
        await _until(pilot, lambda: "new" not in str(status.content))
        assert table.current.trace_id == f"tr-{3:032x}"


async def test_80x24_keeps_help_quit_count_rate_and_the_useful_columns() -> None:
    app = frozen_app(server_label="http://mlflow.internal.example.com:5000")
    async with app.run_test(size=(80, 24)) as pilot:
        await listed(pilot)
        await pilot.pause()
        footer = app.screen.query_one("KeyFooter")
        text = footer.render().plain[:80]
        assert " ? Help" in text and " q Quit" in text
        status = str(app.screen.status_line.content)
        visible = status[:78]
        assert "8 traces" in visible and "/min" in visible
        table = app.table
        header = table.render_header(table.scrollable_content_region.width).text
        for label in ("time", "st", "name", "duration", "tok in/out", "cost"):
            assert label in header, label
        row = table.render_row(0, table.scrollable_content_region.width, False).text
        info = app.buffer.rows[0]
        assert info.name[:10] in row


def test_wide_terminals_give_the_slack_to_useful_columns_not_the_name() -> None:
    widths = {c.key: c.width for c in layout_columns(160)}
    assert widths["name"] <= 56
    assert widths["who"] >= 30 and "assess" in widths
    narrow = {c.key: c.width for c in layout_columns(60)}
    assert {"name", "duration", "tokens", "status"} <= narrow.keys()


async def _ticked(pilot, app, n: int) -> None:
    await _until(pilot, lambda: len(app.buffer) == n and not app.pending)


async def _until(pilot, predicate, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


async def test_marked_traces_are_what_x_exports_and_feedback_applies_to(tmp_path) -> None:
    import json

    app = frozen_app(export_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await listed(pilot)
        table = app.table
        await pilot.press("space", "j", "space")  # marks rows 0 and 2
        marked = [app.buffer.rows[0].trace_id, app.buffer.rows[2].trace_id]
        assert app.selected_trace_ids == marked
        await pilot.press("x")
        await _until(pilot, lambda: len(list(tmp_path.glob("*.json"))) == 2)
        assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(marked)
        exported = json.loads((tmp_path / f"{marked[1]}.json").read_text())
        assert exported["trace_info"]["trace_id"] == marked[1]
        before = {r.trace_id: len(r.assessments) for r in app.buffer.rows}
        await pilot.press("plus")
        await pilot.press(*"ok", "enter")
        await _until(pilot, lambda: all(len(app.buffer.by_id[t].assessments) == before[t] + 1
                                        for t in marked))
        unmarked = [t for t in before if t not in marked]
        assert all(len(app.buffer.by_id[t].assessments) == before[t] for t in unmarked)
        assert table.current.trace_id not in marked  # the cursor row was not judged


async def test_compare_two_marked_traces_side_by_side() -> None:
    from trace_tui.tui.screens.compare import CompareScreen

    app = frozen_app()
    async with app.run_test(size=(130, 36)) as pilot:
        await listed(pilot)
        await pilot.press("c")  # nothing marked: a hint, no screen
        await pilot.pause()
        assert not isinstance(app.screen, CompareScreen)
        rag = [r.trace_id for r in app.buffer.rows if r.name == "rag_agent"]
        support = [r.trace_id for r in app.buffer.rows if r.name == "support_agent"]
        for trace_id in (rag[0], support[0]):
            app.table.go_to(trace_id)
            await pilot.press("space")
        await pilot.press("c")
        await _until(pilot, lambda: isinstance(app.screen, CompareScreen)
                     and app.screen.comparison is not None)
        screen = app.screen
        cmp = screen.comparison
        left_id, right_id = sorted((rag[0], support[0]),
                                   key=[r.trace_id for r in app.buffer.rows].index)
        assert (cmp.left.trace_id, cmp.right.trace_id) == (left_id, right_id)
        # different agents: every span is on one side only
        assert cmp.added == len(cmp.right.spans) and cmp.removed == len(cmp.left.spans)
        summary = str(screen.summary.content)
        assert f"+{cmp.added} added" in summary and f"-{cmp.removed} removed" in summary
        first = screen.table.row_text(0)
        assert first.startswith(("+", "-"))
        await pilot.press("escape")
        await _until(pilot, lambda: not isinstance(app.screen, CompareScreen))


async def test_compare_same_shape_traces_shows_deltas_and_divergence() -> None:
    from trace_tui.tui.screens.compare import CompareScreen

    app = frozen_app()
    async with app.run_test(size=(130, 36)) as pilot:
        await listed(pilot)
        rag = [r.trace_id for r in app.buffer.rows if r.name == "rag_agent"]
        for trace_id in rag[:2]:
            app.table.go_to(trace_id)
            await pilot.press("space")
        await pilot.press("c")
        await _until(pilot, lambda: isinstance(app.screen, CompareScreen)
                     and app.screen.comparison is not None)
        screen = app.screen
        cmp = screen.comparison
        shared = [r for r in cmp.rows if r.change == "same"]
        assert shared and shared[0].path == "rag_agent[0]"
        root_text = screen.table.row_text(cmp.rows.index(shared[0]))
        from trace_tui.core.render import fmt_duration
        assert fmt_duration(shared[0].left.duration_ms) in root_text
        assert fmt_duration(shared[0].right.duration_ms) in root_text
        summary = str(screen.summary.content)
        assert "first diverging output" in summary
        if cmp.first_divergence is not None:
            assert cmp.first_divergence.path in summary


async def test_clicking_a_key_in_the_footer_runs_it() -> None:
    """The footer's line is built when painted; a click lands on the key drawn there."""
    from trace_tui.tui.screens.help import HelpScreen

    app = frozen_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await listed(pilot)
        await pilot.pause()
        footer = app.screen.query_one("KeyFooter")
        line = footer.render().plain
        for start, end, action, _node in footer._hits:  # each key's cells are where it is drawn
            assert line[start:end].strip(), action
        x = line.index(" ? Help") + 1
        await pilot.click(footer, offset=(x, 0))
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
