"""Shared formatting helpers for the explorer: durations, token counts, costs, bars, sparklines,
percentiles, assessment summaries and span/trace JSON. Pure Python: no textual, no I/O."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from samplers.verdicts import PassRule, verdict
from trace_tui.core.model import Assessment, Span, SpanEvent, TokenUsage, TraceTree

FEEDBACK_NAME = "user_feedback"
SPARK_CHARS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"

# One-letter marker per MLflow span type (ASCII, so it survives any terminal font).
SPAN_MARKERS: dict[str, str] = {
    "AGENT": "A", "CHAIN": "C", "CHAT_MODEL": "L", "LLM": "L", "TOOL": "T",
    "RETRIEVER": "R", "EMBEDDING": "E", "RERANKER": "K", "PARSER": "P", "MEMORY": "M",
    "WORKFLOW": "W", "TASK": "S", "GUARDRAIL": "G", "EVALUATOR": "V", "UNKNOWN": ".",
}


# --------------------------------------------------------------------------- numbers


def fmt_duration(ms: float | None) -> str:
    """``0.4ms``, ``123ms``, ``1.23s``, ``12.3s``, ``2m03s``, ``1h02m``; ``-`` when unknown."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "-"
    if ms < 0:
        ms = 0.0
    if ms < 1:
        return f"{ms:.1f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    s = ms / 1000
    if s < 10:
        return f"{s:.2f}s"
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        m, rest = divmod(round(s), 60)
        return f"{m}m{rest:02d}s"
    h, rest = divmod(round(s) // 60, 60)
    return f"{h}h{rest:02d}m"


def fmt_count(n: int | float | None) -> str:
    """Compact count: ``377``, ``12.3k``, ``1.2M``; empty when unknown."""
    if n is None:
        return ""
    n = int(n)
    if abs(n) < 1000:
        return str(n)
    if abs(n) < 10_000:
        return f"{n / 1000:.1f}k"
    if abs(n) < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def fmt_tokens(usage: TokenUsage | None) -> str:
    """``in/out`` (``377/38``); empty when unknown."""
    if usage is None:
        return ""
    return f"{fmt_count(usage.input)}/{fmt_count(usage.output)}"


def fmt_cost(usd: float | None) -> str:
    """``$0.0012``, ``$0.123``, ``$12.30``; empty when unknown."""
    if usd is None:
        return ""
    if usd == 0:
        return "$0"
    if usd < 0.00001:
        return "<$.00001"
    if usd < 0.0001:
        return f"${usd:.5f}"
    if usd < 0.01:
        return f"${usd:.4f}"
    if usd < 1:
        return f"${usd:.3f}"
    return f"${usd:,.2f}"


def fmt_time(ms: int, *, with_date: bool = True) -> str:
    """Epoch ms -> local ``MM-DD HH:MM:SS`` (or ``HH:MM:SS``)."""
    if not ms:
        return "-"
    dt = datetime.fromtimestamp(ms / 1000)
    return dt.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def fmt_share(part_ms: float, whole_ms: float) -> str:
    if whole_ms <= 0:
        return ""
    pct = 100.0 * part_ms / whole_ms
    return f"{pct:.0f}%" if pct >= 9.5 else f"{pct:.1f}%"


def percentiles(values: Iterable[float], qs: Sequence[float] = (50, 95, 99), *,
                presorted: bool = False) -> list[float | None]:
    """Linear-interpolated percentiles of ``values`` (None each when empty); with
    ``presorted`` the values are a sorted list without None (no copy, O(1))."""
    if presorted:
        data = values if isinstance(values, list) else list(values)
    else:
        data = sorted(v for v in values if v is not None)
    if not data:
        return [None for _ in qs]
    out: list[float | None] = []
    last = len(data) - 1
    for q in qs:
        pos = last * (q / 100.0)
        lo = math.floor(pos)
        hi = min(lo + 1, last)
        frac = pos - lo
        out.append(data[lo] + (data[hi] - data[lo]) * frac)
    return out


def sparkline(values: Sequence[float], width: int) -> str:
    """``width`` cells of block characters: each cell is the mean of its bucket, scaled from
    the lowest to the highest bucket. Fewer values than cells gives a shorter line."""
    if width <= 0 or not values:
        return ""
    n = len(values)
    cells = min(width, n)
    buckets: list[float] = []
    for i in range(cells):
        first = i * n // cells
        chunk = values[first:max(first + 1, (i + 1) * n // cells)]
        buckets.append(sum(chunk) / len(chunk))
    lo, hi = min(buckets), max(buckets)
    last = len(SPARK_CHARS) - 1
    if hi <= lo:
        return SPARK_CHARS[last // 2] * cells
    return "".join(SPARK_CHARS[round((b - lo) / (hi - lo) * last)] for b in buckets)


def waterfall_bar(start: float, end: float, cells: int) -> tuple[int, str]:
    """A bar for the fraction ``[start, end]`` of a track ``cells`` wide.

    Returns ``(lead, bar)``: ``lead`` blank cells then ``bar`` (full blocks and a partial
    eighth block at the right edge; at least one visible cell). ``lead + len(bar) <= cells``.
    """
    if cells <= 0:
        return 0, ""
    start = min(max(start, 0.0), 1.0)
    end = min(max(end, start), 1.0)
    lead = min(int(start * cells), cells - 1)
    span_eighths = max(1, round((end * cells - lead) * 8))
    full, rest = divmod(span_eighths, 8)
    bar = "█" * full + (EIGHTHS[rest] if rest else "")
    if not bar.strip():
        bar = "▏"
    room = cells - lead
    return lead, bar[:room]


def hidden_child_tokens(span: Span) -> int:
    """Tokens of ``span``'s children that its subtree total leaves out: a span with its own
    usage stands for its whole subtree (MLflow's server rule), so its Σ can be smaller than a
    child's. 0 when nothing is left out."""
    if span.tokens is None:
        return 0
    return sum(c.tokens_total.total for c in span.children)


def hidden_child_cost(span: Span) -> float:
    """Cost of ``span``'s children left out of its subtree total (same rule as tokens)."""
    if span.cost_usd is None:
        return 0.0
    return sum(c.cost_total for c in span.children)


def rate_per_min(times_ms: Iterable[int], now_ms: int, window_ms: int = 60_000) -> float:
    """Traces per minute whose request time falls in ``(now - window, now]``."""
    floor = now_ms - window_ms
    count = sum(1 for t in times_ms if t > floor)
    return count * 60_000 / window_ms


# --------------------------------------------------------------------------- assessments


def is_pass(value: Any, rule: PassRule | None = None) -> bool | None:
    """Judge/human value -> pass/fail; None when it cannot be read as either.

    The one verdict vocabulary (``samplers.verdicts.verdict``): the list badge, the verdict
    chips, the report and review agreement all read a value the same way. ``rule``: the
    judge's declaration (value type, pass threshold) where the caller knows it."""
    return verdict(value, rule)


def feedback_counts(assessments: Iterable[Assessment]) -> tuple[int, int, int, int]:
    """``(thumbs_up, thumbs_down, judge_pass, judge_total)`` over valid assessments.

    Human bool feedback counts as thumbs; everything else with a readable pass/fail value
    (judges, code scorers, other human ratings) counts towards the judge tally.
    """
    up = down = passed = total = 0
    for a in assessments:
        if not a.valid:
            continue
        if a.source_type == "HUMAN" and isinstance(a.value, bool):
            if a.value:
                up += 1
            else:
                down += 1
            continue
        if a.error:
            total += 1
            continue
        verdict = is_pass(a.value)
        if verdict is None:
            continue
        total += 1
        passed += int(verdict)
    return up, down, passed, total


def assessment_summary(assessments: Iterable[Assessment]) -> str:
    """``+1 -0 J2/3`` (ASCII on purpose: emoji widths vary between terminals)."""
    up, down, passed, total = feedback_counts(assessments)
    parts = []
    if up or down:
        parts.append(f"+{up} -{down}")
    if total:
        parts.append(f"J{passed}/{total}")
    return " ".join(parts)


QUEUE_BADGES = {"queued": "Q", "done": "J", "failed": "F"}


def queue_badge(tags: Mapping[str, str]) -> str:
    """Where a sampled trace stands in the judge queues: ``Q`` queued, ``J`` judged, ``F``
    failed; empty when no policy sampled it. With several policies the one needing attention
    wins: failed, then queued (tags ``trace_tui.queue.<policy>``, legacy ``trace_tui.queue``)."""
    from trace_tui.core.tags import queue_states

    states = set(queue_states(tags).values())
    for state in ("failed", "queued", "done"):
        if state in states:
            return QUEUE_BADGES[state]
    return ""


REVIEW_BADGES = {"queued": "R?", "done": "R"}


def review_badge(tags: Mapping[str, str]) -> str:
    """Human review: ``R?`` waiting for a reviewer (any policy), ``R`` reviewed."""
    from trace_tui.core.tags import review_states

    states = set(review_states(tags).values())
    for state in ("queued", "done"):
        if state in states:
            return REVIEW_BADGES[state]
    return ""


def list_badges(tags: Mapping[str, str], assessments: Iterable[Assessment]) -> str:
    """The list's feedback column: queue and review badges, thumbs and judge tally, e.g.
    ``J R? +1 -0 J2/3``."""
    # human labels of judges (metadata trace_tui.label_via) show as the review badge, not as
    # thumbs (a bool label would otherwise count as +1/-1)
    rest = [a for a in assessments if "trace_tui.label_via" not in a.metadata]
    # queue and review states are trace_tui.* tags: most rows have none (and the first
    # frame then needs no core.tags)
    ours = any(k.startswith("trace_tui.") for k in tags)
    return " ".join(p for p in (queue_badge(tags) if ours else "",
                                review_badge(tags) if ours else "",
                                assessment_summary(rest)) if p)


def fmt_assessment_value(a: Assessment) -> str:
    if a.error:
        return f"error: {a.error}"
    if isinstance(a.value, bool):
        return "👍 yes" if a.value else "👎 no"
    if isinstance(a.value, str):
        return a.value
    return json.dumps(a.value, default=str)


# --------------------------------------------------------------------------- JSON


def to_json_text(value: Any) -> str:
    """Pretty JSON for any decoded attribute value (strings holding JSON are expanded)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def truncate_text(text: str, max_lines: int = 400, max_chars: int = 20_000) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_lines`` lines and ``max_chars`` characters."""
    truncated = False
    if len(text) > max_chars:
        text = text[:max_chars]
        truncated = True
    if text.count("\n") >= max_lines:
        text = "\n".join(text.split("\n", max_lines)[:max_lines])
        truncated = True
    return text, truncated


def event_to_dict(event: SpanEvent) -> dict[str, Any]:
    return {"name": event.name, "time_unix_nano": event.time_ns,
            "attributes": dict(event.attributes)}


def span_to_dict(span: Span, *, subtree: bool = False) -> dict[str, Any]:
    """A span as plain JSON-ready data; ``subtree`` nests its children recursively."""
    out: dict[str, Any] = {
        "span_id": span.span_id,
        "parent_span_id": span.parent_id,
        "name": span.name,
        "span_type": span.span_type,
        "start_time_unix_nano": span.start_ns,
        "end_time_unix_nano": span.end_ns,
        "duration_ms": round(span.duration_ms, 3),
        "status": {"code": span.status, "message": span.status_message},
        "attributes": dict(span.attributes),
        "events": [event_to_dict(e) for e in span.events],
    }
    if subtree:
        # iterative, so a 10k-deep chain cannot overflow the stack
        stack: list[tuple[Span, dict[str, Any]]] = [(span, out)]
        while stack:
            node, data = stack.pop()
            data["children"] = []
            for child in node.children:
                child_data = span_to_dict(child)
                data["children"].append(child_data)
                stack.append((child, child_data))
    return out


def trace_to_dict(tree: TraceTree) -> dict[str, Any]:
    """A decoded trace as JSON-ready data (for export when the raw JSON is not at hand)."""
    info = tree.info
    return {
        "trace_info": {
            "trace_id": info.trace_id,
            "experiment_id": info.experiment_id,
            "name": tree.name,
            "state": info.state,
            "request_time_ms": info.request_time_ms,
            "duration_ms": info.duration_ms,
            "tags": dict(info.tags),
            "trace_metadata": dict(info.metadata),
            "assessments": [assessment_to_dict(a) for a in info.assessments],
        },
        "spans": [span_to_dict(s) for s in tree.walk()],
    }


def assessment_to_dict(a: Assessment) -> dict[str, Any]:
    return {"assessment_id": a.assessment_id, "assessment_name": a.name,
            "source": {"source_type": a.source_type, "source_id": a.source_id},
            "value": a.value, "rationale": a.rationale, "error": a.error,
            "span_id": a.span_id, "metadata": dict(a.metadata), "create_time": a.create_time}


def attributes_text(attributes: Mapping[str, Any]) -> str:
    """Lowercased searchable text of a span's attributes."""
    try:
        return json.dumps(attributes, ensure_ascii=False, default=str).lower()
    except (TypeError, ValueError):
        return str(attributes).lower()
