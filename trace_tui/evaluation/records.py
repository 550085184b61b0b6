"""MLflow traces -> the `samplers.TraceRecord` the sampler decides on."""

from __future__ import annotations

from samplers import TraceRecord
from trace_tui.core.model import TraceInfo, TraceTree


def record_from_info(info: TraceInfo, tree: TraceTree | None = None) -> TraceRecord:
    """A record from a TraceInfo; span-derived fields need the tree (else left empty)."""
    tokens = tree.tokens if tree is not None else info.tokens
    span_types: frozenset[str] = frozenset()
    span_names: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    if tree is not None:
        spans = list(tree.spans.values())
        span_types = frozenset(s.span_type for s in spans)
        span_names = frozenset(s.name for s in spans)
        models = frozenset(m for m in (s.model for s in spans) if m)
    return TraceRecord(
        trace_id=info.trace_id,
        timestamp_ms=info.request_time_ms,
        status=info.state,
        duration_ms=info.duration_ms or 0.0,
        name=info.name or (tree.name if tree is not None else ""),
        input_tokens=tokens.input if tokens else 0,
        output_tokens=tokens.output if tokens else 0,
        total_tokens=tokens.total if tokens else 0,
        cost_usd=info.cost_usd,
        tags=dict(info.tags),
        metadata=dict(info.metadata),
        span_types=span_types,
        span_names=span_names,
        models=models,
    )
