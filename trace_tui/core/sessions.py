"""Drill-down filters from one trace's values, and a session's totals (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trace_tui.core.model import TraceInfo
from trace_tui.core.render import feedback_counts

SESSION_KEY = "mlflow.trace.session"
USER_KEY = "mlflow.trace.user"
# metadata keys some producers use for the model (none is standard at trace level)
MODEL_KEYS = ("mlflow.llm.model", "gen_ai.request.model", "model")


def quote(value: str) -> str | None:
    """A filter string literal, or None when the value cannot be quoted safely."""
    if "'" in value or "\n" in value or "\\" in value:
        return None
    return f"'{value}'"


def drill_clauses(info: TraceInfo) -> list[tuple[str, str, str]]:
    """(field, value, filter clause) for the drillable values of a trace: session, user,
    route, model and name, those it has and that can be quoted."""
    candidates = [
        ("session", info.session, f"metadata.`{SESSION_KEY}`"),
        ("user", info.user, f"metadata.`{USER_KEY}`"),
        ("route", info.tags.get("route", ""), "tags.`route`"),
    ]
    for key in MODEL_KEYS:
        if info.tags.get(key):
            candidates.append(("model", info.tags[key], f"tags.`{key}`"))
            break
        if info.metadata.get(key):
            candidates.append(("model", info.metadata[key], f"metadata.`{key}`"))
            break
    candidates.append(("name", info.name, "trace.name"))
    out = []
    for label, value, column in candidates:
        literal = quote(value) if value else None
        if literal is not None:
            out.append((label, value, f"{column} = {literal}"))
    return out


def session_clause(session: str) -> str | None:
    literal = quote(session) if session else None
    return f"metadata.`{SESSION_KEY}` = {literal}" if literal else None


@dataclass(frozen=True, slots=True)
class SessionTotals:
    traces: int
    duration_ms: float  # summed latency of the traces
    span_ms: float  # first start to last end
    input_tokens: int
    output_tokens: int
    cost_usd: float
    errors: int
    thumbs_up: int
    thumbs_down: int
    judged_pass: int
    judged: int


def session_totals(infos: Sequence[TraceInfo]) -> SessionTotals:
    up = down = passed = judged = 0
    inp = out = 0
    cost = 0.0
    for info in infos:
        u, d, p, t = feedback_counts(info.assessments)
        up, down, passed, judged = up + u, down + d, passed + p, judged + t
        if info.tokens is not None:
            inp, out = inp + info.tokens.input, out + info.tokens.output
        cost += info.cost_usd or 0.0
    starts = [i.request_time_ms for i in infos]
    ends = [i.request_time_ms + (i.duration_ms or 0.0) for i in infos]
    return SessionTotals(
        traces=len(infos), duration_ms=sum(i.duration_ms or 0.0 for i in infos),
        span_ms=(max(ends) - min(starts)) if infos else 0.0, input_tokens=inp,
        output_tokens=out, cost_usd=cost, errors=sum(1 for i in infos if i.state == "ERROR"),
        thumbs_up=up, thumbs_down=down, judged_pass=passed, judged=judged)
