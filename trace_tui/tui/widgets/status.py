"""Small companions of the line-API lists: the status line, the filter bar and the trace
headline. Their content is rebuilt from plain values, so they render the same with or without
a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input

from trace_tui.core.model import TraceTree
from trace_tui.core.render import (
    assessment_summary,
    fmt_cost,
    fmt_count,
    fmt_duration,
    fmt_time,
    fmt_tokens,
    sparkline,
)
from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.safe import SafeStatic

STATE_STYLES = {
    "live": ("● live", "bold green"),
    "paused": ("⏸ paused", "bold yellow"),
    "loading": ("… loading", "bold cyan"),
    "connecting": ("… connecting", "bold cyan"),
    "reconnecting": ("⟳ reconnecting", "bold red"),
    "static": ("■ static", "bold"),
    "error": ("✗ error", "bold red"),
}


@dataclass
class ListStatus:
    """Everything the status line shows."""

    state: str = "connecting"
    error: str = ""
    uri: str = ""
    experiment: str = ""
    count: int = 0
    capacity: int = 0
    pending: int = 0
    rate_per_min: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    spark: list[float] = field(default_factory=list)
    new_above: int = 0  # rows that arrived above the selection (not following the top)


class StatusLine(SafeStatic):
    """``● live │ N traces │ rate │ experiment │ uri │ p50/p95/p99 sparkline``."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    SPARK_WIDTH = 24

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, multiline=False)
        self.status = ListStatus()

    def set_status(self, status: ListStatus) -> None:
        self.status = status
        self.update(self.render_status(status), layout=False)  # one line, fixed height

    def render_status(self, s: ListStatus) -> Text:
        """Most useful first, so a narrow terminal keeps the state, count and rate."""
        label, style = STATE_STYLES.get(s.state, (s.state, "bold"))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(label, style=style)
        if s.state == "paused" and s.pending:
            text.append(f" ({s.pending} new)", style="yellow")
        if s.new_above:
            text.append(f"  ↑ {s.new_above} new", style="bold yellow")
        if s.state == "reconnecting" and s.error:
            text.append(f": {s.error}", style="red")
        sep = ("  │ ", "dim")
        text.append(*sep)
        full = " (buffer full)" if s.capacity and s.count >= s.capacity else ""
        text.append(f"{s.count:,} traces{full}")
        text.append(*sep)
        text.append(f"{s.rate_per_min:.1f}/min")
        if s.experiment:
            text.append(*sep)
            text.append(s.experiment, style="bold")
        if s.uri:
            text.append(*sep)
            text.append(s.uri)
        if s.p50 is not None:
            text.append(*sep)
            text.append(f"p50 {fmt_duration(s.p50)} p95 {fmt_duration(s.p95)} "
                        f"p99 {fmt_duration(s.p99)} ")
            text.append(sparkline(s.spark, self.SPARK_WIDTH), style="cyan")
        return text


class FilterBar(Vertical):
    """Shows the active filter; ``/`` edits it. The server's error shows inline below.

    The input is mounted the first time ``/`` is pressed, not with the screen: an ``Input``
    (its CSS, its mount) costs the first frame ~5 ms of CPU for a field that is hidden."""

    DEFAULT_CSS = """
    FilterBar { height: auto; }
    FilterBar #filter-summary { height: 1; padding: 0 1; color: $text-muted; }
    FilterBar #filter-input { display: none; border: none; height: 1; padding: 0 1; }
    FilterBar.editing #filter-input { display: block; }
    FilterBar.editing #filter-summary { display: none; }
    FilterBar #filter-error { display: none; height: auto; padding: 0 1; color: $text-error; }
    FilterBar.has-error #filter-error { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", show=False, id="filter.cancel"),
    ]

    class Submitted(Message):
        def __init__(self, value: str) -> None:
            self.value = value
            super().__init__()

    class Cancelled(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.user_filter = ""
        self.quick: list[str] = []
        self.sort = "time"
        self.error = ""

    def compose(self) -> ComposeResult:
        yield SafeStatic("", id="filter-summary", multiline=False)
        yield SafeStatic("", id="filter-error")

    def on_mount(self) -> None:
        self._render_summary()

    def set_state(self, user_filter: str, quick: list[str], sort: str) -> None:
        self.user_filter, self.quick, self.sort = user_filter, quick, sort
        self._render_summary()

    def _render_summary(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("filter ", style="bold")
        text.append(self.user_filter or "(none: / to edit)",
                    style="" if self.user_filter else "italic")
        for q in self.quick:
            text.append("  │ ", style="dim")
            text.append(q, style="bold yellow")
        text.append("  │ ", style="dim")
        text.append(f"sort: {self.sort} ↓")
        self.query_one("#filter-summary", SafeStatic).update(text)

    def set_error(self, message: str) -> None:
        self.error = message
        self.set_class(bool(message), "has-error")
        self.query_one("#filter-error", SafeStatic).update(
            Text(f"✗ {message}" if message else "", style="bold"))

    @property
    def editing(self) -> bool:
        return self.has_class("editing")

    async def start_editing(self) -> None:
        found = self.query("#filter-input").results(Input)
        field_ = next(found, None)
        if field_ is None:
            field_ = Input(placeholder="MLflow filter, e.g. trace.status = 'ERROR' AND "
                           "tags.route = 'search'  (enter: apply, esc: cancel)",
                           id="filter-input")
            await self.mount(field_, after="#filter-summary")
        field_.value = self.user_filter
        self.add_class("editing")
        field_.focus()
        field_.cursor_position = len(field_.value)

    def stop_editing(self) -> None:
        self.remove_class("editing")

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.stop_editing()
        self.post_message(self.Submitted(event.value.strip()))

    def action_cancel(self) -> None:
        if self.editing:
            self.stop_editing()
            self.post_message(self.Cancelled())


class TraceHeadline(SafeStatic):
    """Totals of one trace: name, id, status, duration, tokens, cost, spans, session, user."""

    DEFAULT_CSS = """
    TraceHeadline { height: auto; background: $panel; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)

    def show_loading(self, trace_id: str, name: str = "") -> None:
        self.update(Text.assemble((safe_text(name) or "trace", "bold"), "  ", (trace_id, "dim"),
                                  ("  loading…", "italic cyan")))

    def show_error(self, trace_id: str, error: str) -> None:
        self.update(Text.assemble((trace_id, "bold"), "  ", (f"✗ {error}", "bold red")))

    def show_tree(self, tree: TraceTree, *, critical: bool = False, search: str = "") -> None:
        info = tree.info
        text = Text()
        text.append(safe_text(tree.name) or "(unnamed)", style="bold")
        text.append(f"  {tree.trace_id}", style="dim")
        status = tree.status
        text.append("  ")
        if status == "ERROR":
            text.append("✗ ERROR", style="bold red")
        elif status == "OK":
            text.append("✓ OK", style="bold green")
        else:
            text.append(status, style="bold yellow")
        text.append(f"  {fmt_time(info.request_time_ms)}", style="dim")
        text.append("\n")
        text.append(f"duration {fmt_duration(tree.duration_ms)}", style="bold")
        tokens = tree.tokens
        text.append(f"  tokens {fmt_tokens(tokens)} (Σ {fmt_count(tokens.total)})")
        if tree.tokens_mismatch and info.tokens is not None:
            text.append(f" ⚠ server total {fmt_count(info.tokens.total)} disagrees with the spans",
                        style="bold yellow")
        if tree.cost_usd or info.cost_usd:
            text.append(f"  cost {fmt_cost(tree.cost_usd)}")
        if tree.cost_mismatch and info.cost_usd is not None:
            text.append(f" ⚠ server cost {fmt_cost(info.cost_usd)} disagrees with the spans",
                        style="bold yellow")
        text.append(f"  {len(tree.spans):,} spans")
        errors = sum(1 for s in tree.spans.values() if s.is_error)
        if errors:
            text.append(f" ({errors} ✗)", style="bold red")
        if info.session:
            text.append(f"  session {safe_text(info.session)}")
        if info.user:
            text.append(f"  user {safe_text(info.user)}")
        summary = assessment_summary(info.assessments)
        if summary:
            text.append(f"  feedback {summary}", style="bold")
        if critical:
            text.append("  [critical path]", style="bold yellow")
        if search:
            text.append(f"  [/{search}]", style="bold cyan")
        self.update(text)
