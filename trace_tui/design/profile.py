"""The data profile of a window: candidate key fields with cardinality, share of traffic per
value and past pass rate per value; numeric fields with suggested bucket boundaries."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from samplers import MISSING, TraceRecord

MAX_VALUES = 1_000  # distinct values tracked per field; more -> "high cardinality"
NUMERIC_KEEP = 5_000  # values kept per numeric field for its quantiles
MIN_JUDGED = 5  # verdicts a value needs before its pass rate counts toward the spread
# mlflow.* metadata is mostly bookkeeping; these two are what users stratify on.
_MLFLOW_KEYS = ("mlflow.trace.user", "mlflow.trace.session")
_SKIP_PREFIXES = ("mlflow.", "trace_tui.")
NUMERIC = ("duration_ms", "total_tokens", "cost_usd")
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def field_path(kind: str, key: str) -> str:
    """`tags.route`, or `tags.\\`app.version\\`` for keys that are not plain names."""
    return f"{kind}.{key}" if _PLAIN.match(key) else f"{kind}.`{key}`"


@dataclass
class ValueStats:
    value: str
    count: float
    share: float
    judged: int
    pass_rate: float | None


@dataclass
class FieldProfile:
    """One candidate key field over the window."""

    path: str
    count: int  # traces with this field present (MISSING counts as a value)
    values: list[ValueStats]  # by count, descending
    cardinality: int
    truncated: bool  # more distinct values than MAX_VALUES
    spread: float | None  # judged-weighted std dev of per-value pass rates
    numeric: bool = False
    boundaries: tuple[float, ...] = ()  # suggested bucket boundaries (quartiles)

    @property
    def key_field(self) -> str:
        """What a rule's `key_fields` gets: the path, or `bucket(path, [...])`."""
        if self.numeric:
            bounds = ", ".join(f"{b:g}" for b in self.boundaries)
            return f"bucket({self.path}, [{bounds}])"
        return self.path

    @property
    def impurity(self) -> float:
        """1 - sum(share^2): 0 for a constant field, near 1 for an even split."""
        return 1.0 - sum(v.share * v.share for v in self.values)


@dataclass
class WindowProfile:
    total: int
    fields: list[FieldProfile]
    judged: int  # traces with at least one past verdict

    def field(self, path: str) -> FieldProfile:
        for f in self.fields:
            if f.path == path:
                return f
        raise KeyError(path)


@dataclass
class _Counts:
    counts: Counter[str] = field(default_factory=Counter)
    judged: Counter[str] = field(default_factory=Counter)
    passes: Counter[str] = field(default_factory=Counter)
    truncated: bool = False

    def add(self, value: str, passes: Mapping[str, float]) -> None:
        if value not in self.counts and len(self.counts) >= MAX_VALUES:
            self.truncated = True
            return
        self.counts[value] += 1
        if passes:
            self.judged[value] += len(passes)
            self.passes[value] += round(sum(passes.values()))


class ProfileBuilder:
    """Counts every trace's candidate field values (one pass, bounded memory)."""

    def __init__(self, seed: int = 0) -> None:
        self.total = 0
        self.judged = 0
        self._fields: dict[str, _Counts] = {}
        self._numeric: dict[str, list[float]] = {k: [] for k in NUMERIC}
        self._seen: dict[str, int] = dict.fromkeys(NUMERIC, 0)
        self._rng = random.Random(seed)

    def _add(self, path: str, value: str, passes: Mapping[str, float]) -> None:
        c = self._fields.get(path)
        if c is None:
            c = self._fields[path] = _Counts()
        c.add(value, passes)

    def add(self, r: TraceRecord, passes: Mapping[str, float]) -> None:
        self.total += 1
        if passes:
            self.judged += 1
        self._add("status", r.status, passes)
        if r.name:
            self._add("name", r.name, passes)
        for kind, mapping in (("tags", r.tags), ("metadata", r.metadata)):
            for k, v in mapping.items():
                if k.startswith(_SKIP_PREFIXES) and k not in _MLFLOW_KEYS:
                    continue
                self._add(field_path(kind, k), str(v), passes)
        for name in ("span_types", "models"):
            values = getattr(r, name)
            if values:
                for v in values:
                    self._add(name, v, passes)
        for k in NUMERIC:
            x = getattr(r, k)
            if x is None or (k == "total_tokens" and not x):
                continue
            self._seen[k] += 1
            keep = self._numeric[k]
            if len(keep) < NUMERIC_KEEP:
                keep.append(float(x))
            else:
                j = self._rng.randrange(self._seen[k])
                if j < NUMERIC_KEEP:
                    keep[j] = float(x)

    def build(self) -> WindowProfile:
        fields = [self._field(path, c) for path, c in self._fields.items()]
        for k, xs in self._numeric.items():
            if len(xs) >= 4 and len(set(xs)) > 1:
                fields.append(_numeric_field(k, xs, self._seen[k]))
        fields.sort(key=lambda f: (f.numeric, -f.impurity, f.path))
        return WindowProfile(self.total, fields, self.judged)

    def _field(self, path: str, c: _Counts) -> FieldProfile:
        present = sum(c.counts.values())
        # traces without the field form their own value (what the sampler's key sees)
        missing = max(0, self.total - present)
        counts = Counter(c.counts)
        if missing and path not in ("span_types", "models"):
            counts[MISSING] += missing
        n = sum(counts.values()) or 1
        values = [
            ValueStats(v, k, k / n, c.judged[v],
                       (c.passes[v] / c.judged[v]) if c.judged[v] else None)
            for v, k in counts.most_common()
        ]
        return FieldProfile(path, n, values, len(counts), c.truncated, _spread(values))


def _spread(values: list[ValueStats]) -> float | None:
    rated = [(v.judged, v.pass_rate) for v in values
             if v.pass_rate is not None and v.judged >= MIN_JUDGED]
    if len(rated) < 2:
        return None
    w = sum(j for j, _ in rated)
    mean = sum(j * p for j, p in rated) / w
    return math.sqrt(sum(j * (p - mean) ** 2 for j, p in rated) / w)


def quantile_boundaries(xs: list[float], parts: int = 4) -> tuple[float, ...]:
    """Distinct, rounded quantile cut points splitting `xs` into `parts` buckets."""
    s = sorted(xs)
    cuts: list[float] = []
    for i in range(1, parts):
        q = s[min(len(s) - 1, int(len(s) * i / parts))]
        q = float(f"{q:.2g}") if q else 0.0
        if q > s[0] and (not cuts or q > cuts[-1]):
            cuts.append(q)
    return tuple(cuts)


def _numeric_field(path: str, xs: list[float], seen: int) -> FieldProfile:
    bounds = quantile_boundaries(xs)
    edges = [-math.inf, *bounds, math.inf]
    counts: Counter[int] = Counter()
    for x in xs:
        for i in range(len(edges) - 1):
            if edges[i] <= x < edges[i + 1]:
                counts[i] += 1
                break
    n = len(xs)
    values = []
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        label = f"< {hi:g}" if lo == -math.inf else (f">= {lo:g}" if hi == math.inf
                                                    else f"{lo:g}-{hi:g}")
        values.append(ValueStats(label, round(counts[i] * seen / n), counts[i] / n, 0, None))
    return FieldProfile(path, seen, values, len(values), False, None, numeric=True,
                        boundaries=bounds)
