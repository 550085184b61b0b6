"""Which listed traces still have to be re-read until they match the server's final state.

A live list sees traces before they are final: a row appears IN_PROGRESS before its root span
lands (with a child's start time), the root's arrival moves the request time back, and the
SDK writes the trace's tags (the name), metadata and straggling spans (token and cost totals)
after the root, seconds later under load. ``RowSettler`` keeps such rows (pure bookkeeping,
no I/O): the feed re-reads the ``due()`` ids by id (``batchGetInfos``) and hands the answers
to ``update()``, which returns the rows that changed. A row is let go once it is finished and
has not changed for ``quiet_ms`` (``unnamed_quiet_ms`` while it has no name: OTLP producers
may never set one); rows that stay IN_PROGRESS are re-read less and less often and dropped
after ``give_up_ms``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trace_tui.core.model import TraceInfo


@dataclass(slots=True)
class _Watch:
    info: TraceInfo
    since_ms: int  # first watched
    changed_ms: int  # last seen changing
    due_ms: int  # next re-read
    reads: int = 0  # reads since the last change


class RowSettler:
    """Rows that are not final yet, by trace id."""

    def __init__(self, *, quiet_ms: int = 5_000, unnamed_quiet_ms: int = 30_000,
                 recent_ms: int = 30_000, give_up_ms: int = 30 * 60_000,
                 max_interval_ms: int = 30_000) -> None:
        self.quiet_ms = quiet_ms
        self.unnamed_quiet_ms = unnamed_quiet_ms
        self.recent_ms = recent_ms
        self.give_up_ms = give_up_ms
        self.max_interval_ms = max_interval_ms
        self.watching: dict[str, _Watch] = {}

    def __len__(self) -> int:
        return len(self.watching)

    def __contains__(self, trace_id: object) -> bool:
        return trace_id in self.watching

    def clear(self) -> None:
        self.watching.clear()

    def forget(self, trace_ids: Iterable[str]) -> None:
        for trace_id in trace_ids:
            self.watching.pop(trace_id, None)

    def looks_final(self, info: TraceInfo, now_ms: int) -> bool:
        """Whether a row read once can be trusted without re-reading: finished, named, and
        ended long enough ago for its late writes to have landed."""
        ended = info.request_time_ms + int(info.duration_ms or 0)
        return info.finished and bool(info.name) and now_ms - ended >= self.recent_ms

    def observe(self, infos: Iterable[TraceInfo], now_ms: int, *, fresh: bool = False
                ) -> None:
        """Rows that entered the list. ``fresh`` ones (live arrivals) are always watched for
        a while; the others (a search page) only when they do not look final."""
        for info in infos:
            watch = self.watching.get(info.trace_id)
            if watch is not None:
                if watch.info != info:
                    watch.info, watch.changed_ms, watch.reads = info, now_ms, 0
                continue
            if fresh or not self.looks_final(info, now_ms):
                self.watching[info.trace_id] = _Watch(info, now_ms, now_ms, now_ms)

    def due(self, now_ms: int, limit: int = 500) -> list[str]:
        """Ids to re-read now (at most ``limit``, the longest waiting first)."""
        ready = [(w.due_ms, tid) for tid, w in self.watching.items() if w.due_ms <= now_ms]
        ready.sort()
        return [tid for _, tid in ready[:limit]]

    def update(self, asked: Iterable[str], infos: Iterable[TraceInfo], now_ms: int
               ) -> list[TraceInfo]:
        """Take the answers to a re-read of ``asked``; returns the rows that changed.
        Asked ids the server no longer has are let go."""
        by_id = {i.trace_id: i for i in infos}
        changed: list[TraceInfo] = []
        for trace_id in asked:
            watch = self.watching.get(trace_id)
            if watch is None:
                continue
            info = by_id.get(trace_id)
            if info is None:
                del self.watching[trace_id]
                continue
            if info != watch.info:
                watch.info, watch.changed_ms, watch.reads = info, now_ms, 0
                changed.append(info)
            else:
                watch.reads += 1
            if self._settled(watch, now_ms):
                del self.watching[trace_id]
            else:
                watch.due_ms = now_ms + self._interval(watch, now_ms)
        return changed

    def _settled(self, watch: _Watch, now_ms: int) -> bool:
        info = watch.info
        if now_ms - watch.since_ms >= self.give_up_ms:
            return True
        if not info.finished or watch.reads < 1:
            return False
        quiet = self.quiet_ms if info.name else self.unnamed_quiet_ms
        return now_ms - watch.changed_ms >= quiet

    def _interval(self, watch: _Watch, now_ms: int) -> int:
        """Every poll while young; a row stuck IN_PROGRESS (an exporter dropped its root)
        is re-read less often as it ages."""
        age = now_ms - watch.changed_ms
        if age < 60_000:
            return 0
        return min(self.max_interval_ms, age // 10)
