"""The state of the trace list, apart from any screen: the bounded buffer, the arrivals queued
for the next tick, pause, and the statistics the status line shows.

While the list screen is mounted its ``TraceTable`` is the one way in (it keeps the cursor and
the marks on their traces and repaints what changed); otherwise the buffer is changed
directly. ``sink`` is the single place that chooses.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from trace_tui.core.model import TraceInfo
from trace_tui.core.render import percentiles, rate_per_min
from trace_tui.tui.widgets.trace_table import SORTS, TraceBuffer, TraceTable

ERRORS_CLAUSE = "trace.status = 'ERROR'"
STATS_EVERY_S = 1.0  # percentiles / rate / sparkline refresh
SPARK_TRACES = 24 * 8  # the sparkline covers the newest N listed traces


def compose_filter(user_filter: str, errors_only: bool, slow_ms: float | None) -> str:
    """The user's filter AND the quick filters, as one MLflow filter string."""
    clauses = [user_filter.strip()] if user_filter.strip() else []
    if errors_only:
        clauses.append(ERRORS_CLAUSE)
    if slow_ms is not None:
        clauses.append(f"trace.execution_time_ms > {slow_ms:g}")
    return " AND ".join(clauses)


class ListSink(Protocol):
    """What both the buffer and the table over it do to the listed traces."""

    def merge(self, infos: list[TraceInfo]) -> object: ...

    def replace(self, info: TraceInfo) -> object: ...

    def set_sort(self, sort: str) -> None: ...

    def reset(self) -> None: ...


class TraceList:
    """The listed traces and what is derived from them."""

    def __init__(self, capacity: int, *, clock: Callable[[], float] = time.time,
                 table: Callable[[], TraceTable | None] = lambda: None) -> None:
        self.buffer = TraceBuffer(capacity)
        self.pending: deque[TraceInfo] = deque(maxlen=capacity)
        self.paused = False
        self.clock = clock
        self._table = table
        self._stats_version = -1
        self._stats_at = 0.0
        self.stats: tuple[float | None, ...] = (None, None, None)  # p50, p95, p99
        self.spark: list[float] = []
        self.rate = 0.0

    @property
    def sink(self) -> ListSink:
        table = self._table()
        return table if table is not None else self.buffer

    # ------------------------------------------------------------------ changes

    def ingest(self, infos: Iterable[TraceInfo]) -> None:
        """Queue traces for the next tick (what the stream does; also used by benchmarks)."""
        self.pending.extend(infos)

    def tick(self) -> None:
        """Merge what arrived since the last tick (one repaint), unless paused."""
        if self.pending and not self.paused:
            batch = list(self.pending)
            self.pending.clear()
            self.sink.merge(batch)

    def reset(self) -> None:
        self.pending.clear()
        self.sink.reset()
        self._stats_version = -1

    def merge(self, infos: list[TraceInfo]) -> None:
        self.sink.merge(infos)

    def replace(self, info: TraceInfo) -> None:
        self.sink.replace(info)

    def cycle_sort(self) -> str:
        sort = SORTS[(SORTS.index(self.buffer.sort) + 1) % len(SORTS)]
        self.sink.set_sort(sort)
        return sort

    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        if not self.paused:
            self.tick()
        return self.paused

    # ------------------------------------------------------------------ statistics

    def refresh_stats(self, force: bool = False) -> bool:
        """Recompute the statistics when the list changed (at most once a second unless
        ``force``); True when they were recomputed."""
        now = time.monotonic()
        if self.buffer.version == self._stats_version or not (
                force or now - self._stats_at >= STATS_EVERY_S):
            return False
        self._stats_at = now
        buf = self.buffer
        self._stats_version = buf.version
        self.stats = tuple(percentiles(buf.durations(), presorted=True))
        self.spark = [r.duration_ms or 0.0 for r in buf.newest(SPARK_TRACES)]
        now_ms = int(self.clock() * 1000)
        if buf.sort == "time":
            times = []
            for r in buf.rows:
                if r.request_time_ms <= now_ms - 60_000:
                    break
                times.append(r.request_time_ms)
        else:
            times = [r.request_time_ms for r in buf.rows]
        self.rate = rate_per_min(times, now_ms)
        return True

    def p95(self) -> float | None:
        return percentiles(self.buffer.durations(), (95,), presorted=True)[0]
