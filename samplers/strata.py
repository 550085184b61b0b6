"""Stratum keys: key fields, buckets, rendering and stratum names."""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from .conditions import field_expr
from .fields import MISSING, FieldRef, parse_field

SEPARATOR = "•"
OVERFLOW = "__other__"
EMPTY = "<empty>"
_BUCKET = re.compile(
    r"^\s*bucket\s*\(\s*(?P<field>[^,\[\]]+?)\s*,\s*\[(?P<edges>[^\]]*)\]\s*\)\s*$"
)


@dataclass(frozen=True, slots=True)
class KeyField:
    """One component of a stratum key; `buckets` are ascending edges for numeric bucketing."""

    field: str
    label: str
    buckets: tuple[float, ...] | None = None

    @property
    def ref(self) -> FieldRef:
        return parse_field(self.field)


def _fmt_number(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """Interval labels for bisect_right indexes 0..len(edges)."""
    bounds = [-math.inf, *edges, math.inf]
    labels = []
    for lo, hi in itertools.pairwise(bounds):
        left = "(" if math.isinf(lo) else "["
        labels.append(f"{left}{_fmt_number(lo)},{_fmt_number(hi)})")
    return labels


def _parse_edges(text: str) -> tuple[float, ...]:
    try:
        edges = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"expected numeric bucket edges, got [{text}]") from None
    return edges


def parse_key_field(spec: Any) -> KeyField:
    """Parse a key_fields entry: 'field', 'bucket(field, [e1, e2])' or {field, label, buckets}."""
    label: str | None = None
    buckets: tuple[float, ...] | None = None
    if isinstance(spec, dict):
        unknown = set(spec) - {"field", "label", "buckets"}
        if unknown:
            raise ValueError(
                f"expected keys field, label, buckets, got unknown key {sorted(unknown)[0]!r}"
            )
        field_spec = spec.get("field")
        label = spec.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise ValueError(f"expected a non-empty string label, got {label!r}")
        raw_buckets = spec.get("buckets")
        if raw_buckets is not None:
            if not isinstance(raw_buckets, list) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw_buckets
            ):
                raise ValueError(f"expected a list of numeric bucket edges, got {raw_buckets!r}")
            buckets = tuple(float(x) for x in raw_buckets)
    elif isinstance(spec, str):
        field_spec = spec
        m = _BUCKET.match(spec)
        if m:
            field_spec = m.group("field")
            buckets = _parse_edges(m.group("edges"))
        elif spec.strip().lower().startswith("bucket"):
            raise ValueError(f"expected bucket(<field>, [<edge>, ...]), got {spec!r}")
    else:
        raise ValueError(f"expected a field path string or table, got {spec!r}")
    if not isinstance(field_spec, str):
        raise ValueError(f"expected a field path string, got {field_spec!r}")
    ref = parse_field(field_spec)
    if buckets is not None:
        if not buckets:
            raise ValueError("expected at least one bucket edge")
        if any(hi <= lo for lo, hi in itertools.pairwise(buckets)):
            raise ValueError(f"expected strictly ascending bucket edges, got {list(buckets)}")
        if ref.set_valued:
            raise ValueError(f"cannot bucket set-valued field {ref.path!r}")
    return KeyField(field=ref.path, label=(label or ref.label).strip(), buckets=buckets)


def _bucket_index(edges: tuple[float, ...], raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            return None
    return bisect.bisect_right(edges, cast(float, raw))


def key_expr(fields: Sequence[KeyField], ns: dict[str, Any], prefix: str = "") -> str:
    """Tuple expression over record `r` giving the raw (hashable, unformatted) key; bucket
    edges go into `ns` under names starting with `_e{prefix}`."""
    ns.setdefault("_bucket", _bucket_index)
    ns.setdefault("_bisect", bisect.bisect_right)
    parts: list[str] = []
    for i, kf in enumerate(fields):
        ref = kf.ref
        access = field_expr(ref)
        if kf.buckets is not None:
            name = f"_e{prefix}_{i}"
            ns[name] = kf.buckets
            if ref.kind == "attr" and ref.key != "cost_usd":
                parts.append(f"_bisect({name}, {access})")
            else:
                parts.append(f"_bucket({name}, {access})")
        else:
            parts.append(access)
    return f"({', '.join(parts)}{',' if len(parts) == 1 else ''})"


def _bucket_renderer(labels: list[str]) -> Callable[[int | None], str]:
    return lambda idx: MISSING if idx is None else labels[idx]


def key_renderer(fields: Sequence[KeyField]) -> Callable[[tuple], str]:
    """Turn a raw key tuple into the stable 'label=value•label=value' string."""
    renderers: list[Callable[[Any], str]] = []
    for kf in fields:
        if kf.buckets is not None:
            labels = bucket_labels(kf.buckets)
            renderers.append(_bucket_renderer(labels))
        else:
            renderers.append(_render_set if kf.ref.set_valued else _render_value)
    names = [kf.label for kf in fields]

    def render(raw: tuple) -> str:
        return SEPARATOR.join(
            f"{lab}={fn(v)}" for lab, fn, v in zip(names, renderers, raw, strict=True)
        )

    return render


def _render_value(v: Any) -> str:
    if v is None:
        return MISSING
    if isinstance(v, float):
        return _fmt_number(v)
    text = str(v)
    return text if text else EMPTY


def _render_set(v: frozenset[str]) -> str:
    return ",".join(sorted(v)) if v else MISSING


def stratum_name(rule: str, key: str | None) -> str:
    """Stable, readable stratum id: 'rule' for keyless rules, else 'rule/label=value•...'."""
    return rule if key is None else f"{rule}/{key}"


def parse_key_string(key: str) -> list[tuple[str, str]]:
    """Split 'a=1•b=2' into [(label, value), ...] (used to validate per-stratum overrides)."""
    out = []
    for part in key.split(SEPARATOR):
        label, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected 'label=value' parts joined by '{SEPARATOR}', got {key!r}")
        out.append((label, value))
    return out
