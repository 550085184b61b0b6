"""The help screen: every key binding of the explorer with its id (for keymaps)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from trace_tui.core.render import QUEUE_BADGES, SPAN_MARKERS
from trace_tui.tui.screens.explorer import ExplorerScreen
from trace_tui.tui.screens.trace_view import TraceViewScreen
from trace_tui.tui.widgets.line_list import LineList
from trace_tui.tui.widgets.span_waterfall import SpanWaterfall
from trace_tui.tui.widgets.status import FilterBar
from trace_tui.tui.widgets.trace_table import TraceTable


def legend_rows() -> list[tuple[str, str, str]]:
    """(where, mark, meaning) for the letters and marks the list and the trace view show."""
    kinds: dict[str, list[str]] = {}
    for kind, letter in SPAN_MARKERS.items():
        kinds.setdefault(letter, []).append(kind)
    rows = [("span kind", letter, " / ".join(names)) for letter, names in kinds.items()]
    queue_words = {"queued": "sampled by a policy, waiting for its judges",
                   "done": "judged: every judge of the policy gave a verdict",
                   "failed": "judging failed (f on the evaluation screen retries)"}
    rows += [("list feedback", badge, queue_words.get(state, state))
             for state, badge in QUEUE_BADGES.items()]
    rows += [
        ("list feedback", "+N -M", "thumbs up / down left by people"),
        ("list feedback", "Jp/t", "judge verdicts: p passed out of t (errors count as not passed)"),
        ("trace view", "✗", "the span (or trace) ended in ERROR"),
        ("trace view", "»", "on the critical path (c), also on spans in error"),
        ("trace view", "tok", "the span's own tokens"),
        ("trace view", "Σtok Σcost", "the subtree's tokens / cost, by MLflow's server rule"),
        ("trace view", "*", "after Σtok/Σcost: the span reports its own usage, which stands "
         "for its whole subtree, so its children's are not added and Σ can be smaller than a "
         "child's (Attributes tab: how much is left out)"),
        ("trace view", "⚠", "the server's stored trace total (tokens or cost, what the list "
         "shows) disagrees with the spans"),
        ("assessments", "✓ / ✗ chip", "a verdict that reads as pass (green) or fail (red)"),
    ]
    return rows


def binding_rows(scopes: Iterable[tuple[str, Sequence[BindingType]]]) -> list[tuple[str, ...]]:
    """(scope, keys, description, id) for every Binding in ``scopes``."""
    rows: list[tuple[str, ...]] = []
    for scope, bindings in scopes:
        for b in bindings:
            if not isinstance(b, Binding):
                continue
            keys = b.key_display or ", ".join(
                {"question_mark": "?", "slash": "/", "plus": "+", "minus": "-",
                 "left_square_bracket": "[", "right_square_bracket": "]"}.get(k, k)
                for k in b.key.split(","))
            rows.append((scope, keys, b.description or b.action, b.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key binding with its id and description."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 110; height: 90%; border: thick $primary; background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, rows: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title="trace-tui keys  (esc to close, ctrl+p for the command palette)",
                      expand=True, show_edge=False, header_style="bold")
        table.add_column("where", style="dim", no_wrap=True)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("what")
        table.add_column("id (for keymaps)", style="dim", no_wrap=True)
        last = ""
        for scope, keys, desc, bid in self.rows:
            table.add_row(scope if scope != last else "", keys, desc, bid)
            last = scope
        legend = Table(title="what the marks mean", expand=True, show_edge=False,
                       header_style="bold")
        legend.add_column("where", style="dim", no_wrap=True)
        legend.add_column("mark", style="bold cyan", no_wrap=True)
        legend.add_column("meaning")
        last = ""
        for where, mark, meaning in legend_rows():
            legend.add_row(where if where != last else "", mark, meaning)
            last = where
        with VerticalScroll():
            yield Static(table)
            yield Static(legend, id="help-legend")

    def action_close(self) -> None:
        self.dismiss(None)


def explorer_help_rows(app_bindings: Sequence[BindingType]) -> list[tuple[str, ...]]:
    """The help table: ``app_bindings`` (the app's own and its screen hooks') everywhere,
    then each screen's and widget's bindings."""
    # Imported here: these screens open from the list, so the start path need not load them.
    from trace_tui.tui.screens.compare import CompareScreen
    from trace_tui.tui.screens.session import SessionScreen, SessionTable

    designer: list[tuple[str, Sequence[BindingType]]] = []
    if {b.id for b in app_bindings if isinstance(b, Binding)} & {"app.sampling",
                                                                 "app.designer"}:
        from trace_tui.tui.screens.designer import DesignerScreen
        from trace_tui.tui.screens.designer_edits import EditForm

        designer.append(("designer", [
            *DesignerScreen.BINDINGS, *EditForm.BINDINGS,
            Binding("enter", "apply", "Apply a form (w, J, c, C, u)", id="designer.edit_apply")]))
    return binding_rows([
        ("everywhere", [*app_bindings,
                        Binding("ctrl+p", "command_palette", "Command palette",
                                id="app.palette"),
                        Binding("ctrl+q", "quit", "Quit", id="app.force_quit")]),
        ("trace list", [*ExplorerScreen.BINDINGS, *TraceTable.BINDINGS]),
        ("filter bar", [Binding("enter", "apply", "Apply the filter", id="filter.apply"),
                        *FilterBar.BINDINGS]),
        ("trace view", [*TraceViewScreen.BINDINGS, *SpanWaterfall.BINDINGS]),
        ("compare", CompareScreen.BINDINGS),
        ("session", [*SessionScreen.BINDINGS, *SessionTable.BINDINGS]),
        *designer,
        ("lists (all)", LineList.BINDINGS),
    ])
