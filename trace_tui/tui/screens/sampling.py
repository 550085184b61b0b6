"""The sampling screen: open a policy (errors inline), preview it over recent traces (per
stratum: population, rate, expected sample and cost), and queue the selected traces."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Input

from trace_tui.core.errors import TraceTuiError
from trace_tui.core.render import fmt_cost
from trace_tui.core.text import safe_text
from trace_tui.tui.console import JudgeConsole, SampleProgress
from trace_tui.tui.widgets.key_footer import KeyFooter
from trace_tui.tui.widgets.safe import SafeStatic

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp

COLUMNS = ("rule", "stratum", "population", "rate", "expected sample", "judge tokens",
           "cost")


def back_to_list(screen: Screen[None]) -> None:
    """esc from the sampling or evaluation screen: back to where they were opened from (the
    list), not through every s/e visit in between."""
    app = screen.app
    while getattr(app.screen, "JUDGE_SCREEN", False) and len(app.screen_stack) > 1:
        app.pop_screen()


class SamplingScreen(Screen[None]):
    """Policy file -> dry-run table -> sample now."""

    JUDGE_SCREEN = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=False, id="sampling.back"),  # as everywhere
        Binding("d", "dry_run", "Dry run", id="sampling.dry_run"),
        Binding("w", "cycle_window", "Window", id="sampling.window"),
        Binding("r", "sample", "Sample", id="sampling.sample"),
        Binding("o", "focus_path", "Policy", id="sampling.open"),
        Binding("n", "designer", "New", id="sampling.designer"),
        Binding("E", "edit", "Edit", id="sampling.edit"),
        # already here: shadows the app's `s` (see EvaluationScreen)
        Binding("s", "dry_run", "Dry run", show=False, id="sampling.s_dry_run"),
    ]

    DEFAULT_CSS = """
    SamplingScreen #sampling-title { height: 1; background: $boost; padding: 0 1; }
    SamplingScreen #policy-path { margin: 0 1; }
    SamplingScreen #sampling-error { color: $error; padding: 0 1; height: auto; }
    SamplingScreen #sampling-totals { padding: 0 1; height: auto; }
    SamplingScreen #sampling-progress { padding: 0 1; height: auto; color: $text-accent; }
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
            yield SafeStatic("", id="sampling-progress")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self._show()
        self._show_progress()
        self.set_interval(0.25, self._show_progress)
        if self.console.policy_path and self.console.loop is None:
            self.open_policy(self.console.policy_path)
        elif self.console.loop is not None and self.console.dry_run is None:
            self.refresh_dry_run()
        else:
            self.query_one(DataTable).focus()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        back_to_list(self)

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
        progress = self.console.sampling
        if progress is not None and progress.running:
            self.notify(f"already running, not restarted: {progress.describe()}",
                        severity="warning")
            return
        # at app level: leaving this screen (or a dry run) does not cancel the run
        progress = self.console.begin_sample()
        self.app.run_worker(_sample(self.app, self.console, progress), group="judge-sample",
                            name="sampling run")
        self._show_progress()

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

    @work(exclusive=True, group="policy")
    async def open_policy(self, path: Path) -> None:
        try:
            await self.console.open(self.tapp.client, path)
        except TraceTuiError as exc:
            self.console.error = str(exc)
            self._show()
            return
        self._show()
        if self.is_attached:
            self.query_one(DataTable).focus()
            await self._dry_run()

    @work(exclusive=True, group="policy")
    async def refresh_dry_run(self) -> None:
        await self._dry_run()

    async def _dry_run(self) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one("#sampling-totals", SafeStatic).update("computing the plan ...")
        before = self.console.error
        try:
            await self.console.refresh_dry_run()
            failed = ""
        except TraceTuiError as exc:
            failed = str(exc)
        # An error set while the plan was computed (an $EDITOR edit's lint) is newer: keep it.
        if self.console.error == before:
            self.console.error = failed
        self._show()

    # ------------------------------------------------------------------ rendering

    def _show_progress(self) -> None:
        progress = self.console.sampling
        with contextlib.suppress(NoMatches):  # a timer firing while the screen is removed
            self.query_one("#sampling-progress", SafeStatic).update(
                progress.describe() if progress is not None else "")

    def _show(self) -> None:
        with contextlib.suppress(NoMatches):  # a worker finishing after s/e swapped us out
            self._render_plan()

    def _render_plan(self) -> None:
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
            f"{fmt_cost(totals.get('expected_cost_usd') or 0.0)}   (r: sample now)")


async def _sample(app: App[Any], console: JudgeConsole, progress: SampleProgress) -> None:
    """The sampling run, at app level: it outlives the screen that started it."""
    await console.run_sample(progress)
    if progress.error:
        app.notify(progress.describe(), severity="error")
    else:
        app.notify(progress.describe() + " (press e for the evaluation screen)")


def _num(value: Any, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):,.{decimals}f}"


def _rate(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _money(value: Any) -> str:
    """Costs as everywhere else (``render.fmt_cost``)."""
    return "-" if not value else fmt_cost(float(value))
