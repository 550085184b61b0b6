"""Unit tests of the explorer's pure helpers: formatting, stats, bars, the trace buffer."""

from __future__ import annotations

import pytest

from trace_tui.core.model import Assessment, Span, TokenUsage, TraceInfo, build_tree
from trace_tui.core.render import (
    assessment_summary,
    feedback_counts,
    fmt_cost,
    fmt_count,
    fmt_duration,
    fmt_tokens,
    percentiles,
    rate_per_min,
    span_to_dict,
    sparkline,
    truncate_text,
    waterfall_bar,
)
from trace_tui.tui.list_state import compose_filter
from trace_tui.tui.widgets.line_list import fit
from trace_tui.tui.widgets.span_waterfall import flatten
from trace_tui.tui.widgets.trace_table import TraceBuffer, layout_columns


def info(n: int, *, t: int | None = None, dur: float = 100.0, tokens: int | None = None,
         cost: float | None = None, state: str = "OK") -> TraceInfo:
    meta = {}
    if tokens is not None:
        meta["mlflow.trace.tokenUsage"] = (
            f'{{"input_tokens": {tokens}, "output_tokens": 0, "total_tokens": {tokens}}}')
    if cost is not None:
        meta["mlflow.trace.cost"] = f'{{"total_cost": {cost}}}'
    return TraceInfo(trace_id=f"tr-{n:04d}", experiment_id="1", name=f"t{n}", state=state,
                     request_time_ms=t if t is not None else 1000 * n, duration_ms=dur,
                     tags={}, metadata=meta, assessments=[])


@pytest.mark.parametrize(("ms", "text"), [
    (None, "-"), (0.42, "0.4ms"), (12.4, "12ms"), (999, "999ms"), (1234, "1.23s"),
    (12_345, "12.3s"), (125_000, "2m05s"), (3_720_000, "1h02m"),
])
def test_fmt_duration(ms, text) -> None:
    assert fmt_duration(ms) == text


def test_counts_tokens_costs() -> None:
    assert fmt_count(None) == ""
    assert fmt_count(377) == "377"
    assert fmt_count(12_345) == "12k"
    assert fmt_count(1_500) == "1.5k"
    assert fmt_count(2_500_000) == "2.5M"
    assert fmt_tokens(TokenUsage(377, 38, 415)) == "377/38"
    assert fmt_tokens(None) == ""
    assert fmt_cost(None) == ""
    assert fmt_cost(0.0012) == "$0.0012"
    assert fmt_cost(0.00005) == "$0.00005"
    assert fmt_cost(0.123) == "$0.123"
    assert fmt_cost(12.3) == "$12.30"


def test_percentiles_and_rate() -> None:
    assert percentiles([]) == [None, None, None]
    p50, p95, p99 = percentiles(range(1, 101))
    assert p50 == pytest.approx(50.5)
    assert p95 == pytest.approx(95.05)
    assert p99 == pytest.approx(99.01)
    assert rate_per_min([1000, 50_000, 59_000, 61_000], now_ms=61_000) == 3.0


def test_sparkline_and_bar() -> None:
    assert sparkline([], 10) == ""
    line = sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8)
    assert line[0] == "▁" and line[-1] == "█" and len(line) == 8
    assert len(sparkline(list(range(1000)), 24)) == 24
    lead, bar = waterfall_bar(0.0, 1.0, 20)
    assert lead == 0 and bar == "█" * 20
    lead, bar = waterfall_bar(0.5, 0.75, 20)
    assert lead == 10 and bar == "█" * 5
    lead, bar = waterfall_bar(0.999, 0.999, 20)  # zero-length span stays visible
    assert lead == 19 and len(bar) == 1 and bar.strip()


def test_fit_crops_and_pads_by_cell_width() -> None:
    assert fit("abc", 5) == "abc  "
    assert fit("abc", 5, "right") == "  abc"
    assert fit("abcdef", 4) == "abc…"
    assert fit("日本語", 4) == "日 …" or len(fit("日本語", 4)) <= 4


def test_assessment_summary() -> None:
    def a(value, source="LLM_JUDGE", error=None):
        return Assessment("a", "x", source, "s", value, error=error)
    items = [a(True, "HUMAN"), a(False, "HUMAN"), a(True, "HUMAN"), a("yes"), a("no"),
             a(1.0), a(0.9), a(None, error="boom")]
    # an undeclared 0.9 is a score, not a verdict (samplers.verdicts): not in the tally
    assert feedback_counts(items) == (2, 1, 2, 4)
    assert assessment_summary(items) == "+2 -1 J2/4"
    assert assessment_summary([]) == ""


def test_truncate_text() -> None:
    text = "\n".join(str(i) for i in range(1000))
    shown, cut = truncate_text(text, max_lines=10)
    assert cut and shown.count("\n") == 9
    assert truncate_text("short") == ("short", False)
    shown, cut = truncate_text("x" * 50, max_chars=10)
    assert cut and shown == "x" * 10


def test_compose_filter() -> None:
    assert compose_filter("", False, None) == ""
    assert compose_filter("tags.a = 'b'", True, 250.0) == (
        "tags.a = 'b' AND trace.status = 'ERROR' AND trace.execution_time_ms > 250")


def test_layout_columns_drop_optional_columns_when_narrow() -> None:
    wide = [c.key for c in layout_columns(140)]
    assert wide == ["mark", "time", "status", "name", "duration", "tokens", "cost", "who",
                    "assess"]
    narrow = [c.key for c in layout_columns(70)]
    assert "name" in narrow and "assess" not in narrow
    assert sum(c.width + 1 for c in layout_columns(140)) == 140


# --------------------------------------------------------------------------- buffer


def test_buffer_merge_sorts_newest_first_and_dedupes() -> None:
    buf = TraceBuffer(100)
    res = buf.merge([info(3), info(1), info(2)])
    assert res.added == 3
    assert [r.trace_id for r in buf.rows] == ["tr-0003", "tr-0002", "tr-0001"]
    res = buf.merge([info(2), info(4)])  # tr-0002 again (a new object): an update
    assert (res.added, res.updated) == (1, 1)
    assert [r.trace_id for r in buf.rows] == ["tr-0004", "tr-0003", "tr-0002", "tr-0001"]
    assert buf.index_of("tr-0002") == 2
    assert buf.index_of("nope") is None


def test_buffer_evicts_oldest_by_time_whatever_the_arrival_order() -> None:
    buf = TraceBuffer(5)
    buf.merge([info(n) for n in range(10, 0, -1)])  # a search page: newest first
    assert [r.trace_id for r in buf.rows] == [f"tr-{n:04d}" for n in range(10, 5, -1)]
    buf.merge([info(11), info(12)])
    assert [r.trace_id for r in buf.rows] == [f"tr-{n:04d}" for n in range(12, 7, -1)]
    assert len(buf.by_id) == 5


def test_buffer_sorts_by_each_key_and_replaces() -> None:
    buf = TraceBuffer(100)
    buf.merge([info(1, dur=50, tokens=10, cost=0.5), info(2, dur=500, tokens=5),
               info(3, dur=5, cost=0.01)])
    buf.set_sort("duration")
    assert [r.trace_id for r in buf.rows] == ["tr-0002", "tr-0001", "tr-0003"]
    buf.set_sort("tokens")
    assert [r.trace_id for r in buf.rows] == ["tr-0001", "tr-0002", "tr-0003"]
    buf.set_sort("cost")
    assert [r.trace_id for r in buf.rows] == ["tr-0001", "tr-0003", "tr-0002"]
    buf.set_sort("duration")
    assert buf.replace(info(3, dur=5000))
    assert buf.rows[0].trace_id == "tr-0003"
    assert not buf.replace(info(99))
    with pytest.raises(ValueError):
        buf.set_sort("nope")


def test_buffer_large_batches_stay_sorted() -> None:
    buf = TraceBuffer(1000)
    import random
    rng = random.Random(1)
    times = rng.sample(range(100_000), 3000)
    for start in range(0, 3000, 300):
        buf.merge([info(i, t=times[i]) for i in range(start, start + 300)])
    kept = [r.request_time_ms for r in buf.rows]
    assert kept == sorted(times, reverse=True)[:1000]


# --------------------------------------------------------------------------- spans


def span(sid: str, parent: str | None, start: int, end: int, **attrs) -> Span:
    return Span(span_id=sid, parent_id=parent, name=sid, start_ns=start, end_ns=end,
                status="OK", status_message="", attributes=dict(attrs), events=[])


def test_flatten_skips_folded_subtrees_and_span_json() -> None:
    spans = [span("a", None, 0, 100), span("b", "a", 1, 50), span("c", "b", 2, 10),
             span("d", "a", 60, 90)]
    tree = build_tree(info(1), spans)
    assert [s.name for s in flatten(tree.roots, set())] == ["a", "b", "c", "d"]
    assert [s.name for s in flatten(tree.roots, {"b"})] == ["a", "b", "d"]
    assert [s.name for s in flatten(tree.roots, {"a"})] == ["a"]
    data = span_to_dict(tree.roots[0], subtree=True)
    assert [c["name"] for c in data["children"]] == ["b", "d"]
    assert data["children"][0]["children"][0]["name"] == "c"
    assert "children" not in span_to_dict(tree.roots[0])


def test_span_to_dict_handles_a_very_deep_chain() -> None:
    spans = [span("s0", None, 0, 10_000)]
    spans += [span(f"s{i}", f"s{i - 1}", i, 10_000 - i) for i in range(1, 5000)]
    tree = build_tree(info(1), spans)
    data = span_to_dict(tree.roots[0], subtree=True)
    depth = 0
    while data["children"]:
        data = data["children"][0]
        depth += 1
    assert depth == 4999


def test_buffer_keeps_sorted_durations_through_updates_and_evictions() -> None:
    import random

    rng = random.Random(7)
    buf = TraceBuffer(50)
    for start in range(0, 400, 40):
        buf.merge([info(i, dur=rng.uniform(1, 1000)) for i in range(start, start + 40)])
    buf.merge([info(399, dur=5.0), info(398, dur=None)])  # updates
    expected = sorted(r.duration_ms for r in buf.rows if r.duration_ms is not None)
    assert buf.durations() == expected
    assert len(buf.rows) == 50
    newest = buf.newest(5)
    assert [r.trace_id for r in newest] == [f"tr-{n:04d}" for n in range(395, 400)]
    buf.set_sort("duration")
    assert [r.trace_id for r in buf.newest(5)] == [f"tr-{n:04d}" for n in range(395, 400)]


def test_list_badges_show_queue_state_thumbs_and_judge_tally() -> None:
    from trace_tui.core.model import Assessment
    from trace_tui.core.render import list_badges

    judged = [Assessment("a1", "quality", "LLM_JUDGE", "openai:/m", "yes"),
              Assessment("a2", "safety", "LLM_JUDGE", "openai:/m", "no"),
              Assessment("a3", "user_feedback", "HUMAN", "bob", True)]
    assert list_badges({"trace_tui.queue": "done"}, judged) == "J +1 -0 J1/2"
    assert list_badges({"trace_tui.queue": "queued"}, []) == "Q"
    assert list_badges({"trace_tui.queue": "failed"}, []) == "F"
    assert list_badges({}, []) == ""
