"""Live stream of finished traces for an experiment, built on a polling cursor.

MLflow has no push API for traces, so the stream polls ``traces/search``:

- every poll queries the recent edge, ``trace.timestamp_ms >= cursor - edge`` (all states),
  oldest first, every page; the first poll (and the first after an outage) sweeps the whole
  ``cursor - lookback`` window instead. Re-reading the look-back each poll cost one search
  page per 500 rows in it, seconds a poll on a busy server, and the stream fell behind
  (docs/performance.md). Every ``sweep_every`` polls the look-back is still swept, to find
  late finishers (traces whose first row shows up with a start time behind the edge): when
  iterating, in a task of its own beside the edge polls, which keep their interval (a
  sweep of ten pages took 7-8 s on a server saturated by ingest, and the edge poll that
  waited for it was the p99 of ``sample --follow``'s lag). What a sweep reads goes through
  the same cursor (dedupe, settle) as the edge polls' rows and is emitted by them;
- emit each finished trace once (dedupe by id; the seen-set is pruned past the lookback);
- traces seen IN_PROGRESS are remembered by id and re-read with ``batchGetInfos`` until they
  finish, because their timestamp can move backwards when the root span lands;
- a finished trace is held ``settle_ms`` from first sight (its tags land after its spans)
  and emitted by the first poll after that; polls start ``poll_interval_s`` apart however
  long the last one took, or sooner when a settling trace comes due. (Re-reading settled
  traces by id between polls was tried: on a server saturated by ingest ``batchGetInfos``
  took twice a search's time, docs/performance.md);
- on a connection error, back off and resume from the same cursor: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import TraceInfo
from trace_tui.core.retry import Backoff


@dataclass(slots=True)
class PollStats:
    """What the last poll cost: searches sent, rows read, seconds, and whether it swept."""

    searches: int = 0
    rows: int = 0
    seconds: float = 0.0
    sweep: bool = False


@dataclass(slots=True)
class StreamBatch:
    """One poll's outcome: newly finished traces (oldest first) and the connection state."""

    traces: list[TraceInfo] = field(default_factory=list)
    connected: bool = True
    error: str | None = None
    pending: int = 0  # traces seen in progress or still settling, not yet emitted
    poll: PollStats | None = None  # what the poll that emitted these cost


class TraceCursor:
    """The cursor state, separate from I/O so it can be tested and reasoned about alone.

    A finished trace is held back until it has *settled*: ``settle_ms`` after this cursor first
    saw it finished, unless it ended long before. The SDK exports the root span before the
    trace's tags and metadata, so a trace read the moment it finishes can still lack its name,
    tags, session and user.
    """

    def __init__(self, start_ms: int, lookback_ms: int, settle_ms: int = 0) -> None:
        self.cursor_ms = start_ms
        self.lookback_ms = lookback_ms
        self.settle_ms = settle_ms
        self._emitted: dict[str, int] = {}  # trace id -> request time
        self.pending: dict[str, TraceInfo] = {}  # in progress
        self.settling: dict[str, tuple[TraceInfo, int]] = {}  # finished, first seen (ms)

    def accept_seen(self, seen: dict[str, int]) -> None:
        """Mark traces (id -> request time) as already emitted, e.g. before a restart."""
        self._emitted.update(seen)

    def query_from_ms(self) -> int:
        return max(0, self.cursor_ms - self.lookback_ms)

    def next_settled_ms(self) -> int | None:
        """When the earliest settling trace settles (ms), or None if none is settling."""
        if not self.settling:
            return None
        return min(first for _, first in self.settling.values()) + self.settle_ms

    def accept(self, infos: Sequence[TraceInfo], now_ms: int) -> None:
        """Take in what a poll saw: the latest info of each unemitted trace wins."""
        for info in infos:
            if info.trace_id in self._emitted:
                continue
            if info.finished:
                self.pending.pop(info.trace_id, None)
                first = self.settling.get(info.trace_id, (info, now_ms))[1]
                self.settling[info.trace_id] = (info, first)
            else:
                self.pending[info.trace_id] = info
            self.cursor_ms = max(self.cursor_ms, info.request_time_ms)

    def take_settled(self, now_ms: int, *, everything: bool = False) -> list[TraceInfo]:
        """Finished traces that have settled (all of them with ``everything``), oldest first;
        from now on they count as emitted."""
        out = []
        for trace_id, (info, first_seen) in list(self.settling.items()):
            ended = info.request_time_ms + int(info.duration_ms or 0)
            # Wait settle_ms from first sight; a trace that ended long ago has settled.
            if everything or now_ms - first_seen >= self.settle_ms \
                    or now_ms - ended >= 10 * self.settle_ms:
                del self.settling[trace_id]
                self._emitted[trace_id] = info.request_time_ms
                out.append(info)
        out.sort(key=lambda i: (i.request_time_ms, i.trace_id))
        return out

    def prune(self) -> None:
        """Forget emitted ids older than the query window (they cannot come back)."""
        floor = self.query_from_ms() - self.lookback_ms
        if len(self._emitted) > 1024:
            self._emitted = {k: v for k, v in self._emitted.items() if v >= floor}


class LiveStream:
    """``async for batch in LiveStream(client, ["1"])``: batches of newly finished traces."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        since_ms: int | None = None,
        lookback_ms: int = 60_000,
        settle_ms: int = 1_500,
        poll_interval_s: float = 1.0,
        edge_ms: int | None = None,
        sweep_every: int = 10,
        max_backoff_s: float = 5.0,
        skip_existing: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.experiment_ids = list(experiment_ids)
        self.filter_string = filter_string
        self.poll_interval_s = poll_interval_s
        self.backoff = Backoff(first_s=0.5, max_s=max_backoff_s)
        start = since_ms if since_ms is not None else int(clock() * 1000)
        self.clock = clock
        self.cursor = TraceCursor(start, lookback_ms, settle_ms)
        # The edge covers what a few polls and the settle delay can leave behind the cursor:
        # out-of-order inserts, producers' clock skew, paging shifted by inserts.
        self.edge_ms = edge_ms if edge_ms is not None else max(
            10_000, int(5 * poll_interval_s * 1000) + settle_ms)
        self.sweep_every = max(1, sweep_every)
        self._until_sweep = 0  # polls left before the next full sweep; 0 = sweep now
        self._caught_up = False  # a sweep has completed since the start (or the last outage)
        self._sweeper: asyncio.Task[None] | None = None  # a sweep beside the edge polls
        self.last_poll = PollStats()
        self.last_sweep = PollStats(sweep=True)  # the last sweep completed beside the polls
        self._wake = asyncio.Event()
        self._next_poll = 0.0  # monotonic time of the next search
        self._closed = False
        # With skip_existing, traces already finished at the first poll are marked seen but
        # not emitted ("tail -f" semantics); ones still in progress are emitted when done.
        self._swallow_next = skip_existing

    def poke(self) -> None:
        """Poll now instead of waiting for the interval (e.g. after the user hits refresh)."""
        self._next_poll = 0.0
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._stop_sweep()
        self._wake.set()

    async def poll_once(self, *, sweep: bool | None = None) -> StreamBatch:
        """One poll: search the edge (or sweep the look-back window: every ``sweep_every``
        polls, or when ``sweep``), re-read pending traces. Raises on server errors."""
        started = time.monotonic()
        sweep = self._until_sweep <= 0 if sweep is None else sweep
        now_ms = int(self.clock() * 1000)
        stats = PollStats(sweep=sweep)
        await self._search(stats, now_ms)
        # Count the sweep only once it has completed: a failed one is retried.
        self._until_sweep = self.sweep_every - 1 if sweep else self._until_sweep - 1
        if sweep:
            self._caught_up = True
        if self.cursor.pending:
            infos = await self.client.batch_get_trace_infos(list(self.cursor.pending))
            self.cursor.accept(infos, now_ms)
        fresh = self.cursor.take_settled(now_ms, everything=self._swallow_next)
        self.cursor.prune()
        stats.seconds = time.monotonic() - started
        self.last_poll = stats
        if self._swallow_next:
            self._swallow_next = False
            fresh = []
        return StreamBatch(traces=fresh, poll=stats,
                           pending=len(self.cursor.pending) + len(self.cursor.settling))

    async def _search(self, stats: PollStats, now_ms: int | None = None) -> None:
        """Read the edge (or the look-back, ``stats.sweep``) into the cursor, page by page;
        rows are first seen at ``now_ms``, or when their page arrives."""
        floor = self.cursor.query_from_ms()
        if not stats.sweep:
            floor = max(floor, self.cursor.cursor_ms - self.edge_ms)
        clause = f"trace.timestamp_ms >= {floor}"
        filter_string = f"{clause} AND {self.filter_string}" if self.filter_string else clause
        async for page in self.client.iter_trace_pages(
                self.experiment_ids, filter_string=filter_string,
                order_by=["timestamp_ms ASC"]):
            stats.searches += 1
            stats.rows += len(page)
            self.cursor.accept(page, int(self.clock() * 1000) if now_ms is None else now_ms)

    async def _sweep(self) -> None:
        """A sweep beside the edge polls: its rows settle and are emitted by them. Counted
        once it has completed; one that fails is started again by the next poll (an API
        error, e.g. a bad filter, is raised by the edge poll too)."""
        started = time.monotonic()
        stats = PollStats(sweep=True)
        try:
            await self._search(stats)
        except (MlflowUnavailableError, MlflowApiError):
            self._until_sweep = 0
            return
        stats.seconds = time.monotonic() - started
        self.last_sweep = stats
        self._until_sweep = self.sweep_every - 1

    def _stop_sweep(self) -> None:
        if self._sweeper is not None and not self._sweeper.done():
            self._sweeper.cancel()

    async def __aiter__(self) -> AsyncIterator[StreamBatch]:
        failures = 0  # consecutive polls that found the server unavailable
        try:
            while not self._closed:
                # Polls start an interval apart (a slow search does not push the next one
                # back by its own duration), or sooner when a settling trace comes due.
                self._next_poll = time.monotonic() + self.poll_interval_s
                if self._caught_up and self._until_sweep <= 0 and (
                        self._sweeper is None or self._sweeper.done()):
                    self._sweeper = asyncio.create_task(self._sweep())
                try:
                    # The first poll (or the first after an outage) sweeps here: it is the
                    # catch-up, and an edge poll beside it would read the same rows.
                    batch = await self.poll_once(sweep=not self._caught_up)
                except MlflowUnavailableError as exc:
                    # Unreachable, timed out, 5xx or a proxy's 502/503/504 after the client's
                    # own retries: say so, wait (backoff), resume from the same cursor.
                    yield StreamBatch(connected=False, error=str(exc),
                                      pending=len(self.cursor.pending))
                    # Traces logged during the outage may lie behind the edge.
                    self._until_sweep = 0
                    self._caught_up = False
                    self._stop_sweep()
                    await self._sleep(self.backoff.delay(failures))
                    failures += 1
                    self._next_poll = 0.0
                    continue
                except MlflowApiError:
                    raise  # a bad filter will not fix itself: let the caller show it
                if batch.traces or failures:
                    failures = 0
                    yield batch
                await self._sleep(self._next_wait_s(self._next_poll - time.monotonic()))
        finally:
            self._stop_sweep()

    def _next_wait_s(self, until_poll_s: float | None = None) -> float:
        """Until the next poll (an interval by default), or less when a settling trace comes
        due sooner: waiting for the next search past its settle time would add up to an
        interval to every decision's lag."""
        wait_s = self.poll_interval_s if until_poll_s is None else until_poll_s
        due_ms = self.cursor.next_settled_ms()
        if due_ms is not None:
            wait_s = min(wait_s, (due_ms - self.clock() * 1000) / 1000 + 0.01)
        return max(0.05, wait_s)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
