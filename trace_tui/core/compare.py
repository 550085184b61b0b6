"""Two traces side by side: span trees aligned by path, with per-span deltas (pure, no I/O).

A span's path is the chain of ``name[n]`` from its root, ``n`` counting earlier siblings of
the same name (``agent[0]/chat_completion[1]``): the second LLM call of one run lines up with
the second of the other, whatever the ids and timings. Spans only on the left are *removed*,
only on the right *added*.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trace_tui.core.model import Span, TraceTree


@dataclass(frozen=True, slots=True)
class SpanPair:
    """One aligned row: ``left``/``right`` is None where the span exists on one side only."""

    path: str
    name: str
    depth: int
    left: Span | None
    right: Span | None

    @property
    def change(self) -> str:
        """``same``, ``added`` (right only) or ``removed`` (left only)."""
        if self.left is None:
            return "added"
        if self.right is None:
            return "removed"
        return "same"

    @property
    def duration_delta_ms(self) -> float | None:
        if self.left is None or self.right is None:
            return None
        return self.right.duration_ms - self.left.duration_ms

    @property
    def tokens_delta(self) -> int | None:
        """Right minus left of the span's subtree tokens (the server's counting rule)."""
        if self.left is None or self.right is None:
            return None
        return self.right.tokens_total.total - self.left.tokens_total.total

    @property
    def error_changed(self) -> bool:
        return (self.left is not None and self.right is not None
                and self.left.is_error != self.right.is_error)


@dataclass(frozen=True, slots=True)
class Divergence:
    """The aligned span whose differing output was produced first (earliest end on the
    left): where the two runs start to disagree, not the root that inherits it."""

    path: str
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class TraceComparison:
    left: TraceTree
    right: TraceTree
    rows: list[SpanPair]
    first_divergence: Divergence | None

    @property
    def added(self) -> int:
        return sum(1 for r in self.rows if r.change == "added")

    @property
    def removed(self) -> int:
        return sum(1 for r in self.rows if r.change == "removed")

    @property
    def duration_delta_ms(self) -> float:
        return self.right.duration_ms - self.left.duration_ms

    @property
    def tokens_delta(self) -> int:
        return self.right.tokens.total - self.left.tokens.total


def _keyed(spans: Iterable[Span]) -> list[tuple[str, Span]]:
    """``name[n]`` keys, ``n`` counting same-named siblings in start order."""
    seen: dict[str, int] = {}
    out = []
    for span in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        n = seen.get(span.name, 0)
        seen[span.name] = n + 1
        out.append((f"{span.name}[{n}]", span))
    return out


def align(left: Sequence[Span], right: Sequence[Span], prefix: str = "", depth: int = 0
          ) -> list[SpanPair]:
    """Aligned rows for two sibling lists and their subtrees, depth first: the left's order,
    each right-only span after the row it follows on the right."""
    lk, rk = _keyed(left), _keyed(right)
    right_by_key = dict(rk)
    left_keys = {k for k, _ in lk}
    rows: list[SpanPair] = []
    pending_right = [(k, s) for k, s in rk]
    # right-only spans are placed after the shared span that precedes them on the right
    after: dict[str | None, list[tuple[str, Span]]] = {}
    last_shared: str | None = None
    for key, span in pending_right:
        if key in left_keys:
            last_shared = key
        else:
            after.setdefault(last_shared, []).append((key, span))

    def emit(key: str, lspan: Span | None, rspan: Span | None) -> None:
        path = f"{prefix}/{key}" if prefix else key
        name = (lspan or rspan).name  # type: ignore[union-attr]
        rows.append(SpanPair(path, name, depth, lspan, rspan))
        rows.extend(align(lspan.children if lspan else [], rspan.children if rspan else [],
                          path, depth + 1))

    for key, span in after.get(None, []):
        emit(key, None, span)
    for key, span in lk:
        emit(key, span, right_by_key.get(key))
        for rkey, rspan in after.get(key, []):
            emit(rkey, None, rspan)
    return rows


def compare(left: TraceTree, right: TraceTree) -> TraceComparison:
    rows = align(left.roots, right.roots)
    shared = [r for r in rows if r.left is not None and r.right is not None]
    shared.sort(key=lambda r: (r.left.end_ns, r.path))  # type: ignore[union-attr]
    divergence = next((Divergence(r.path, r.left.outputs, r.right.outputs)  # type: ignore[union-attr]
                       for r in shared
                       if r.left.outputs != r.right.outputs), None)  # type: ignore[union-attr]
    return TraceComparison(left, right, rows, divergence)
