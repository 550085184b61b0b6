"""The small, MLflow-free record type the sampler decides on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One trace, as much of it as sampling needs.

    trace_tui fills it from an MLflow TraceInfo (+ spans for span types, names and models).
    """

    trace_id: str
    timestamp_ms: int
    status: str
    duration_ms: float
    name: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    span_types: frozenset[str] = frozenset()
    span_names: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
