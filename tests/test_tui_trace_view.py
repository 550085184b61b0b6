"""Pilot tests of the trace view on frozen traces (no server): one cost rule with its
disagreement flag, Σ totals that explain themselves, the critical path over errors, models
in the tree, conversations in the detail, verdict chips, and the help legend."""

from __future__ import annotations

import copy
import json
from typing import Any

from rich.text import Text

from tests.test_tui_static import FIXTURES, SIZE, TREE_TRACE, wait_for
from trace_tui.config.settings import Settings
from trace_tui.core.model import Assessment
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.screens.help import HelpScreen, legend_rows
from trace_tui.tui.screens.trace_view import TraceViewScreen
from trace_tui.tui.sources import StaticTraceSource
from trace_tui.tui.widgets.span_detail import FAIL_CHIP, PASS_CHIP, SpanDetail
from trace_tui.tui.widgets.status import TraceHeadline

ERROR_TRACE = "tr-9bb70db3987e7e76de9eb03ed4ddf360"  # demo-07: root and retriever in error


def payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.trace.json").read_text())


def app_with(*payloads: dict[str, Any]) -> TraceExplorerApp:
    return TraceExplorerApp("static://fixtures", settings=Settings(theme="textual-dark"),
                            source=StaticTraceSource(list(payloads)), persist_settings=False)


async def opened(pilot, app: TraceExplorerApp, trace_id: str) -> TraceViewScreen:
    await wait_for(pilot, lambda: len(app.buffer) > 0, what="the list")
    app.go_to_trace(trace_id)
    await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                   and app.screen.trace_tree is not None
                   and app.screen.trace_tree.trace_id == trace_id, what="the trace view")
    screen = app.screen
    assert isinstance(screen, TraceViewScreen)
    return screen


def headline_text(screen: TraceViewScreen) -> str:
    content = screen.query_one(TraceHeadline).content
    return content.plain if isinstance(content, Text) else str(content)


def row_of(screen: TraceViewScreen, name: str, nth: int = 0) -> str:
    wf = screen.waterfall
    rows = [i for i, s in enumerate(wf.rows) if s.name == name]
    return wf.row_text(rows[nth])


async def test_stored_cost_that_disagrees_with_the_spans_is_flagged() -> None:
    doc = payload("demo-01")
    meta = doc["trace_info"]["trace_metadata"]
    meta["mlflow.trace.cost"] = json.dumps({"total_cost": 0.0011})  # spans say $0.0033
    agreeing = payload("demo-02")
    app = app_with(doc, agreeing)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, doc["trace_info"]["trace_id"])
        text = headline_text(screen)
        assert "cost $0.0033" in text  # the spans under the server's rule
        assert "⚠ server cost $0.0011 disagrees with the spans" in text
        await pilot.press("escape")
        screen = await opened(pilot, app, TREE_TRACE)
        text = headline_text(screen)
        assert "cost $0.0003" in text and "server cost" not in text


async def test_a_subtree_total_smaller_than_a_childs_explains_itself() -> None:
    app = app_with(payload("demo-02"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, TREE_TRACE)
        router = row_of(screen, "llm_router")
        assert "468*" in router  # its own 468 tokens stand for the subtree (child: 580)
        assert "$0.0002*" in router
        assert "*" not in row_of(screen, "chat_completion", 1)  # a leaf hides nothing
        wf = screen.waterfall
        wf.cursor = next(i for i, s in enumerate(wf.rows) if s.name == "llm_router")
        screen.detail.show_tab("attributes")
        await wait_for(pilot, lambda: "not added" in screen.detail.body_text("attributes"),
                       what="the explanation in the attributes tab")
        assert "580 tokens" in screen.detail.body_text("attributes")


async def test_critical_path_shows_on_spans_in_error() -> None:
    app = app_with(payload("demo-07"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, ERROR_TRACE)
        wf = screen.waterfall
        await pilot.press("c")
        assert wf.show_critical
        on_path_errors = [i for i, s in enumerate(wf.rows)
                          if s.is_error and s.span_id in wf.critical]
        assert on_path_errors, "the fixture has errors on its critical path"
        for i in on_path_errors:
            assert wf.row_text(i)[1] == "»", wf.row_text(i)
        for i, span in enumerate(wf.rows):
            if span.span_id not in wf.critical:
                assert wf.row_text(i)[1] == " "


async def test_llm_rows_show_the_model() -> None:
    app = app_with(payload("demo-02"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, TREE_TRACE)
        assert "gpt-4o-mini" in row_of(screen, "chat_completion")
        assert "gpt" not in row_of(screen, "vector_search")


def _string_attr(span: dict[str, Any], key: str, value: Any) -> None:
    span["attributes"] = [a for a in span["attributes"] if a["key"] != key]
    span["attributes"].append({"key": key, "value": {"string_value": json.dumps(value)}})


def chat_payload() -> dict[str, Any]:
    """demo-02 with a multi-line prompt and a tool call, stored as MLflow stores them: JSON
    strings."""
    doc = copy.deepcopy(payload("demo-02"))
    span = next(s for s in doc["spans"] if s["name"] == "chat_completion")
    _string_attr(span, "mlflow.spanInputs", {"messages": [
        {"role": "system", "content": "Be brief.\nCite sources."},
        {"role": "user", "content": "Compare the pro\nand enterprise tiers."}],
        "temperature": 0})
    _string_attr(span, "mlflow.spanOutputs", {"choices": [{"message": {
        "role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "lookup_plan", "arguments": '{"tier": "pro"}'}}]}}]})
    return doc


async def test_chat_spans_read_as_conversations() -> None:
    app = app_with(chat_payload())
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, TREE_TRACE)
        wf = screen.waterfall
        wf.cursor = next(i for i, s in enumerate(wf.rows) if s.name == "chat_completion")
        detail = screen.query_one(SpanDetail)
        await wait_for(pilot, lambda: detail.span is wf.current, what="the detail")
        inputs = detail.body_text("inputs")
        assert "── system\nBe brief.\nCite sources." in inputs
        assert "── user\nCompare the pro\nand enterprise tiers." in inputs
        assert "\\n" not in inputs and '"messages"' not in inputs
        assert '"temperature": 0' in inputs  # the other fields stay visible
        outputs = detail.body_text("outputs")
        assert "── assistant" in outputs
        assert '→ call lookup_plan(tier="pro")' in outputs
        assert "Cite sources." in detail.full_text("inputs")  # the pager gets it too


async def test_verdicts_show_as_pass_and_fail_chips() -> None:
    app = app_with(payload("demo-02"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, TREE_TRACE)
        for n, (name, value) in enumerate((("safety", "yes"), ("relevance", "no"))):
            screen.feedback_logged(Assessment(f"a-{n}", name, "LLM_JUDGE", "judge", value))
        detail = screen.detail
        detail.show_tab("assessments")
        await wait_for(pilot, lambda: "relevance" in detail.body_text("assessments"),
                       what="the assessments tab")
        body = detail.query_one("#body-assessments").content
        assert isinstance(body, Text)
        styles = {body.plain[s.start:s.end].strip(): str(s.style) for s in body.spans}
        assert styles["✓ yes"] == PASS_CHIP
        assert styles["✗ no"] == FAIL_CHIP


async def test_help_explains_span_letters_and_list_codes() -> None:
    app = app_with(payload("demo-02"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.buffer) > 0, what="the list")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        marks = {(where, mark) for where, mark, _ in legend_rows()}
        for needed in (("span kind", "L"), ("span kind", "T"), ("list feedback", "Q"),
                       ("list feedback", "J"), ("list feedback", "Jp/t"),
                       ("trace view", "*"), ("trace view", "»")):
            assert needed in marks, needed
        assert app.screen.query_one("#help-legend") is not None
