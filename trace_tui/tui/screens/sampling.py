"""The sampling screen: open a policy (errors inline), preview it over recent traces (per
stratum: population, rate, expected sample and cost), and queue the selected traces."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from trace_tui.core.errors import TraceTuiError
from trace_tui.core.text import safe_text
from trace_tui.tui.console import JudgeConsole
from trace_tui.tui.widgets.safe import SafeStatic

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp

COLUMNS = ("rule", "stratum", "population", "rate", "expected sample", "judge tokens",
           "cost $")


class SamplingScreen(Screen[None]):
    """Policy file -> dry-run table -> sample now."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="sampling.back"),
        Binding("d", "dry_run", "Dry run", id="sampling.dry_run"),
        Binding("w", "cycle_window", "Window", id="sampling.window"),
        Binding("r", "sample", "Sample now", id="sampling.sample"),
        Binding("o", "focus_path", "Open policy", id="sampling.open"),
        Binding("n", "designer", "New/design", id="sampling.designer"),
        Binding("E", "edit", "$EDITOR", id="sampling.edit"),
    ]

    DEFAULT_CSS = """
    SamplingScreen #sampling-title { height: 1; background: $boost; padding: 0 1; }
    SamplingScreen #policy-path { margin: 0 1; }
    SamplingScreen #sampling-error { color: $error; padding: 0 1; height: auto; }
    SamplingScreen #sampling-totals { padding: 0 1; height: auto; }
    SamplingScreen DataTable { height: 1fr; }
    """

    def __init__(self, console: JudgeConsole) -> None:
        super().__init__()
        self.console = console

    @property
    def tapp(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SafeStatic("", id="sampling-title", multiline=False)
            yield Input(value=str(self.console.policy_path or ""), id="policy-path",
                        placeholder="policy TOML file (enter: open and validate)")
            yield SafeStatic("", id="sampling-error")
            yield DataTable(id="strata", zebra_stripes=True, cursor_type="row")
            yield SafeStatic("", id="sampling-totals")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self._show()
        if self.console.policy_path and self.console.loop is None:
            self.open_policy(self.console.policy_path)
        elif self.console.loop is not None and self.console.dry_run is None:
            self.refresh_dry_run()
        else:
            self.query_one(DataTable).focus()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_path(self) -> None:
        self.query_one("#policy-path", Input).focus()

    def action_dry_run(self) -> None:
        if self.console.loop is not None:
            self.refresh_dry_run()

    def action_cycle_window(self) -> None:
        self.console.cycle_window()
        self.action_dry_run()
        self._show()

    def action_sample(self) -> None:
        if self.console.loop is None:
            self.notify("open a policy first", severity="warning")
            return
        self.sample_now()

    def action_designer(self) -> None:
        """The designer, over the dry run's window, editing the open policy if any."""
        from trace_tui.tui.screens.designer import DesignerScreen

        loop = self.console.loop
        self.app.push_screen(DesignerScreen(
            self.console.policy_path or Path("policy.toml"), since_s=self.console.window[1],
            experiment_ids=list(loop.experiment_ids) if loop else None,
            experiment=self.console.experiment))

    @work(exclusive=True, group="sampling")
    async def action_edit(self) -> None:
        """$EDITOR on the policy file; on return it is re-validated, errors inline."""
        from trace_tui.tui.editor import edit_in_editor

        path = self.console.policy_path
        if path is None:
            self.notify("open a policy first", severity="warning")
            return
        problems = await edit_in_editor(self.app, path)
        if problems:
            self.console.error = "\n".join(problems)
            self._show()
            return
        self.open_policy(path)

    @on(Input.Submitted, "#policy-path")
    def _open(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.open_policy(Path(event.value.strip()).expanduser())

    # ------------------------------------------------------------------ workers

    @work(exclusive=True, group="sampling")
    async def open_policy(self, path: Path) -> None:
        try:
            await self.console.open(self.tapp.client, path)
        except TraceTuiError as exc:
            self.console.error = str(exc)
            self._show()
            return
        self._show()
        self.query_one(DataTable).focus()
        await self._dry_run()

    @work(exclusive=True, group="sampling")
    async def refresh_dry_run(self) -> None:
        await self._dry_run()

    async def _dry_run(self) -> None:
        self.query_one("#sampling-totals", SafeStatic).update("computing the plan ...")
        try:
            await self.console.refresh_dry_run()
            self.console.error = ""
        except TraceTuiError as exc:
            self.console.error = str(exc)
        self._show()

    @work(exclusive=True, group="sampling")
    async def sample_now(self) -> None:
        _, seconds = self.console.window
        try:
            assert self.console.loop is not None
            stats = await self.console.loop.sample_once(seconds)
        except TraceTuiError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"decided {stats.decided} traces, selected {stats.selected}, "
                    f"queued {stats.queued} (press e for the evaluation screen)")

    # ------------------------------------------------------------------ rendering

    def _show(self) -> None:
        c = self.console
        name = c.loop.policy.name if c.loop else "no policy"
        self.query_one("#sampling-title", SafeStatic).update(
            f"Sampling · policy {name} · dry run over the last {c.window[0]} (w: change)")
        self.query_one("#sampling-error", SafeStatic).update(c.error)
        table = self.query_one(DataTable)
        table.clear()
        if c.dry_run is None:
            return
        frame, totals = c.dry_run
        for row in frame.to_dict(orient="records"):
            cells = (row.get("rule", ""), row.get("stratum", ""),
                     _num(row.get("population"), 0), _rate(row.get("rate")),
                     _num(row.get("expected_sample"), 1),
                     _num(row.get("expected_judge_tokens"), 0),
                     _money(row.get("expected_cost_usd")))
            table.add_row(*(Text(safe_text(c)) for c in cells))  # a str cell is markup
        self.query_one("#sampling-totals", SafeStatic).update(
            f"{totals.get('strata', 0)} strata · population {totals.get('population', 0)} · "
            f"expected sample {totals.get('expected_sample', 0):.1f} · judge tokens "
            f"{totals.get('expected_judge_tokens', 0):,.0f} · cost "
            f"${totals.get('expected_cost_usd', 0):.4f}   (r: sample now)")


def _num(value: Any, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):,.{decimals}f}"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _money(value: Any) -> str:
    return "-" if not value else f"{float(value):.4f}"
