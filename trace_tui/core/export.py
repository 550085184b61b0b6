"""Plain-data views of traces (JSON-ready dicts), the text tree and the list table, shared by
the headless commands and the explorer's yank/export.

The dicts carry trace data as it is (JSON output stays exact); the text views pass every
value from the trace through ``safe_text``: they go to a terminal."""

from __future__ import annotations

import time
from typing import Any

from trace_tui.core.model import Assessment, Span, TokenUsage, TraceInfo, TraceTree
from trace_tui.core.render import (
    assessment_summary,
    assessment_to_dict,
    fmt_assessment_value,
    fmt_cost,
    fmt_count,
    fmt_duration,
    fmt_tokens,
    is_pass,
)
from trace_tui.core.text import safe_text


def tokens_dict(usage: TokenUsage | None) -> dict[str, int] | None:
    return usage.as_dict() if usage is not None else None


def info_to_dict(info: TraceInfo) -> dict[str, Any]:
    """One trace-list row (``traces list``, ``traces tail``)."""
    return {
        "trace_id": info.trace_id,
        "name": info.name,
        "status": info.state,
        "request_time_ms": info.request_time_ms,
        "duration_ms": info.duration_ms,
        "tokens": tokens_dict(info.tokens),
        "cost_usd": info.cost_usd,
        "session": info.session or None,
        "user": info.user or None,
        "tags": {k: v for k, v in info.tags.items() if not k.startswith("mlflow.")},
        "assessments": len(info.assessments),
    }


def list_header() -> str:
    """The header line of the ``traces list`` table."""
    return (f"{'time':<19}  {'trace_id':<35} {'name':<16} {'status':<6} {'duration':>9} "
            f"{'tokens':>10} {'cost':>9}")


def list_row(info: TraceInfo) -> str:
    """One line of the ``traces list`` table (trace values made safe for a terminal)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.request_time_ms / 1000))
    cost = fmt_cost(info.cost_usd) or "-"
    name = safe_text(info.name)[:16]
    return (f"{when:<19}  {safe_text(info.trace_id):<35} {name:<16} {safe_text(info.state):<6} "
            f"{fmt_duration(info.duration_ms):>9} {fmt_tokens(info.tokens) or '-':>10} "
            f"{cost:>9}")


def span_to_dict(tree: TraceTree, span: Span, *, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "name": span.name,
        "type": span.span_type,
        "status": span.status,
        "depth": span.depth,
        "start_offset_ms": round(tree.offset_ms(span), 3),
        "duration_ms": round(span.duration_ms, 3),
        "tokens": tokens_dict(span.tokens),
        "tokens_total": span.tokens_total.as_dict(),
        "model": span.model or None,
        "cost_usd": span.cost_usd,
    }
    if span.is_error:
        out["error"] = span.status_message
    if full:
        out["inputs"] = span.inputs
        out["outputs"] = span.outputs
        out["attributes"] = span.attributes
        out["events"] = [{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes}
                         for e in span.events]
    return out


def tree_to_dict(tree: TraceTree, *, full: bool = False) -> dict[str, Any]:
    """The ``traces show --format json`` document: spans in tree order."""
    stored = tree.info.tokens
    return {
        "trace_id": tree.trace_id,
        "name": tree.name,
        "status": tree.status,
        "duration_ms": tree.duration_ms,
        "tokens": tree.tokens.as_dict(),
        "tokens_stored": tokens_dict(stored),
        "tokens_mismatch": tree.tokens_mismatch,
        "cost_usd": tree.cost_usd,
        "session": tree.info.session or None,
        "user": tree.info.user or None,
        "tags": {k: v for k, v in tree.info.tags.items() if not k.startswith("mlflow.")},
        "span_count": len(tree.spans),
        "spans": [span_to_dict(tree, s, full=full) for s in tree.walk()],
        "assessments": [assessment_to_dict(a) for a in tree.info.assessments],
    }


def tree_to_text(tree: TraceTree, *, width: int = 100, bar_width: int = 24) -> str:
    """The span tree as text: indentation, type, offsets, durations, tokens, a waterfall."""
    span_total = max(1, tree.end_ns - tree.start_ns)
    status = tree.status + ("  (tokens: stored total disagrees with spans)"
                            if tree.tokens_mismatch else "")
    cost = f"  {fmt_cost(tree.cost_usd)}" if tree.cost_usd else ""
    lines = [
        safe_text(f"{tree.trace_id}  {tree.name}  {status}"),
        f"duration {fmt_duration(tree.duration_ms)}  tokens {fmt_tokens(tree.tokens)} "
        f"(Σ {fmt_count(tree.tokens.total)}){cost}  spans {len(tree.spans)}",
        "",
    ]
    name_w = max(24, width - bar_width - 52)
    lines.append(f"{'span':<{name_w}} {'type':<11}{'start':>8}{'dur':>9}{'tokens':>12}"
                 f"{'subtree':>11}  waterfall")
    for span in tree.walk():
        label = ("  " * span.depth + ("✗ " if span.is_error else "")
                 + safe_text(span.name))[:name_w]
        begin = int((span.start_ns - tree.start_ns) / span_total * bar_width)
        length = max(1, int((span.end_ns - span.start_ns) / span_total * bar_width))
        bar = " " * begin + "█" * min(length, bar_width - begin)
        lines.append(f"{label:<{name_w}} {safe_text(span.span_type)[:10]:<11}"
                     f"{fmt_duration(tree.offset_ms(span)):>8}"
                     f"{fmt_duration(span.duration_ms):>9}"
                     f"{_tokens(span.tokens):>12}{_tokens(span.tokens_total):>11}"
                     f"  {bar}")
    lines += assessments_to_text(tree, width=width)
    return "\n".join(lines)


def assessments_to_text(tree: TraceTree, *, width: int = 100) -> list[str]:
    """The assessments under the tree: ``✓ name: value  (source, on span)`` and the
    rationale indented under it; nothing when the trace has none."""
    items = tree.info.assessments
    if not items:
        return []
    lines = ["", f"assessments ({len(items)})"]
    for a in items:
        lines.append(_cut(f"{_verdict_mark(a)} {_flat(a.name)}: "
                          f"{_flat(fmt_assessment_value(a))}  ({_flat(_where(tree, a))})", width))
        if a.rationale:
            lines.append("    " + _cut(_flat(a.rationale), width - 4))
    return lines


def _verdict_mark(a: Assessment) -> str:
    if a.error:
        return "!"
    return {True: "✓", False: "✗", None: "·"}[is_pass(a.value)]


def _where(tree: TraceTree, a: Assessment) -> str:
    source = a.source_type.lower() + (f" {a.source_id}" if a.source_id else "")
    if a.span_id:
        span = tree.spans.get(a.span_id)
        source += f", on span {span.name if span is not None else a.span_id}"
    return source + ("" if a.valid else ", superseded")


def _flat(text: str) -> str:
    """Trace text for one terminal line: whitespace runs collapsed, controls escaped."""
    return safe_text(" ".join(text.split()))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(1, width - 1)] + "…"


def tail_line(info: TraceInfo) -> str:
    """One readable ``traces tail`` line on a terminal: the list row and its feedback."""
    return f"{list_row(info)}  {safe_text(assessment_summary(info.assessments))}".rstrip()


def _tokens(usage: TokenUsage | None) -> str:
    return fmt_tokens(usage) if usage is not None and usage.total else "-"
