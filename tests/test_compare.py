"""Aligning two span trees by path (pure): added/removed spans, deltas, first divergence."""

from __future__ import annotations

from trace_tui.core.compare import compare
from trace_tui.core.model import Span, TraceInfo, TraceTree, build_tree

MS = 1_000_000


def span(sid: str, parent: str | None, name: str, start: int, end: int, *,
         tokens: int | None = None, output: object = None, error: bool = False) -> Span:
    attrs: dict[str, object] = {}
    if tokens is not None:
        attrs["mlflow.chat.tokenUsage"] = {"input_tokens": tokens, "output_tokens": 0,
                                           "total_tokens": tokens}
    if output is not None:
        attrs["mlflow.spanOutputs"] = output
    return Span(sid, parent, name, start * MS, end * MS, "ERROR" if error else "OK", "",
                attrs, [])


def tree(trace_id: str, spans: list[Span]) -> TraceTree:
    info = TraceInfo(trace_id, "1", "agent", "OK", 0, None, {}, {}, [])
    return build_tree(info, spans)


def test_aligns_by_name_and_sibling_index_and_reports_changes() -> None:
    left = tree("tr-a", [
        span("a", None, "agent", 0, 100, output="A1"),
        span("b", "a", "retrieve", 1, 20, output=["d1"]),
        span("c", "a", "llm", 21, 60, tokens=100, output="draft"),
        span("d", "a", "llm", 61, 99, tokens=50, output="final"),
        span("e", "a", "cache", 99, 100),
    ])
    right = tree("tr-b", [
        span("A", None, "agent", 0, 180, output="A2"),
        span("B", "A", "retrieve", 1, 30, output=["d1"]),
        span("X", "A", "rerank", 31, 40),
        span("C", "A", "llm", 41, 120, tokens=130, output="draft 2"),
        span("D", "A", "llm", 121, 179, tokens=40, output="final"),
    ])
    cmp = compare(left, right)
    rows = {r.path: r for r in cmp.rows}
    assert [r.path for r in cmp.rows] == [
        "agent[0]", "agent[0]/retrieve[0]", "agent[0]/rerank[0]", "agent[0]/llm[0]",
        "agent[0]/llm[1]", "agent[0]/cache[0]"]
    assert rows["agent[0]/rerank[0]"].change == "added"
    assert rows["agent[0]/cache[0]"].change == "removed"
    assert rows["agent[0]/llm[1]"].left.span_id == "d"
    assert rows["agent[0]/llm[1]"].right.span_id == "D"
    assert rows["agent[0]/llm[0]"].duration_delta_ms == 79 - 39
    assert rows["agent[0]/llm[0]"].tokens_delta == 30
    assert rows["agent[0]/llm[1]"].tokens_delta == -10
    assert rows["agent[0]"].tokens_delta == 20
    assert rows["agent[0]/rerank[0]"].duration_delta_ms is None
    assert (cmp.added, cmp.removed) == (1, 1)
    assert cmp.tokens_delta == 20
    # the first output to differ is the first llm call, not the root that inherits it
    assert cmp.first_divergence is not None
    assert cmp.first_divergence.path == "agent[0]/llm[0]"
    assert (cmp.first_divergence.left, cmp.first_divergence.right) == ("draft", "draft 2")
    assert [r.depth for r in cmp.rows] == [0, 1, 1, 1, 1, 1]


def test_identical_trees_have_no_changes_and_no_divergence() -> None:
    def spans(prefix: str) -> list[Span]:
        return [span(prefix + "r", None, "agent", 0, 10, output={"a": 1}),
                span(prefix + "t", prefix + "r", "tool", 1, 5, error=True)]
    cmp = compare(tree("tr-a", spans("x")), tree("tr-b", spans("y")))
    assert all(r.change == "same" for r in cmp.rows)
    assert cmp.first_divergence is None
    assert not any(r.error_changed for r in cmp.rows)


def test_different_roots_are_one_removed_and_one_added_subtree() -> None:
    cmp = compare(tree("tr-a", [span("a", None, "agent", 0, 5),
                                span("b", "a", "llm", 1, 4)]),
                  tree("tr-b", [span("c", None, "router", 0, 5)]))
    assert [(r.path, r.change) for r in cmp.rows] == [
        ("router[0]", "added"), ("agent[0]", "removed"), ("agent[0]/llm[0]", "removed")]
