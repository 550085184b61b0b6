"""Two marked traces side by side: span trees aligned by path (``core/compare.py``), spans
added or removed, latency and token deltas per span, and the first output that diverges."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.strip import Strip

from trace_tui.core.compare import SpanPair, TraceComparison, compare
from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.render import fmt_count, fmt_duration
from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.key_footer import KeyFooter
from trace_tui.tui.widgets.line_list import ColumnList
from trace_tui.tui.widgets.safe import SafeStatic

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp

CHANGE_MARK = {"same": " ", "added": "+", "removed": "-"}
PREVIEW = 70  # characters of each side of the diverging output


def _signed_ms(delta: float | None) -> str:
    if delta is None:
        return ""
    return ("+" if delta >= 0 else "-") + fmt_duration(abs(delta))


def _signed(delta: int | None) -> str:
    if delta is None:
        return ""
    return f"{delta:+,}" if delta else "0"


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str,
                                                          ensure_ascii=False)
    text = safe_text(text)
    return text if len(text) <= PREVIEW else text[:PREVIEW - 1] + "…"


class CompareTable(ColumnList[SpanPair]):
    """One row per aligned span: ``± path  A dur  B dur  Δ  A tok  B tok  Δ``."""

    HEADER_LINES = 1
    COLUMNS = (("", 1, "left"), ("span", 0, "left"), ("A dur", 8, "right"),
               ("B dur", 8, "right"), ("Δ dur", 9, "right"), ("A tok", 7, "right"),
               ("B tok", 7, "right"), ("Δ tok", 7, "right"))

    DEFAULT_CSS = """
    CompareTable { height: 1fr; background: $surface; }
    """

    def cells(self, index: int) -> list[str]:
        row = self.rows[index]
        left, right = row.left, row.right
        tok_l = left.tokens_total.total if left is not None else None
        tok_r = right.tokens_total.total if right is not None else None
        mark = CHANGE_MARK[row.change] if not row.error_changed else "!"
        cells = [mark, "  " * row.depth + row.name,
                 fmt_duration(left.duration_ms) if left else "",
                 fmt_duration(right.duration_ms) if right else "",
                 _signed_ms(row.duration_delta_ms),
                 fmt_count(tok_l) if tok_l else "", fmt_count(tok_r) if tok_r else "",
                 _signed(row.tokens_delta) if (tok_l or tok_r) else ""]
        return cells

    def render_row(self, index: int, width: int, is_cursor: bool) -> Strip:
        row = self.rows[index]
        style = self.rich_style
        if row.change == "added":
            style += Style(color="green")
        elif row.change == "removed":
            style += Style(color="red")
        elif row.error_changed:
            style += Style(color="yellow", bold=True)
        if is_cursor:
            style += Style(reverse=True)
        return self.strip([(self.row_text(index, width), style)], width, style)


class CompareScreen(Screen[None]):
    """Compare two traces (marked in the list)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
    ]

    DEFAULT_CSS = """
    CompareScreen #compare-summary { height: auto; background: $panel; padding: 0 1; }
    """

    def __init__(self, left_id: str, right_id: str) -> None:
        super().__init__()
        self.left_id, self.right_id = left_id, right_id
        self.comparison: TraceComparison | None = None

    @property
    def explorer(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        yield SafeStatic(f"comparing {self.left_id} with {self.right_id}…",
                         id="compare-summary")
        yield CompareTable(id="compare-table")
        yield KeyFooter()

    @property
    def summary(self) -> SafeStatic:
        return self.query_one("#compare-summary", SafeStatic)

    @property
    def table(self) -> CompareTable:
        return self.query_one(CompareTable)

    def on_mount(self) -> None:
        self.table.focus()
        self._load()

    @work(exclusive=True, group="compare")
    async def _load(self) -> None:
        try:
            left, _ = await self.explorer.fetch_trace(self.left_id)
            right, _ = await self.explorer.fetch_trace(self.right_id)
        except (MlflowApiError, MlflowUnavailableError) as exc:
            self.summary.update(Text(f"✗ {exc}", style="bold red"))
            return
        self.show(compare(left, right))

    def show(self, comparison: TraceComparison) -> None:
        self.comparison = comparison
        left, right = comparison.left, comparison.right
        text = Text()
        for tag, tree in (("A", left), ("B", right)):
            text.append(f"{tag} ", style="bold reverse")
            text.append(f" {safe_text(tree.name) or '(unnamed)'}", style="bold")
            text.append(f"  {tree.trace_id}", style="dim")
            text.append(f"  {tree.status}  {fmt_duration(tree.duration_ms)}"
                        f"  {fmt_count(tree.tokens.total)} tok  {len(tree.spans)} spans\n")
        text.append("Δ ", style="bold")
        text.append(f"duration {_signed_ms(comparison.duration_delta_ms)}  "
                    f"tokens {_signed(comparison.tokens_delta)}  ")
        text.append(f"+{comparison.added} added", style="green")
        text.append("  ")
        text.append(f"-{comparison.removed} removed", style="red")
        div = comparison.first_divergence
        text.append("\nfirst diverging output: ", style="bold")
        if div is None:
            text.append("none (the shared spans' outputs are equal)", style="italic")
        else:
            text.append(safe_text(div.path), style="bold yellow")
            text.append(f"\n  A: {_preview(div.left)}\n  B: {_preview(div.right)}")
        self.summary.update(text)
        self.table.set_rows(comparison.rows)
