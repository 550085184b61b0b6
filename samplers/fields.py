"""Field paths on a TraceRecord: parsing, MLflow aliases, accessors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MISSING = "<missing>"

NUMERIC_FIELDS = frozenset(
    {"duration_ms", "timestamp_ms", "input_tokens", "output_tokens", "total_tokens", "cost_usd"}
)
SET_FIELDS = frozenset({"span_types", "span_names", "models"})

_ALIASES: dict[str, str] = {
    "status": "status",
    "state": "status",
    "attributes.status": "status",
    "trace.status": "status",
    "trace.state": "status",
    "name": "name",
    "trace.name": "name",
    "attributes.name": "name",
    "duration_ms": "duration_ms",
    "execution_time_ms": "duration_ms",
    "attributes.execution_time_ms": "duration_ms",
    "trace.execution_time_ms": "duration_ms",
    "timestamp_ms": "timestamp_ms",
    "timestamp": "timestamp_ms",
    "attributes.timestamp_ms": "timestamp_ms",
    "trace.timestamp_ms": "timestamp_ms",
    "trace.timestamp": "timestamp_ms",
    "input_tokens": "input_tokens",
    "trace.input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "trace.output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "trace.total_tokens": "total_tokens",
    "cost_usd": "cost_usd",
    "trace.cost_usd": "cost_usd",
    "span_types": "span_types",
    "span.type": "span_types",
    "span.types": "span_types",
    "span_names": "span_names",
    "span.name": "span_names",
    "span.names": "span_names",
    "models": "models",
    "model": "models",
    "span.model": "models",
}
_MAP_PREFIXES: dict[str, str] = {
    "tags.": "tags",
    "tag.": "tags",
    "metadata.": "metadata",
    "request_metadata.": "metadata",
}

FIELD_HELP = (
    "status, name, duration_ms, timestamp_ms, input_tokens, output_tokens, total_tokens, "
    "cost_usd, span_types, span_names, models, tags.<key> or metadata.<key>"
)


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A resolved field path: `attr` for record attributes, `tags`/`metadata` for map keys."""

    path: str
    kind: Literal["attr", "tags", "metadata"]
    key: str
    label: str

    @property
    def numeric(self) -> bool:
        return self.kind == "attr" and self.key in NUMERIC_FIELDS

    @property
    def set_valued(self) -> bool:
        return self.kind == "attr" and self.key in SET_FIELDS


def _strip_quotes(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"'":
        return key[1:-1]
    return key


def parse_field(path: str) -> FieldRef:
    """Resolve a field path; raises ValueError with the accepted spellings."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"expected a field path ({FIELD_HELP}), got {path!r}")
    text = path.strip()
    canonical = _ALIASES.get(text.lower())
    if canonical is not None:
        return FieldRef(text, "attr", canonical, canonical)
    for prefix, kind in _MAP_PREFIXES.items():
        if text.lower().startswith(prefix):
            key = _strip_quotes(text[len(prefix) :].strip())
            if not key:
                break
            return FieldRef(text, kind, key, key)  # type: ignore[arg-type]
    raise ValueError(f"expected a field path ({FIELD_HELP}), got {path!r}")
