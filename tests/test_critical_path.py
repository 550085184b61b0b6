"""The critical path: the chain of spans that sets the trace's end, on fixtures with known
answers (sequential steps, a parallel fan-out, nesting, overlaps and gaps)."""

from __future__ import annotations

from trace_tui.core.model import Span, TraceInfo, TraceTree, build_tree

MS = 1_000_000


def tree_of(*spans: tuple[str, str | None, int, int]) -> TraceTree:
    """(name, parent name, start ms, end ms) -> tree; names double as ids."""
    info = TraceInfo.from_json({"trace_id": "tr-1", "request_time": "2026-01-01T00:00:00Z",
                                "state": "OK"})
    return build_tree(info, [Span(n, p, n, a * MS, b * MS, "OK", "", {}, [])
                             for n, p, a, b in spans])


def on_path(tree: TraceTree) -> set[str]:
    return {tree.spans[i].name for i in tree.critical_path()}


def test_sequential_steps_are_all_on_the_path() -> None:
    # The reported bug: a long router step followed by a 4 ms formatter; only the last
    # child was marked, hiding the step that took 82% of the trace.
    tree = tree_of(("agent", None, 0, 7500), ("llm_router", "agent", 10, 6160),
                   ("retrieve", "agent", 6170, 7400), ("format_answer", "agent", 7401, 7405))
    assert on_path(tree) == {"agent", "llm_router", "retrieve", "format_answer"}


def test_parallel_fan_out_keeps_only_the_slowest_branch() -> None:
    tree = tree_of(("root", None, 0, 1000), ("fetch_a", "root", 0, 300),
                   ("fetch_b", "root", 0, 900), ("fetch_c", "root", 0, 500),
                   ("merge", "root", 900, 1000))
    assert on_path(tree) == {"root", "fetch_b", "merge"}


def test_nested_children_are_walked_within_their_parent() -> None:
    tree = tree_of(("root", None, 0, 1000), ("plan", "root", 0, 200),
                   ("act", "root", 200, 1000), ("tool_fast", "act", 210, 300),
                   ("tool_slow", "act", 210, 800), ("summarise", "act", 800, 990),
                   ("inner", "tool_slow", 220, 700), ("side", "plan", 0, 50))
    # plan's own child ends at 50 ms, then plan runs alone until 200: side is still the
    # last thing plan waited on before that point.
    assert on_path(tree) == {"root", "plan", "side", "act", "tool_slow", "inner", "summarise"}


def test_overlapping_child_is_bounded_and_the_earlier_one_follows() -> None:
    # b ends after the point c starts at; c ends last, so c then b (bounded by c's start).
    tree = tree_of(("root", None, 0, 100), ("a", "root", 0, 30), ("b", "root", 20, 70),
                   ("c", "root", 60, 100))
    assert on_path(tree) == {"root", "c", "b", "a"}


def test_children_after_a_gap_and_self_time() -> None:
    # The root works alone from 250 to 1000 and from 100 to 150 (self time): both children
    # were still waited on in turn.
    tree = tree_of(("root", None, 0, 1000), ("early", "root", 0, 100),
                   ("late", "root", 150, 250))
    assert on_path(tree) == {"root", "early", "late"}
    tree = tree_of(("root", None, 0, 1000), ("covered", "root", 100, 200),
                   ("wide", "root", 50, 600))
    assert on_path(tree) == {"root", "wide"}  # covered lies inside wide's window


def test_deep_chain_does_not_recurse() -> None:
    spans = [("s0", None, 0, 100_000)]
    spans += [(f"s{i}", f"s{i - 1}", i, 100_000 - i) for i in range(1, 5000)]
    assert len(tree_of(*spans).critical_path()) == 5000
