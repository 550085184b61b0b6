"""The evaluation screen shows judge trust: human-only and corrected estimates and agreement
under a judge's overall row, as plain text."""

from __future__ import annotations

from textual.widgets import DataTable

from samplers import HumanLabel, JudgedOutcome, PassRule, PopulationCounts, estimate
from tests.test_tui_static import frozen_app, listed, wait_for
from trace_tui.evaluation.report import PolicyReport, review_keys
from trace_tui.tui.screens.evaluation import EvaluationScreen
from trace_tui.tui.screens.judging import judge_screen_hooks


def reviewed_report() -> PolicyReport:
    counts = PopulationCounts(3_600_000, "r")
    counts.register_rule("by_route", "stratified", ["quality"])
    outcomes = []
    for k, route in enumerate(("billing", "checkout", "search", "support")):
        stratum = f"by_route/tags.route={route}"
        counts.add(0, "by_route", stratum, population=100 + 50 * k, selected=10)
        outcomes += [JudgedOutcome(f"t{k}-{i}", "quality", stratum, i % 3 != 0, 0.1, 0)
                     for i in range(10)]
    # per stratum four reviews (r = 1/2): the human fails the judge's pass on trace 1
    labels = [HumanLabel(o.trace_id, "quality", bool(o.value) and not o.trace_id.endswith("-1"),
                         0.5) for o in outcomes if o.trace_id[-2:] in ("-1", "-2", "-3", "-4")]
    rules = {"quality": PassRule("bool")}
    est = estimate(outcomes, counts, rules=rules)
    review = review_keys(outcomes, labels, labels, counts, 0.95, est, rules)
    return PolicyReport("p", est, len(outcomes), review)


async def test_evaluation_screen_shows_corrected_estimate_and_agreement() -> None:
    report = reviewed_report()
    app = frozen_app()
    for hook in judge_screen_hooks():
        app.register_screen_hook(hook)
    async with app.run_test(size=(160, 40)) as pilot:
        await listed(pilot)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluationScreen), what="e")
        ev = app.screen
        ev.console.report = report
        ev._show_report()
        await pilot.pause()
        table = ev.query_one("#report", DataTable)
        rows = [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert table.row_count == 1 + 3 + 4
        assert rows[1].endswith("human-only (16 reviewed)")
        corrected = report.review["quality"]["corrected"]
        assert rows[2].endswith("corrected (16 reviewed)")
        assert f"{100 * corrected['estimate']:.1f}%" in rows[2]
        assert rows[3].endswith("agreement on 16: tp 8 fp 4 fn 0 tn 4") and " κ " in f" {rows[3]}"
        assert corrected["estimate"] < report.to_dict()["judges"][0]["estimate"]
