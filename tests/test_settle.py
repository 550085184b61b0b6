"""RowSettler: which listed rows are re-read until they match the server (pure logic)."""

from __future__ import annotations

from dataclasses import replace

from trace_tui.core.model import TraceInfo
from trace_tui.core.settle import RowSettler

NOW = 1_800_000_000_000


def info(trace_id: str = "tr-1", *, state: str = "OK", name: str = "agent",
         start: int = NOW - 1000, duration: float | None = 500.0,
         tokens: str | None = None) -> TraceInfo:
    meta = {"mlflow.trace.tokenUsage": tokens} if tokens else {}
    tags = {"mlflow.traceName": name} if name else {}
    return TraceInfo(trace_id, "1", name, state, start, duration, tags, meta, [])


def test_search_rows_that_look_final_are_not_watched() -> None:
    s = RowSettler(recent_ms=30_000)
    old = info("tr-old", start=NOW - 120_000)
    s.observe([old, info("tr-run", state="IN_PROGRESS", start=NOW - 120_000),
               info("tr-anon", name="", start=NOW - 120_000), info("tr-recent")], NOW)
    assert "tr-old" not in s
    assert {"tr-run", "tr-anon", "tr-recent"} <= s.watching.keys()
    s.observe([old], NOW, fresh=True)  # a live arrival is always watched
    assert "tr-old" in s


def test_a_row_is_reread_until_it_stops_changing_then_let_go() -> None:
    s = RowSettler(quiet_ms=5_000)
    first = info(state="IN_PROGRESS", name="", start=NOW - 200, duration=100.0)
    s.observe([first], NOW)
    assert s.due(NOW) == ["tr-1"]
    # the root lands: finished, started earlier, longer
    done = info(name="", start=NOW - 900, duration=800.0, tokens='{"input_tokens": 5}')
    assert s.update(["tr-1"], [done], NOW + 1000) == [done]
    # the name tag and a straggling span land later
    final = replace(done, name="agent", tags={"mlflow.traceName": "agent"},
                    metadata={"mlflow.trace.tokenUsage": '{"input_tokens": 9}'})
    assert s.update(["tr-1"], [final], NOW + 4000) == [final]
    assert s.update(["tr-1"], [final], NOW + 5000) == []
    assert "tr-1" in s  # unchanged for 1 s only
    assert s.update(["tr-1"], [final], NOW + 9000) == []
    assert "tr-1" not in s


def test_unnamed_rows_wait_longer_and_stuck_rows_back_off_then_give_up() -> None:
    s = RowSettler(quiet_ms=5_000, unnamed_quiet_ms=30_000, give_up_ms=600_000)
    anon = info(name="")
    stuck = info("tr-stuck", state="IN_PROGRESS")
    s.observe([anon, stuck], NOW)
    s.update(["tr-1", "tr-stuck"], [anon, stuck], NOW + 10_000)
    assert "tr-1" in s  # no name yet: maybe the tags are still coming
    s.update(["tr-1"], [anon], NOW + 31_000)
    assert "tr-1" not in s
    s.update(["tr-stuck"], [stuck], NOW + 120_000)
    assert s.due(NOW + 121_000) == []  # re-read less often as it ages
    assert s.due(NOW + 120_000 + 12_000) == ["tr-stuck"]
    s.update(["tr-stuck"], [stuck], NOW + 600_000)
    assert "tr-stuck" not in s


def test_deleted_rows_and_stale_arrivals() -> None:
    s = RowSettler()
    s.observe([info("tr-a"), info("tr-b")], NOW, fresh=True)
    assert s.update(["tr-a", "tr-b"], [info("tr-b")], NOW) == []
    assert "tr-a" not in s  # the server no longer has it
    newer = info("tr-b", tokens='{"input_tokens": 3}')
    s.update(["tr-b"], [newer], NOW + 100)
    s.observe([info("tr-b")], NOW + 200, fresh=True)  # an older copy arrives from the stream
    assert s.update(["tr-b"], [newer], NOW + 300) == [newer]  # the list gets the newer back
