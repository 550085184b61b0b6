"""Opening traces in the explorer's one trace view (``StaticTraceSource``, no server): the
view is built after the list's first paint and reused for every trace, a trace that loads
quickly is shown with its tree in the first frame, and a slow one shows "loading…" while
keys keep answering."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.big_trace import big_trace_payload
from tests.test_tui_static import SIZE, TREE_TRACE, frozen_app, listed, wait_for
from trace_tui.config.settings import Settings
from trace_tui.tui.app import LOADING_PUSH_S, TraceExplorerApp
from trace_tui.tui.screens.explorer import ExplorerScreen
from trace_tui.tui.screens.trace_view import TraceViewScreen
from trace_tui.tui.sources import StaticTraceSource

OTHER_TRACE = "tr-a1277707c9288d5416c099ee71fb8ee3"


def shown(view: TraceViewScreen) -> tuple[str, str, list[str], str]:
    """What the user sees of the trace: headline, first waterfall row, span ids, detail."""
    assert view.trace_tree is not None
    return (str(view.headline.content), view.waterfall.row_text(0),
            [s.span_id for s in view.waterfall.rows], view.detail.body_text("attributes"))


async def test_the_prebuilt_view_is_reused_and_shows_the_trace_opened() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        # built and laid out while the list is on screen, before any Enter
        await wait_for(pilot, lambda: app._trace_view is not None
                       and app._trace_view.is_mounted, what="the pre-built trace view")
        view = app._trace_view
        assert isinstance(app.screen, ExplorerScreen)
        seen: dict[str, tuple] = {}
        for trace_id in (TREE_TRACE, OTHER_TRACE, TREE_TRACE):
            assert app.table is not None and app.table.go_to(trace_id)
            await pilot.press("enter")
            await wait_for(pilot, lambda tid=trace_id: app.screen is view
                           and view.trace_tree is not None
                           and view.trace_tree.trace_id == tid, what=trace_id)
            await pilot.pause(0.1)  # the detail renders after the tree's first paint
            now = shown(view)
            tree = view.trace_tree
            assert tree is not None
            assert trace_id in now[0] and f"{len(tree.spans):,} spans" in now[0]
            assert tree.roots[0].name in now[1]
            assert sorted(now[2]) == sorted(tree.spans)
            assert f"span_id {tree.roots[0].span_id}" in now[3]
            assert seen.setdefault(trace_id, now) == now  # the same trace reads the same
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen), what="list")
        assert seen[TREE_TRACE][2] != seen[OTHER_TRACE][2]
        assert app._trace_view is view


async def test_a_quick_trace_is_shown_with_its_tree_in_its_first_frame(monkeypatch) -> None:
    import trace_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "LOADING_PUSH_S", 10.0)  # a loaded machine cannot race it
    app = frozen_app()
    pushed: list[bool] = []
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await wait_for(pilot, lambda: app._trace_view is not None
                       and app._trace_view.is_mounted, what="the pre-built trace view")
        app.screen_change_signal.subscribe(app, lambda screen: pushed.append(
            isinstance(screen, TraceViewScreen) and screen.trace_tree is not None))
        app.go_to_trace(TREE_TRACE)
        await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                       and app.screen.painted_at is not None, what="the trace view")
        assert pushed == [True]  # no "loading…" frame first


class HeldSource(StaticTraceSource):
    """Serves one trace only when ``release`` is set (a slow server)."""

    def __init__(self, payloads: list[dict[str, Any]], held: str) -> None:
        super().__init__(payloads)
        self.held = held
        self.release = asyncio.Event()

    async def get_trace_json(self, trace_id: str) -> dict[str, Any]:
        if trace_id == self.held:
            await self.release.wait()
        return await super().get_trace_json(trace_id)


async def test_keys_answer_while_a_big_trace_loads() -> None:
    big = big_trace_payload(10_000)
    small = big_trace_payload(10, seed=3, trace_hex="5a11" * 8)
    small["trace_info"]["request_time"] = "2026-01-01T12:00:09.000Z"
    big_id, small_id = big["trace_info"]["trace_id"], small["trace_info"]["trace_id"]
    source = HeldSource([big, small], held=big_id)
    app = TraceExplorerApp("static://", settings=Settings(theme="textual-dark"), source=source,
                           persist_settings=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) == 2, what="the list")
        await wait_for(pilot, lambda: app._trace_view is not None
                       and app._trace_view.is_mounted, what="the pre-built trace view")
        view = app._trace_view
        app.go_to_trace(big_id)
        # still loading after LOADING_PUSH_S: the view is shown with "loading…"
        await wait_for(pilot, lambda: app.screen is view, timeout=LOADING_PUSH_S + 5,
                       what="the loading view")
        assert "loading…" in str(view.headline.content) and view.trace_tree is None
        await pilot.press("escape")  # answered while the trace loads
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen), what="list")
        assert app.table is not None
        cursor = app.table.cursor
        await pilot.press("j" if cursor == 0 else "k")
        assert app.table.cursor != cursor
        source.release.set()  # the big trace arrives while the list is shown: it stays
        await wait_for(pilot, lambda: view.trace_tree is not None, what="the big tree")
        await pilot.pause(LOADING_PUSH_S + 0.1)
        assert isinstance(app.screen, ExplorerScreen)
        app.go_to_trace(small_id)  # the reused view shows the trace asked for, not the big one
        await wait_for(pilot, lambda: app.screen is view and view.trace_tree is not None
                       and view.trace_tree.trace_id == small_id, what="the small trace")
        assert len(view.waterfall.rows) == 10 and "10 spans" in str(view.headline.content)
        app.go_to_trace(big_id)  # and the big one again, from the view itself
        await wait_for(pilot, lambda: view.trace_tree is not None
                       and view.trace_tree.trace_id == big_id, what="the big trace again")
        assert len(view.waterfall.rows) == 10_000
        assert "10,000 spans" in str(view.headline.content)
        await pilot.press("j")
        assert view.waterfall.cursor == 1


async def test_escape_before_the_view_shows_keeps_the_list(monkeypatch) -> None:
    import trace_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "LOADING_PUSH_S", 10.0)  # not pushed before the tree
    big = big_trace_payload(2_000)
    source = HeldSource([big], held=big["trace_info"]["trace_id"])
    app = TraceExplorerApp("static://", settings=Settings(theme="textual-dark"), source=source,
                           persist_settings=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) == 1, what="the list")
        await wait_for(pilot, lambda: app._trace_view is not None
                       and app._trace_view.is_mounted, what="the pre-built trace view")
        view = app._trace_view
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.trace_id == big["trace_info"]["trace_id"],
                       what="the open")
        await pilot.press("escape")  # changed my mind while it loads, before it shows
        source.release.set()
        await wait_for(pilot, lambda: view.trace_tree is not None, what="the tree")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExplorerScreen) and view not in app.screen_stack
