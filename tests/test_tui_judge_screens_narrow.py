"""The sampling and evaluation screens on an 80x24 terminal (no server): the report's
estimates and intervals are on screen without scrolling, and every key fits the footer."""

from __future__ import annotations

from rich.cells import cell_len
from textual.widgets import DataTable

from samplers import JudgedOutcome, PopulationCounts, estimate
from tests.test_tui_static import frozen_app, listed, wait_for
from trace_tui.evaluation.report import PolicyReport
from trace_tui.tui.screens.evaluation import EvaluationScreen
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.screens.sampling import SamplingScreen
from trace_tui.tui.widgets.key_footer import KeyFooter

NARROW = (80, 24)


def a_report() -> PolicyReport:
    counts = PopulationCounts(3_600_000, "r")
    counts.register_rule("by_route", "stratified", ["quality"])
    outcomes = []
    for k, route in enumerate(("billing", "checkout", "search", "support")):
        stratum = f"by_route/tags.route={route}-with-a-long-tail"
        counts.add(0, "by_route", stratum, population=100 + 50 * k, selected=10)
        outcomes += [JudgedOutcome(f"t{k}-{i}", "quality", stratum, i % 3 != 0, 0.1, 0)
                     for i in range(10)]
    return PolicyReport("p", estimate(outcomes, counts), len(outcomes))


def footer_fits(screen) -> None:
    footer = screen.query_one(KeyFooter)
    text = footer._text.plain
    assert cell_len(text.rstrip()) <= NARROW[0], text
    assert " Help " in text and " Quit " in text  # the app's keys too
    for binding in screen.BINDINGS:
        if binding.show:
            assert f" {binding.description} " in text, (binding.description, text)


async def test_evaluation_report_and_keys_fit_80x24() -> None:
    app = frozen_app()
    hooks = judge_screen_hooks()
    for hook in hooks:
        app.register_screen_hook(hook)
    async with app.run_test(size=NARROW) as pilot:
        await listed(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluationScreen), what="e")
        ev = app.screen
        ev.console.report = a_report()
        ev._show_report()
        await pilot.pause()
        table = ev.query_one("#report", DataTable)
        assert table.row_count == 5
        visible = table.scrollable_content_region
        assert visible.height >= table.row_count + 1  # header and every row, no scrolling
        x = 0
        for column in table.columns.values():
            right = x + column.get_render_width(table)
            if column.label.plain in ("estimate", "95% interval", "judged", "population"):
                assert right <= visible.width, (column.label.plain, right, visible.width)
            x = right
        footer_fits(ev)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SamplingScreen), what="s")
        footer_fits(app.screen)


async def test_recent_verdicts_are_pass_and_fail_chips() -> None:
    from rich.style import Style
    from textual.widgets import RichLog

    from trace_tui.evaluation.worker import TraceOutcome
    from trace_tui.tui.widgets.span_detail import FAIL_CHIP, PASS_CHIP

    app = frozen_app()
    for hook in judge_screen_hooks():
        app.register_screen_hook(hook)
    async with app.run_test(size=(120, 30)) as pilot:
        await listed(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluationScreen), what="e")
        ev = app.screen
        ev.console.recent.appendleft(TraceOutcome("tr-1", "done",
                                                  {"safety": "yes", "relevance": "no"}))
        await wait_for(pilot, lambda: len(ev.query_one(RichLog).lines) == 1, what="the log")
        (line,) = ev.query_one(RichLog).lines
        styles = {seg.text: seg.style for seg in line if seg.text.strip()}
        assert styles["✓ yes"] == Style.parse(PASS_CHIP)
        assert styles["✗ no"] == Style.parse(FAIL_CHIP)
