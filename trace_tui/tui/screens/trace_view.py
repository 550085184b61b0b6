"""The trace view: headline, span waterfall, span detail tabs and an in-trace search."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import time
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import Assessment, Span, TraceDecodeError, TraceInfo, TraceTree
from trace_tui.core.render import span_to_dict
from trace_tui.tui.widgets.key_footer import KeyFooter
from trace_tui.tui.widgets.span_detail import SpanDetail
from trace_tui.tui.widgets.span_waterfall import SpanWaterfall
from trace_tui.tui.widgets.status import TraceHeadline

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp

DETAIL_DELAY_S = 0.06  # coalesce detail updates while a key repeats


class TraceViewScreen(Screen[None]):
    """One trace. Constructed with an id (loaded in a worker) or with a ready tree."""

    AUTO_FOCUS = "SpanWaterfall"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="trace.back"),
        Binding("slash", "search", "Search", id="trace.search"),
        Binding("n", "search_next", "Next match", show=False, id="trace.search_next"),
        Binding("N", "search_prev", "Prev match", show=False, id="trace.search_prev"),
        Binding("c", "critical_path", "Critical path", id="trace.critical"),
        Binding("y", "yank(False)", "Yank span", id="trace.yank"),
        Binding("Y", "yank(True)", "Yank subtree", show=False, id="trace.yank_subtree"),
        Binding("x", "export", "Export", id="trace.export"),
        Binding("plus", "feedback(True)", "Good", key_display="+", id="trace.thumbs_up"),
        Binding("minus", "feedback(False)", "Bad", key_display="-", id="trace.thumbs_down"),
        Binding("p", "pager", "Pager", show=False, id="trace.pager"),
        Binding("t", "next_tab", "Next tab", show=False, id="trace.next_tab"),
        Binding("d", "toggle_detail", "Detail", show=False, id="trace.detail"),
        Binding("r", "reload", "Reload", show=False, id="trace.reload"),
    ]

    def __init__(self, trace_id: str = "", *, info: TraceInfo | None = None,
                 tree: TraceTree | None = None, raw: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.trace_id = trace_id
        self.info = info
        self.trace_tree: TraceTree | None = tree
        self.raw = raw
        self.search_query = ""
        self.load_error = ""
        # timestamps (perf_counter) for the benchmark: opened, raw JSON in, tree shown
        self.opened_at = time.perf_counter()
        self.fetched_at: float | None = None
        self.painted_at: float | None = None
        self.data_at: float | None = None
        self._detail_timer: Timer | None = None
        self._detail_span: Span | None = None
        self.prebuilt: asyncio.Future[None] | None = None  # mounted off screen (``prebuild``)

    def open(self, trace_id: str, *, info: TraceInfo | None = None,
             tree: TraceTree | None = None, raw: dict[str, Any] | None = None) -> None:
        """Show another trace in this (reused) screen: the app keeps one trace view and
        pushes it again, which saves composing the widgets on every Enter."""
        self.trace_id, self.info, self.trace_tree, self.raw = trace_id, info, tree, raw
        self.search_query = ""
        self.load_error = ""
        self.opened_at = time.perf_counter()
        self.fetched_at = self.painted_at = self.data_at = None
        if self.is_mounted:
            self._start()

    def _start(self) -> None:
        search = self.query_one("#trace-search", Input)
        search.remove_class("visible")
        self.waterfall.focus()
        if self.trace_tree is not None:
            self.show_tree(self.trace_tree, self.raw)
        elif self.trace_id:
            self.waterfall.clear()
            self.detail.show(None, None)
            self._detail_span = None
            self.load()

    @property
    def explorer(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        yield TraceHeadline(id="headline")
        yield SpanWaterfall(id="waterfall")
        yield SpanDetail(id="detail")
        yield Input(placeholder="search spans by name or attribute text (enter: find, "
                    "n/N: next/prev)", id="trace-search")
        yield KeyFooter()

    @property
    def waterfall(self) -> SpanWaterfall:
        return self.query_one(SpanWaterfall)

    @property
    def detail(self) -> SpanDetail:
        return self.query_one(SpanDetail)

    @property
    def headline(self) -> TraceHeadline:
        return self.query_one(TraceHeadline)

    def on_mount(self) -> None:
        self._start()

    # ------------------------------------------------------------------ loading

    @work(exclusive=True, group="trace")
    async def load(self) -> None:
        self.headline.show_loading(self.trace_id, self.info.name if self.info else "")
        try:
            tree, raw = await self.explorer.fetch_trace(self.trace_id, screen=self)
        except (MlflowApiError, MlflowUnavailableError, TraceDecodeError) as exc:
            self.load_error = str(exc)
            self.explorer.show_trace_view()
            self.headline.show_error(self.trace_id, str(exc))
            return
        self.show_tree(tree, raw)

    @property
    def fetching(self) -> bool:
        """A trace is being fetched (no tree, no error yet)."""
        return bool(self.trace_id) and self.trace_tree is None and not self.load_error

    def show_tree(self, tree: TraceTree, raw: dict[str, Any] | None = None) -> None:
        """Show a loaded trace (the benchmark times from here to the paint)."""
        self.data_at = time.perf_counter()
        self.painted_at = None
        self.explorer.show_trace_view()  # opened, not pushed yet: push before filling it
        self.trace_tree, self.raw = tree, raw
        self.load_error = ""
        self._headline()
        self.waterfall.set_tree(tree)
        self.call_after_refresh(self._mark_painted)
        self._detail_span = None
        self._show_detail(after_refresh=True)  # the tree paints first, then the detail

    def _mark_painted(self) -> None:
        self.painted_at = time.perf_counter()

    def _headline(self) -> None:
        if self.trace_tree is not None:
            self.headline.show_tree(self.trace_tree, critical=self.waterfall.show_critical,
                                    search=self.search_query)

    # ------------------------------------------------------------------ detail

    @on(SpanWaterfall.Highlighted)
    def _highlighted(self, event: SpanWaterfall.Highlighted) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, self._show_detail)

    def _show_detail(self, after_refresh: bool = False) -> None:
        self._detail_timer = None
        if not self.detail.display:
            return  # hidden (d): nothing to render until it is shown again
        span = self.waterfall.current
        if span is self._detail_span and span is not None:
            return
        self._detail_span = span
        self.detail.show(span, self.trace_tree, after_refresh=after_refresh)

    def feedback_logged(self, assessment: Assessment) -> None:
        """Feedback for this trace landed: show it in the headline and the detail."""
        if self.trace_tree is None:
            return
        known = {a.assessment_id for a in self.trace_tree.info.assessments}
        if assessment.assessment_id not in known:
            self.trace_tree.info.assessments.append(assessment)
        self._headline()
        self.detail.show_assessments()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        search = self.query_one("#trace-search", Input)
        if search.has_class("visible"):
            search.remove_class("visible")
            self.waterfall.focus()
            return
        self.app.pop_screen()

    def action_search(self) -> None:
        search = self.query_one("#trace-search", Input)
        search.add_class("visible")
        search.value = self.search_query
        search.focus()

    @on(Input.Submitted, "#trace-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.remove_class("visible")
        self.waterfall.focus()
        self.search_query = event.value.strip()
        self._run_search(forward=True)

    def _run_search(self, forward: bool) -> None:
        if not self.search_query:
            self.waterfall.search("")
            self._headline()
            return
        span, count = self.waterfall.search(self.search_query, forward=forward)
        self._headline()
        if span is None:
            self.notify(f"no span matches {self.search_query!r}", severity="warning")
        else:
            self.notify(f"{count} span(s) match {self.search_query!r}", timeout=2)

    def action_search_next(self) -> None:
        self._run_search(forward=True)

    def action_search_prev(self) -> None:
        self._run_search(forward=False)

    def action_critical_path(self) -> None:
        self.waterfall.toggle_critical()
        self._headline()

    def action_yank(self, subtree: bool) -> None:
        span = self.waterfall.current
        if span is None:
            return
        text = json.dumps(span_to_dict(span, subtree=subtree), indent=2, ensure_ascii=False,
                          default=str)
        self.app.copy_to_clipboard(text)
        what = "subtree of" if subtree else "span"
        self.notify(f"copied {what} {span.name!r} as JSON ({len(text):,} bytes, OSC 52)")

    def action_export(self) -> None:
        self.explorer.export_trace(self.trace_id, tree=self.trace_tree, raw=self.raw)

    def action_feedback(self, value: bool) -> None:
        span = self.waterfall.current
        if span is None or self.trace_tree is None:
            return
        on_span = span.parent_id is not None and span not in self.trace_tree.roots
        self.explorer.ask_feedback(self.trace_id, value,
                                   span_id=span.span_id if on_span else None,
                                   label=(f"span {span.name!r}" if on_span
                                          else self.trace_tree.name or self.trace_id))

    def action_pager(self) -> None:
        text = self.detail.full_text()
        if not text:
            self.notify("nothing to page in this tab", severity="warning")
            return
        pager = os.environ.get("PAGER") or "less -R"
        try:
            with self.app.suspend():
                subprocess.run(shlex.split(pager), input=text.encode(), check=False)
        except SuspendNotSupported:
            self.notify("this terminal cannot hand over to $PAGER", severity="warning")
        except OSError as exc:
            self.notify(f"$PAGER failed: {exc}", severity="error")

    def action_next_tab(self) -> None:
        self.detail.next_tab()

    def action_toggle_detail(self) -> None:
        self.detail.display = not self.detail.display
        if self.detail.display:
            self._show_detail()

    def action_reload(self) -> None:
        self.trace_tree = None
        self.load()


async def prebuild(app: TraceExplorerApp, view: TraceViewScreen) -> None:
    """Compose, style and lay out ``view`` off screen (installed, not pushed), so the first
    Enter pushes a ready screen. Textual has no public call for this: ``push_screen`` does
    the same mount through ``_get_screen`` (8.x); a view already pushed is left alone."""
    if view.is_running:
        return
    _screen, mounted = app._get_screen(view)
    view.prebuilt = asyncio.ensure_future(mounted())
    await view.prebuilt
    if view not in app.screen_stack and app.size:
        view._refresh_layout(app.size)
