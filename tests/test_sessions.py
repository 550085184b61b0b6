"""Drill-down clauses and session totals (pure), and the drill-down and session view in the
explorer on frozen traces (issue 9, item 11)."""

from __future__ import annotations

import json

from trace_tui.config.settings import Settings
from trace_tui.core.client import MlflowClient
from trace_tui.core.model import Assessment, TraceInfo
from trace_tui.core.sessions import drill_clauses, session_totals
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.sources import StaticTraceSource

from .test_tui_list_behaviour import _until
from .test_tui_static import FIXTURES, listed


def info(trace_id: str, start: int, duration: float, state: str = "OK", *,
         meta: dict[str, str] | None = None, tags: dict[str, str] | None = None,
         assessments: list[Assessment] | None = None) -> TraceInfo:
    tags = {"mlflow.traceName": "agent", **(tags or {})}
    return TraceInfo(trace_id, "1", "agent", state, start, duration, tags, meta or {},
                     assessments or [])


def test_drill_clauses_cover_session_user_route_name_and_skip_unquotable() -> None:
    row = info("tr-1", 0, 1.0, meta={"mlflow.trace.session": "sess-3",
                                     "mlflow.trace.user": "o'brien"},
               tags={"route": "search"})
    clauses = {label: clause for label, _, clause in drill_clauses(row)}
    assert clauses == {"session": "metadata.`mlflow.trace.session` = 'sess-3'",
                       "route": "tags.`route` = 'search'", "name": "trace.name = 'agent'"}


def test_session_totals() -> None:
    usage = json.dumps({"input_tokens": 10, "output_tokens": 4, "total_tokens": 14})
    cost = json.dumps({"total_cost": 0.5})
    thumbs = Assessment("a1", "user_feedback", "HUMAN", "me", True)
    judge = Assessment("a2", "helpful", "LLM_JUDGE", "j", "yes")
    rows = [info("tr-1", 1000, 200.0, meta={"mlflow.trace.tokenUsage": usage,
                                            "mlflow.trace.cost": cost},
                 assessments=[thumbs, judge]),
            info("tr-2", 2000, 500.0, "ERROR", meta={"mlflow.trace.tokenUsage": usage})]
    t = session_totals(rows)
    assert (t.traces, t.duration_ms, t.span_ms) == (2, 700.0, 1500.0)
    assert (t.input_tokens, t.output_tokens, t.cost_usd, t.errors) == (20, 8, 0.5, 1)
    assert (t.thumbs_up, t.thumbs_down, t.judged_pass, t.judged) == (1, 0, 1, 1)


def session_app() -> tuple[TraceExplorerApp, list[str]]:
    payloads = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.trace.json"))]
    shared = []
    for payload in payloads[:3]:
        payload["trace_info"].setdefault("trace_metadata", {})[
            "mlflow.trace.session"] = "sess-shared"
        shared.append(payload["trace_info"]["trace_id"])
    source = StaticTraceSource(payloads)
    app = TraceExplorerApp("static://fixtures", settings=Settings(buffer_size=100),
                           source=source, clock=lambda: 1767268830.0, persist_settings=False)
    return app, shared


async def test_drill_down_on_the_session_then_the_session_view() -> None:
    from trace_tui.tui.screens.session import SessionScreen

    app, shared = session_app()
    async with app.run_test(size=(130, 36)) as pilot:
        await listed(pilot)
        app.table.go_to(shared[1])
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("enter")  # the first choice: the session
        await _until(pilot, lambda: app.active_filter
                     == "metadata.`mlflow.trace.session` = 'sess-shared'" and len(app.buffer) == 3)
        assert set(app.buffer.by_id) == set(shared)
        assert "sess-shared" in str(app.screen.filter_bar.query_one("#filter-summary").content)
        await pilot.press("V")
        await _until(pilot, lambda: isinstance(app.screen, SessionScreen) and app.screen.loaded)
        screen = app.screen
        rows = screen.table.rows
        assert sorted(r.trace_id for r in rows) == sorted(shared)
        times = [r.request_time_ms for r in rows]
        assert times == sorted(times)  # in order
        summary = str(screen.summary.content)
        assert "3 traces" in summary and "sess-shared" in summary and "errors" in summary
        assert screen.table.row_text(0).lstrip().startswith("1 ")
        await pilot.press("enter")
        await _until(pilot, lambda: getattr(app.screen, "trace_id", None) == rows[0].trace_id)


async def test_every_drill_clause_is_a_filter_the_server_accepts(seeded) -> None:
    async with MlflowClient(seeded.uri) as client:
        (row,) = await client.batch_get_trace_infos(seeded.trace_ids[:1])
        clauses = drill_clauses(row)
        assert {label for label, _, _ in clauses} >= {"session", "user", "route", "name"}
        for label, value, clause in clauses:
            found = await client.search_traces([seeded.experiment_id], filter_string=clause)
            assert row.trace_id in {i.trace_id for i in found}, clause
            if label == "session":
                assert all(i.session == value for i in found)


async def test_session_view_of_the_marked_traces() -> None:
    from trace_tui.tui.screens.session import SessionScreen

    app, _ = session_app()
    async with app.run_test(size=(130, 36)) as pilot:
        await listed(pilot)
        await pilot.press("space", "j", "space")
        marked = app.selected_trace_ids
        await pilot.press("V")
        await _until(pilot, lambda: isinstance(app.screen, SessionScreen) and app.screen.loaded)
        assert sorted(r.trace_id for r in app.screen.table.rows) == sorted(marked)
        assert "2 marked traces" in str(app.screen.summary.content)
