"""A window of recent traces for the designer: a bounded uniform subsample of the records,
their past verdicts, and the exact totals the subsample stands for.

Built in one streaming pass (`WindowBuilder.add`) so a week of traffic costs the memory of
`cap` records; the field profile (samplers-free counting in profile.py) sees every trace.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from samplers import TraceRecord, outcome_value

from .profile import ProfileBuilder, WindowProfile

DEFAULT_CAP = 20_000


@dataclass
class DesignWindow:
    """`records` is all of the window's traces, or a uniform subsample of `total` of them."""

    records: list[TraceRecord]
    verdicts: dict[str, dict[str, float]]  # trace id -> judge -> 1.0 pass / 0.0 fail
    total: int
    t_min_ms: int
    t_max_ms: int
    profile: WindowProfile
    judges_seen: tuple[str, ...] = ()

    @property
    def span_ms(self) -> int:
        return max(1, self.t_max_ms - self.t_min_ms + 1)

    @property
    def scale(self) -> float:
        """Traces of the window each kept record stands for."""
        return self.total / len(self.records) if self.records else 1.0


@dataclass
class WindowBuilder:
    """Reservoir sampling (algorithm R, seeded) plus the exact field profile."""

    cap: int = DEFAULT_CAP
    seed: int = 0
    _records: list[TraceRecord] = field(default_factory=list)
    _verdicts: dict[str, dict[str, float]] = field(default_factory=dict)
    _n: int = 0
    _t_min: int | None = None
    _t_max: int | None = None
    _judges: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._profile = ProfileBuilder()

    def add(self, record: TraceRecord, verdicts: Mapping[str, object] | None = None) -> None:
        passes: dict[str, float] = {}
        for judge, value in (verdicts or {}).items():
            parsed = outcome_value(value)
            if parsed is not None and parsed[1]:
                passes[judge] = parsed[0]
                self._judges.add(judge)
        self._profile.add(record, passes)
        ts = record.timestamp_ms
        self._t_min = ts if self._t_min is None else min(self._t_min, ts)
        self._t_max = ts if self._t_max is None else max(self._t_max, ts)
        self._n += 1
        if len(self._records) < self.cap:
            self._keep(len(self._records), record, passes, append=True)
            return
        j = self._rng.randrange(self._n)
        if j < self.cap:
            self._keep(j, record, passes, append=False)

    def _keep(self, i: int, record: TraceRecord, passes: dict[str, float], *,
              append: bool) -> None:
        if append:
            self._records.append(record)
        else:
            self._verdicts.pop(self._records[i].trace_id, None)
            self._records[i] = record
        if passes:
            self._verdicts[record.trace_id] = passes

    def extend(self, items: Iterable[TraceRecord]) -> WindowBuilder:
        for r in items:
            self.add(r)
        return self

    def build(self) -> DesignWindow:
        return DesignWindow(
            records=list(self._records), verdicts=dict(self._verdicts), total=self._n,
            t_min_ms=self._t_min or 0, t_max_ms=self._t_max or 0,
            profile=self._profile.build(), judges_seen=tuple(sorted(self._judges)))


def window_of(records: Iterable[TraceRecord],
              verdicts: Mapping[str, Mapping[str, object]] | None = None,
              cap: int = DEFAULT_CAP) -> DesignWindow:
    """A DesignWindow from records and optional `trace id -> judge -> value` verdicts."""
    b = WindowBuilder(cap=cap)
    vs = verdicts or {}
    for r in records:
        b.add(r, vs.get(r.trace_id))
    return b.build()
