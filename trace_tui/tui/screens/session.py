"""One session's traces in time order, with the session's totals (latency, tokens, cost,
errors, verdicts). Enter opens a trace; the rows come from a server-side session filter."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.strip import Strip

from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import TraceInfo
from trace_tui.core.render import (
    fmt_cost,
    fmt_count,
    fmt_duration,
    fmt_time,
    fmt_tokens,
    list_badges,
)
from trace_tui.core.sessions import session_clause, session_totals
from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.key_footer import KeyFooter
from trace_tui.tui.widgets.line_list import ColumnList
from trace_tui.tui.widgets.safe import SafeStatic

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp

MAX_SESSION_TRACES = 2000


class SessionTable(ColumnList[TraceInfo]):
    """``#  time  st  name  duration  tokens  cost  feedback``, oldest first."""

    HEADER_LINES = 1
    COLUMNS = (("#", 4, "right"), ("time", 8, "left"), ("st", 3, "left"), ("name", 0, "left"),
               ("duration", 9, "right"), ("tok in/out", 11, "right"), ("cost", 8, "right"),
               ("judged/feedback", 15, "left"))

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="session.open"),
    ]

    DEFAULT_CSS = """
    SessionTable { height: 1fr; background: $surface; }
    """

    def cells(self, index: int) -> list[str]:
        info = self.rows[index]
        status = {"ERROR": "ERR", "OK": "ok"}.get(info.state, "run")
        cells = [str(index + 1), fmt_time(info.request_time_ms, with_date=False), status,
                 info.name or info.request_preview or "(unnamed)",
                 fmt_duration(info.duration_ms), fmt_tokens(info.tokens),
                 fmt_cost(info.cost_usd), list_badges(info.tags, info.assessments)]
        return cells

    def render_row(self, index: int, width: int, is_cursor: bool) -> Strip:
        style = self.rich_style
        if self.rows[index].state == "ERROR":
            style += Style(color="red")
        if is_cursor:
            style += Style(reverse=True)
        return self.strip([(self.row_text(index, width), style)], width, style)

    def action_open(self) -> None:
        if self.rows:
            app = cast("TraceExplorerApp", self.app)
            app.open_trace(self.rows[self.cursor].trace_id, self.rows[self.cursor])

    def row_activated(self, index: int) -> None:
        self.action_open()


class SessionScreen(Screen[None]):
    """The traces of one session (``mlflow.trace.session``), or of the marked traces
    (``infos`` given: shown as they are, no search)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="session.back"),
    ]

    DEFAULT_CSS = """
    SessionScreen #session-summary { height: auto; background: $panel; padding: 0 1; }
    """

    def __init__(self, session: str, infos: list[TraceInfo] | None = None) -> None:
        super().__init__()
        self.session = session
        self.infos = infos
        self.loaded = False

    @property
    def explorer(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        yield SafeStatic(f"session {self.session}: loading…", id="session-summary")
        yield SessionTable(id="session-table")
        yield KeyFooter()

    @property
    def summary(self) -> SafeStatic:
        return self.query_one("#session-summary", SafeStatic)

    @property
    def table(self) -> SessionTable:
        return self.query_one(SessionTable)

    def on_mount(self) -> None:
        self.table.focus()
        self._load()

    @work(exclusive=True, group="session")
    async def _load(self) -> None:
        if self.infos is not None:
            self.show(self.infos)
            return
        clause = session_clause(self.session)
        experiment = self.explorer.experiment
        if clause is None or experiment is None:
            self.summary.update(f"session {self.session}: cannot be filtered on")
            return
        try:
            infos = await self.explorer.client.search_traces(
                [experiment.experiment_id], filter_string=clause,
                order_by=["timestamp_ms ASC"], max_results=MAX_SESSION_TRACES)
        except (MlflowApiError, MlflowUnavailableError) as exc:
            self.summary.update(Text(f"✗ {exc}", style="bold red"))
            return
        self.show(infos)

    def show(self, infos: list[TraceInfo]) -> None:
        infos = sorted(infos, key=lambda i: (i.request_time_ms, i.trace_id))
        t = session_totals(infos)
        text = Text()
        if self.infos is None:
            text.append("session ", style="bold")
        text.append(safe_text(self.session), style="bold cyan")
        users = sorted({i.user for i in infos if i.user})
        if users:
            text.append(f"  user {safe_text(', '.join(users))}")
        text.append(f"  {t.traces} traces")
        if infos:
            text.append(f"  {fmt_time(infos[0].request_time_ms)} → "
                        f"{fmt_time(infos[-1].request_time_ms)}", style="dim")
        text.append("\n")
        text.append(f"latency Σ {fmt_duration(t.duration_ms)} "
                    f"(wall {fmt_duration(t.span_ms)})  tokens {fmt_count(t.input_tokens)}/"
                    f"{fmt_count(t.output_tokens)}  cost {fmt_cost(t.cost_usd)}  ")
        text.append(f"errors {t.errors}", style="bold red" if t.errors else "")
        text.append(f"  feedback +{t.thumbs_up} -{t.thumbs_down}  "
                    f"judged {t.judged_pass}/{t.judged} pass")
        self.summary.update(text)
        self.table.set_rows(infos)
        self.loaded = True
