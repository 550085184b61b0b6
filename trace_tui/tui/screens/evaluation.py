"""The evaluation screen: queue counts, start/stop the judge worker, its progress and recent
verdicts, and the report (post-stratified estimates with intervals). The worker runs at app
level, so it keeps judging while the user browses traces."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, RichLog

from trace_tui.core.errors import TraceTuiError
from trace_tui.core.render import is_pass
from trace_tui.core.text import safe_text
from trace_tui.tui.console import JudgeConsole
from trace_tui.tui.screens.sampling import back_to_list
from trace_tui.tui.widgets.key_footer import KeyFooter
from trace_tui.tui.widgets.safe import SafeStatic
from trace_tui.tui.widgets.span_detail import FAIL_CHIP, PASS_CHIP

if TYPE_CHECKING:
    from samplers.verdicts import PassRule
    from trace_tui.evaluation.worker import TraceOutcome
    from trace_tui.tui.app import TraceExplorerApp


class EvaluationScreen(Screen[None]):
    """Queue, worker, verdicts, report."""

    JUDGE_SCREEN = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="evaluation.back"),
        Binding("r", "toggle_worker", "Judge on/off", id="evaluation.toggle"),
        Binding("f", "requeue_failed", "Retry failed", id="evaluation.retry_failed"),
        Binding("R", "refresh", "Refresh", id="evaluation.refresh"),
        # already here: shadows the app's `e`, which would open this screen again and take
        # room in the footer that an 80-column terminal does not have
        Binding("e", "refresh", "Refresh", show=False, id="evaluation.e_refresh"),
    ]

    DEFAULT_CSS = """
    EvaluationScreen #eval-title { height: 1; background: $boost; padding: 0 1; }
    EvaluationScreen #eval-status { height: auto; padding: 0 1; }
    EvaluationScreen #eval-body { height: 1fr; }
    EvaluationScreen #verdicts { width: 2fr; border: round $primary; }
    EvaluationScreen #report { width: 3fr; border: round $primary; }
    EvaluationScreen.narrow #eval-body { layout: vertical; }
    EvaluationScreen.narrow #report { width: 1fr; height: 2fr; }
    EvaluationScreen.narrow #verdicts { width: 1fr; height: 1fr; }
    """

    NARROW = 120  # below this many columns the report takes the full width, verdicts below

    def __init__(self, console: JudgeConsole) -> None:
        super().__init__()
        self.console = console
        self._shown = 0
        self.report_message = ""
        self._sampling_seen = self._sampling_state()
        self._was_running = console.running

    @property
    def tapp(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SafeStatic("", id="eval-title", multiline=False)
            yield SafeStatic("", id="eval-status")
            with Horizontal(id="eval-body"):
                yield DataTable(id="report", zebra_stripes=True, cursor_type="row")
                yield RichLog(id="verdicts", markup=False, wrap=False, max_lines=500)
        yield KeyFooter()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < self.NARROW, "narrow")

    def on_mount(self) -> None:
        # the numbers first: a narrow terminal crops the long stratum names, not the estimates
        self.query_one("#report", DataTable).add_columns(
            "judge", "estimate", "95% interval", "judged", "population", "stratum")
        self.query_one("#verdicts", RichLog).border_title = "recent verdicts"
        self.query_one("#report", DataTable).border_title = "report"
        for outcome in reversed(self.console.recent):
            self._log(outcome)
        self._shown = len(self.console.recent)
        self.set_interval(0.5, self._tick)
        self._show_status()
        if self.console.loop is None:
            self.query_one("#eval-status", SafeStatic).update(
                "no policy open: press escape, then s to open one in the sampling screen")
            return
        self.refresh_all()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        back_to_list(self)

    def action_toggle_worker(self) -> None:
        if self.console.loop is None:
            self.notify("open a policy first (s)", severity="warning")
        elif self.console.running:
            self.console.stop_eval()
            self.notify("stopping the judge worker after the traces in flight")
        else:
            self.tapp.run_worker(self._run_eval(), group="judge-eval", exclusive=True,
                                 name="judge worker")
            self.notify("judge worker started")

    def action_requeue_failed(self) -> None:
        if self.console.loop is not None:
            self.requeue()

    def action_refresh(self) -> None:
        if self.console.loop is not None:
            self.refresh_all()

    # ------------------------------------------------------------------ workers

    async def _run_eval(self) -> None:
        try:
            await self.console.run_eval()
        except TraceTuiError as exc:
            self.app.notify(f"judge worker stopped: {exc}", severity="error")

    @work(exclusive=True, group="evaluation")
    async def refresh_all(self) -> None:
        error: TraceTuiError | None = None
        try:
            await self.console.refresh_queue()
            await self.console.refresh_report()
        except TraceTuiError as exc:
            error = exc
        with contextlib.suppress(NoMatches):  # s/e swapped this screen out meanwhile
            self._show_status()
            table = self.query_one("#report", DataTable)
            if error is None:
                self.report_message = ""
                table.border_subtitle = ""
                self._show_report()
                return
            table.clear()
            progress = self.console.sampling
            message = (progress.describe() + ": the report follows when it is saved"
                       if progress is not None and progress.running else str(error))
            self.report_message = message
            table.border_subtitle = Text(safe_text(message[:120]))  # a str title is markup

    @work(exclusive=True, group="evaluation")
    async def requeue(self) -> None:
        assert self.console.loop is not None
        count = await self.console.loop.requeue_failed()
        self.notify(f"re-queued {count} failed trace(s)")
        await self.console.refresh_queue()
        self._show_status()

    # ------------------------------------------------------------------ rendering

    def _tick(self) -> None:
        with contextlib.suppress(NoMatches):  # a timer firing while the screen is removed
            self._update()

    def _update(self) -> None:
        c = self.console
        fresh = len(c.recent) - self._shown
        for outcome in list(c.recent)[:max(0, fresh)][::-1]:
            self._log(outcome)
        self._shown = len(c.recent)
        self._show_status()
        state = self._sampling_state()
        sampled = state != self._sampling_seen and state is not None and not state[1]
        self._sampling_seen = state
        stopped = self._was_running and not c.running
        self._was_running = c.running
        if c.loop is not None and (sampled or stopped):
            self.refresh_all()  # new counts (and a report) from the server
        elif c.sampling is not None and c.sampling.running and self.report_message:
            self.query_one("#report", DataTable).border_subtitle = Text(
                safe_text(c.sampling.describe()[:120]))

    def _sampling_state(self) -> tuple[int, bool] | None:
        progress = self.console.sampling
        return (id(progress), progress.running) if progress is not None else None

    def _log(self, outcome: TraceOutcome) -> None:
        line = Text(safe_text(f"{outcome.trace_id}  {outcome.state:<7}"))
        rules = self._pass_rules()
        for name, value in outcome.verdicts.items():
            verdict = is_pass(value, rules.get(name))
            line.append(" " + safe_text(name) + "=")
            style = "" if verdict is None else PASS_CHIP if verdict else FAIL_CHIP
            mark = "" if verdict is None else "✓ " if verdict else "✗ "
            line.append(f"{mark}{safe_text(value)}", style=style)
        if outcome.error:
            line.append("  " + safe_text(outcome.error[:80]), style="red")
        self.query_one("#verdicts", RichLog).write(line)

    def _pass_rules(self) -> dict[str, PassRule]:
        """The policy's judge declarations, so a verdict reads as the report reads it."""
        if self.console.loop is None:
            return {}
        from trace_tui.evaluation.report import pass_rules  # numpy: off the start path

        return pass_rules(self.console.loop.policy)

    def _show_status(self) -> None:
        c = self.console
        name = c.loop.policy.name if c.loop else "no policy"
        self.query_one("#eval-title", SafeStatic).update(f"Evaluation · policy {name}")
        if c.loop is None:
            return
        q = c.counts
        queue = f"queue: {q.queued} queued · {q.done} done · {q.failed} failed" if q else "queue: …"
        s = c.summary
        if c.running and s is not None:
            worker = (f"worker: running · judged {s.done} · failed {s.failed} · retries "
                      f"{s.retries} · judge tokens {s.tokens:,}")
        elif s is not None:
            worker = f"worker: idle (last run judged {s.done}, failed {s.failed})"
        else:
            worker = "worker: idle (r to start)"
        lines = [queue, worker]
        if c.sampling is not None and c.sampling.running:
            lines.append(c.sampling.describe())
        self.query_one("#eval-status", SafeStatic).update("\n".join(lines))

    def _show_report(self) -> None:
        table = self.query_one("#report", DataTable)
        table.clear()
        report = self.console.report
        if report is None:
            return
        for judge in report.to_dict()["judges"]:
            _add_row(table, judge["judge"], _pct(judge["estimate"]), _ci(judge),
                     str(judge["n_judged"]), f"{judge['population']:g}", "(all)")
            _add_review_rows(table, judge)
            for s in judge.get("strata", []):
                _add_row(table, "", _pct(s.get("estimate")), _ci(s), str(s["n_judged"]),
                         f"{s['population']:g}", s["stratum"])


def _add_row(table: DataTable[Text], *cells: object) -> None:
    """A row of plain text: DataTable parses a str cell as markup."""
    table.add_row(*(Text(safe_text(c)) for c in cells))


def _add_review_rows(table: DataTable[Text], judge: dict) -> None:
    """Judge trust under a judge's overall row: human-only and corrected estimates (with the
    reviewed count) and agreement (accuracy, kappa, confusion), when humans labelled any."""
    for key, label in (("human_only", "human-only"), ("corrected", "corrected")):
        row = judge.get(key) or {}
        if row.get("n_reviewed"):
            _add_row(table, "", _pct(row.get("estimate")), _ci(row), "", "",
                     f"{label} ({row['n_reviewed']} reviewed)")
    agree = (judge.get("agreement") or {}).get("overall")
    if agree:
        c, kappa = agree["confusion"], agree["kappa"]
        k = "-" if kappa.get("estimate") is None else f"κ {kappa['estimate']:.2f}"
        if kappa.get("ci_low") is not None:
            k += f" [{kappa['ci_low']:.2f}, {kappa['ci_high']:.2f}]"
        _add_row(table, "", _pct(agree["accuracy"].get("estimate")), k, "", "",
                 f"agreement on {agree['n_reviewed']}: tp {c['tp']} fp {c['fp']} "
                 f"fn {c['fn']} tn {c['tn']}")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(row: dict) -> str:
    if row.get("ci_low") is None:
        return "-"
    return f"[{100 * row['ci_low']:.1f}%, {100 * row['ci_high']:.1f}%]"
