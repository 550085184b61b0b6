"""Trace data never drives the terminal, and external text is never markup.

A trace carrying terminal escapes (retitle, clear screen, OSC 52 clipboard write, BEL) and a
bidi override in every field goes through the explorer (list, trace view, every detail tab,
pager text, modals, palette, toasts) and the headless ``traces list``/``traces show`` text
formats: what reaches the terminal holds none of them, the escaped form is shown instead, and
``--format json`` keeps the data exact. Text with markup brackets (``[SQL: x]``, ``[/]``)
shows literally in toasts, labels, the status line and tables, and the app keeps running.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import RichLog

from tests.test_tui_static import FIXTURES, SIZE, wait_for
from trace_tui.config.settings import Settings
from trace_tui.core.export import list_row, tree_to_text
from trace_tui.core.model import TraceInfo, decode_trace
from trace_tui.core.text import safe_text
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.commands import ExplorerCommands
from trace_tui.tui.console import JudgeConsole
from trace_tui.tui.screens.evaluation import EvaluationScreen
from trace_tui.tui.screens.modals import ExperimentPicker, FeedbackScreen
from trace_tui.tui.screens.sampling import SamplingScreen
from trace_tui.tui.screens.trace_view import TraceViewScreen
from trace_tui.tui.sources import StaticTraceSource
from trace_tui.tui.widgets.span_detail import TABS

TITLE = "\x1b]0;pwned\x07"  # retitle the terminal
CLEAR = "\x1b[2J"  # clear the screen
OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # write the clipboard
MARKUP = ("[SQL: x]", "[/]", "[bold", "[link=https://example.invalid]")
MARKUP_TEXT = " ".join(MARKUP)
ESCAPES = f"{TITLE}{CLEAR}{OSC52}\x07\u202eevil\x9b"
HOSTILE = f"{ESCAPES} {MARKUP_TEXT}"  # in every field of the hostile trace
# what must never reach the terminal as text: C0 (but newline) and C1 controls, bidi controls
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
HOSTILE_TRACE = "tr-a1277707c9288d5416c099ee71fb8ee3"


def hostile(value: str) -> str:
    return f"{value} {HOSTILE}"


def hostile_payload() -> dict[str, Any]:
    """demo-08 (an error trace with events and an assessment) with the hostile string in
    its name, tags, session, user, previews, span names, attributes, status messages,
    events and assessment name, source, value and rationale."""
    payload = copy.deepcopy(json.loads((FIXTURES / "demo-08.trace.json").read_text()))
    info = payload["trace_info"]
    info["tags"] = {k: hostile(v) for k, v in info["tags"].items()}
    meta = info["trace_metadata"]
    for key in ("mlflow.trace.session", "mlflow.trace.user"):
        meta[key] = hostile(meta.get(key, "x"))
    info["request_preview"] = hostile(info.get("request_preview", ""))
    for a in info["assessments"]:
        a["assessment_name"] = hostile(a["assessment_name"])
        a["source"]["source_id"] = hostile(a["source"]["source_id"])
        a["rationale"] = hostile(a["rationale"]) + "\n" + MARKUP_TEXT
    info["assessments"].append({
        "assessment_id": "a-hostile", "assessment_name": hostile("judge"),
        "trace_id": info["trace_id"], "source": {"source_type": "LLM_JUDGE",
                                                 "source_id": "judge"},
        "feedback": {"value": hostile("maybe")}, "valid": True,
        "rationale": hostile("model text")})

    def poison(value: dict[str, Any]) -> None:
        if "string_value" in value:
            value["string_value"] = hostile(value["string_value"])
        for item in value.get("kvlist_value", {}).get("values", []):
            poison(item["value"])

    for span in payload["spans"]:
        span["name"] = hostile(span["name"])
        for attr in span["attributes"]:
            if attr["key"] not in ("mlflow.spanType", "mlflow.traceRequestId"):
                poison(attr["value"])
        span["attributes"].append({"key": hostile("key"), "value": {"string_value": HOSTILE}})
        if not any(a["key"] == "mlflow.spanOutputs" for a in span["attributes"]):
            span["attributes"].append({"key": "mlflow.spanOutputs",  # not JSON: shown as is
                                       "value": {"string_value": HOSTILE}})
        span["status"] = {"code": "STATUS_CODE_ERROR", "message": hostile("boom")}
        span["events"] = [{"time_unix_nano": span["start_time_unix_nano"],
                           "name": hostile("exception"), "attributes": [
                               {"key": "exception.message",
                                "value": {"string_value": hostile("msg")}}]}]
    return payload


def hostile_app(**kwargs: Any) -> TraceExplorerApp:
    payloads = [hostile_payload(), json.loads((FIXTURES / "demo-01.trace.json").read_text())]
    source = StaticTraceSource(payloads, experiment_name=hostile("exp") + " " + MARKUP_TEXT)
    return TraceExplorerApp("static://hostile", settings=Settings(theme="textual-dark"),
                            source=source, persist_settings=False,
                            clock=lambda: 1767268830.0, **kwargs)


def screen_text(app: TraceExplorerApp) -> str:
    """Every character the current screen (with its toasts) writes, as the terminal gets it,
    with the app's own style/cursor sequences taken out."""
    update = app.screen._compositor.render_full_update()
    written = update.render_segments(app.console)
    return re.sub(r"\x1b\[[0-9;:?]*[A-Za-z]", "", written)


def assert_clean(app: TraceExplorerApp, where: str) -> str:
    text = screen_text(app)
    bad = UNSAFE.search(text)
    near = text[max(0, bad.start() - 40):bad.end() + 40] if bad else ""
    assert bad is None, f"{where}: {bad.group()!r} reaches the terminal near {near!r}"
    return text


async def listed(pilot: Pilot) -> TraceExplorerApp:
    app = pilot.app
    assert isinstance(app, TraceExplorerApp)
    await wait_for(pilot, lambda: len(app.buffer) == 2 and app.conn_state == "static",
                   what="the hostile list")
    await pilot.pause()
    return app


# --------------------------------------------------------------------------- the sanitiser


def test_safe_text_escapes_controls_and_bidi_visibly() -> None:
    assert safe_text("plain [text] ✓ 日本") == "plain [text] ✓ 日本"
    assert safe_text(ESCAPES) == ("\\x1b]0;pwned\\x07\\x1b[2J\\x1b]52;c;cm0gLXJmIH4=\\x07"
                                  "\\x07\\u202eevil\\x9b")
    assert safe_text("a\tb\nc\r") == "a\\x09b\\x0ac\\x0d"
    assert safe_text("a\tb\nc\r", multiline=True) == "a\tb\nc\\x0d"
    for ch in "\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x7f\x85":
        assert UNSAFE.search(safe_text(ch)) is None


def test_safe_rich_text_keeps_styles_on_their_characters() -> None:
    from rich.text import Text

    from trace_tui.tui.widgets.safe import markup_literal, safe_rich_text

    text = Text.assemble(("a\x1bb", "bold"), " ", ("c\u202ed", "red"), "\n")
    safe = safe_rich_text(text)
    assert safe.plain == "a\\x1bb c\\u202ed\n"
    assert [(safe.plain[s.start:s.end], s.style) for s in safe.spans] == [
        ("a\\x1bb", "bold"), ("c\\u202ed", "red")]
    ok = Text("fine")
    assert safe_rich_text(ok) is ok
    from textual.content import Content
    for needle in MARKUP:
        assert Content.from_markup(markup_literal(needle)).plain == needle


# --------------------------------------------------------------------------- the explorer


async def test_hostile_trace_through_list_trace_view_and_every_tab() -> None:
    app = hostile_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        text = assert_clean(app, "trace list")
        assert "\\x1b]0;" in text  # shown, escaped (the name column)
        assert "exp \\x1b]0;pwned" in text and "[/]" in text  # the status line
        app.go_to_trace(HOSTILE_TRACE)
        await wait_for(pilot, lambda: isinstance(app.screen, TraceViewScreen)
                       and app.screen.trace_tree is not None, what="the trace view")
        screen = app.screen
        assert isinstance(screen, TraceViewScreen)
        await pilot.pause(0.15)  # the detail pane follows the cursor after a short delay
        text = assert_clean(app, "trace view")
        assert "rag_agent \\x1b]0;pwned" in text  # the headline and the waterfall
        for tab in TABS:
            screen.detail.show_tab(tab)
            await pilot.pause()
            text = assert_clean(app, f"{tab} tab")
            assert re.search(r"\\(x1b|u001b)", screen.detail.body_text(tab)), tab  # shown
            assert UNSAFE.search(screen.detail.full_text(tab).replace("\n", "")) is None, (
                f"{tab}: the $PAGER text")
        assert "\\u202eevil" in screen.detail.body_text("assessments")
        assert "[/]" in screen.detail.body_text("assessments")  # literal, not markup
        await pilot.press("j", "j")  # another span, and the yank toast naming it
        await pilot.press("y")
        await pilot.pause(0.15)
        assert_clean(app, "another span with the yank toast")
        await pilot.press("plus")  # feedback modal names the span
        await wait_for(pilot, lambda: isinstance(app.screen, FeedbackScreen), what="modal")
        assert_clean(app, "feedback modal")
        await pilot.press("escape")
        app.go_to_trace("tr-[/]")  # not found: the server's message names it
        await wait_for(pilot, lambda: bool(screen.load_error), what="the load error")
        await pilot.pause()
        assert "Trace with ID 'tr-[/]' not found" in assert_clean(app, "load error")
        assert app.is_running


async def test_markup_in_toasts_status_filter_error_and_modals_shows_literally() -> None:
    app = hostile_app()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        for needle in MARKUP:
            app.notify(f"mlflow said {needle} {HOSTILE}", title=needle, severity="error")
            app.screen.notify(needle)
        app.set_conn("reconnecting", f"{MARKUP_TEXT} {HOSTILE}")
        app._filter_error(f"{MARKUP_TEXT} {HOSTILE}")
        await pilot.pause(0.1)
        text = assert_clean(app, "toasts, status line, filter error")
        for needle in MARKUP:
            assert needle in text
        # the experiment picker and the palette show server-side names
        await pilot.press("X")
        await wait_for(pilot, lambda: isinstance(app.screen, ExperimentPicker), what="picker")
        await pilot.pause()
        assert "[link=https://example.invalid]" in assert_clean(app, "experiment picker")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ExperimentPicker),
                       what="picker closed")
        provider = ExplorerCommands(app.screen)
        hits = [h async for h in provider.search("tr-a1277707")]
        assert hits and all(UNSAFE.search(str(h.prompt) + (h.help or "")) is None
                            for h in hits)
        app.action_command_palette()
        await pilot.pause(0.1)
        await pilot.press(*"tr-a127")
        await pilot.pause(0.3)
        assert "rag_agent \\x1b" in assert_clean(app, "palette")
        assert app.is_running


async def test_sampling_and_evaluation_screens_show_error_text_literally(
        tmp_path: Path) -> None:
    """A policy path with brackets: its error (and the report's) is shown, not parsed."""
    from trace_tui.evaluation.worker import TraceOutcome

    app = hostile_app()
    console = JudgeConsole()
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        app.push_screen(SamplingScreen(console))
        await pilot.pause()
        bad = tmp_path / "[SQL: x]" / "[bold" / "policy.toml"
        app.screen.open_policy(bad)
        await wait_for(pilot, lambda: bool(console.error), what="the policy error")
        await pilot.pause()
        text = assert_clean(app, "sampling error")
        assert "[SQL: x]" in text and "[bold" in text
        console.error = f"{MARKUP_TEXT} {HOSTILE}"
        app.screen._show()
        await pilot.pause()
        assert "[link=https://example.invalid]" in assert_clean(app, "sampling, error set")
        app.pop_screen()
        console.recent.appendleft(TraceOutcome(HOSTILE_TRACE, "failed",
                                               {hostile("judge"): "[/]"},
                                               error=f"{MARKUP_TEXT} {HOSTILE}"))
        app.push_screen(EvaluationScreen(console))
        await pilot.pause(0.1)
        assert_clean(app, "evaluation screen")
        (line,) = app.screen.query_one(RichLog).lines
        assert "=[/]  [SQL: x] [/] [bold" in line.text and "\\x1b]0;" in line.text
        assert app.is_running


# --------------------------------------------------------------------------- headless text


def test_headless_text_views_escape_every_trace_field() -> None:
    tree = decode_trace(hostile_payload())
    row = list_row(tree.info)
    shown = tree_to_text(tree, width=200)
    for text in (row, shown):
        assert UNSAFE.search(text.replace("\n", "")) is None
        assert "\\x1b]0" in text
    info = TraceInfo.from_json(hostile_payload()["trace_info"])
    assert list_row(info) == row


def _post_hostile_trace(uri: str, experiment_id: str) -> str:
    """A hostile trace logged through OTLP, with a hostile judge rationale; its id."""
    from trace_tui.core.client import MlflowClient
    from trace_tui.demo.traffic import any_value, post_otlp

    trace_hex = uuid.uuid4().hex
    start = 1767268800_000_000_000
    root, child = "1" * 16, "2" * 16
    attrs = {"mlflow.spanType": "AGENT", "mlflow.traceTag.mlflow.traceName": hostile("agent"),
             "mlflow.traceTag.route": hostile("route"), "session.id": hostile("sess"),
             "user.id": hostile("user"), "mlflow.spanInputs": {"q": HOSTILE},
             "note": MARKUP_TEXT + HOSTILE}
    spans = [
        {"traceId": trace_hex, "spanId": root, "name": hostile("agent"), "kind": 1,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 2_000_000_000),
         "attributes": [{"key": k, "value": any_value(v)} for k, v in attrs.items()],
         "status": {"code": 2, "message": hostile("failed")}},
        {"traceId": trace_hex, "spanId": child, "parentSpanId": root,
         "name": hostile("tool"), "kind": 1, "startTimeUnixNano": str(start + 1_000_000),
         "endTimeUnixNano": str(start + 1_000_000_000),
         "attributes": [{"key": "mlflow.spanType", "value": {"stringValue": hostile("TOOL")}}],
         "status": {"code": 1},
         "events": [{"timeUnixNano": str(start + 2_000_000), "name": hostile("event"),
                     "attributes": [{"key": "m", "value": {"stringValue": HOSTILE}}]}]},
    ]
    post_otlp(uri, experiment_id, spans)
    trace_id = "tr-" + trace_hex

    async def judge() -> None:
        async with MlflowClient(uri) as client:
            await client.create_assessment(trace_id, "judge", "no", source_type="LLM_JUDGE",
                                           source_id="judge", rationale=hostile("because"))

    asyncio.run(judge())
    return trace_id


def test_headless_traces_list_and_show_are_clean_and_json_is_exact(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    from tests.test_cli import run

    name, exp_id = fresh_experiment
    trace_id = _post_hostile_trace(mlflow_uri, exp_id)
    table = run("traces", "list", "--experiment", name, uri=mlflow_uri)
    assert table.returncode == 0, table.stderr
    assert trace_id in table.stdout and "agent \\x1b]0;pw" in table.stdout
    shown = run("traces", "show", trace_id, uri=mlflow_uri)
    assert shown.returncode == 0, shown.stderr
    assert "tool \\x1b]0;pwned" in shown.stdout
    for out in (table.stdout, table.stderr, shown.stdout, shown.stderr):
        assert UNSAFE.search(out.replace("\n", "")) is None, out
    listed_json = run("traces", "list", "--experiment", name, "--format", "json", uri=mlflow_uri)
    rows = json.loads(listed_json.stdout)
    assert rows[0]["name"] == hostile("agent")  # exact: the data, not its display form
    assert rows[0]["tags"]["route"] == hostile("route")
    full = json.loads(run("traces", "show", trace_id, "--format", "json", "--full",
                          uri=mlflow_uri).stdout)
    assert [s["name"] for s in full["spans"]] == [hostile("agent"), hostile("tool")]
    assert full["spans"][0]["error"] == hostile("failed")
    assert full["spans"][0]["attributes"]["note"] == MARKUP_TEXT + HOSTILE
