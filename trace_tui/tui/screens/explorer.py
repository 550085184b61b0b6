"""The main screen: status line, filter bar, the trace list and the footer."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen

from trace_tui.tui.widgets.key_footer import KeyFooter
from trace_tui.tui.widgets.status import FilterBar, StatusLine
from trace_tui.tui.widgets.trace_table import TraceTable

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp


class ExplorerScreen(Screen[None]):
    """The trace list. All state lives in the app; this screen shows it and forwards keys."""

    AUTO_FOCUS = "TraceTable"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "edit_filter", "Filter", id="explorer.filter"),
        Binding("E", "toggle_errors", "Errors only", id="explorer.errors_only"),
        Binding("S", "toggle_slow", "Slow only", id="explorer.slow_only"),
        Binding("o", "cycle_sort", "Sort", id="explorer.sort"),
        Binding("p", "toggle_live", "Pause/live", id="explorer.pause"),
        Binding("X", "pick_experiment", "Experiment", id="explorer.experiment"),
        Binding("plus", "feedback(True)", "Good", key_display="+", id="explorer.thumbs_up"),
        Binding("minus", "feedback(False)", "Bad", key_display="-",
                id="explorer.thumbs_down"),
        Binding("x", "export", "Export", show=False, id="explorer.export"),
        Binding("c", "compare", "Compare 2 marked", show=False, id="explorer.compare"),
        Binding("f", "drill_down", "Filter on this trace's session/user/route/…",
                show=False, id="explorer.drill_down"),
        Binding("V", "session", "Session view (or of the marked traces)", show=False,
                id="explorer.session"),
        Binding("D", "add_to_dataset", "Add marked traces to an evaluation dataset",
                show=False, id="explorer.dataset"),
        Binding("r", "reload", "Reload", show=False, id="explorer.reload"),
        Binding("escape", "clear_error", "Clear error", show=False, id="explorer.clear_error"),
    ]

    @property
    def explorer(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        # Kept as attributes, not queried: the app's timers reach them while the screen is
        # still composing or already tearing down, when a query finds nothing.
        self.status_line = StatusLine(id="status-line")
        self.filter_bar = FilterBar(id="filter-bar")
        self.table = TraceTable(self.explorer.buffer, id="trace-table")
        yield self.status_line
        yield self.filter_bar
        yield self.table
        yield KeyFooter()

    async def on_mount(self) -> None:
        # awaited: the screen's first frame comes after it (with the first page's rows)
        await self.explorer.explorer_mounted(self)

    # ------------------------------------------------------------------ actions

    async def action_edit_filter(self) -> None:
        await self.filter_bar.start_editing()

    def action_toggle_errors(self) -> None:
        self.explorer.toggle_errors_only()

    def action_toggle_slow(self) -> None:
        self.explorer.toggle_slow_only()

    def action_cycle_sort(self) -> None:
        self.explorer.cycle_sort()

    def action_toggle_live(self) -> None:
        self.explorer.toggle_live()

    def action_pick_experiment(self) -> None:
        self.explorer.pick_experiment()

    def action_feedback(self, value: bool) -> None:
        """On the marked traces (space), else on the one under the cursor."""
        targets = self.explorer.actions.target_trace_ids()
        if targets:
            self.explorer.actions.ask_feedback_many(targets, value)

    def action_export(self) -> None:
        """Each marked trace (space), else the one under the cursor, as JSON."""
        targets = self.explorer.actions.target_trace_ids()
        if targets:
            self.explorer.actions.export_traces(targets)

    def action_drill_down(self) -> None:
        info = self.table.current
        if info is not None:
            self.explorer.actions.drill_down(info)

    def action_session(self) -> None:
        info = self.table.current
        if info is not None:
            self.explorer.actions.open_session(info)

    def action_add_to_dataset(self) -> None:
        from trace_tui.tui.dataset_action import ask_add_to_dataset

        ask_add_to_dataset(self.explorer, self.explorer.actions.target_trace_ids())

    def action_compare(self) -> None:
        self.explorer.actions.compare_marked()

    def action_reload(self) -> None:
        self.explorer.restart_stream()

    def action_clear_error(self) -> None:
        self.filter_bar.set_error("")
        self.explorer.cancel_trace_open()  # Enter then Escape: the trace view stays away

    # ------------------------------------------------------------------ events

    @on(TraceTable.Opened)
    def _open(self, event: TraceTable.Opened) -> None:
        self.explorer.open_trace(event.info.trace_id, event.info)

    @on(TraceTable.MarksChanged)
    def _marks_changed(self) -> None:
        self.explorer.save_marks()

    @on(FilterBar.Submitted)
    def _filter_submitted(self, event: FilterBar.Submitted) -> None:
        self.table.focus()
        self.explorer.apply_filter(event.value)

    @on(FilterBar.Cancelled)
    def _filter_cancelled(self) -> None:
        self.table.focus()
