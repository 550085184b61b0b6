"""The list's feed: load the newest traces with a filter, then follow new ones live.

``ListFeed.run`` is the body of the explorer's stream worker (the app runs it as an exclusive
Textual worker, so a new filter cancels the old feed). It reports to a ``FeedHost`` (the app):
connection state and filter errors; the traces go into the ``TraceList``.

Rows that are not final when listed (IN_PROGRESS, no name yet, just finished: see
``core/settle.py``) are re-read by id alongside the stream until they stop changing, so every
row converges to what the server holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from trace_tui.config.settings import Settings
from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.settle import RowSettler
from trace_tui.tui.list_state import TraceList
from trace_tui.tui.sources import TraceSource, supports_live

if TYPE_CHECKING:  # aiohttp: imported in a thread after the first frame
    from trace_tui.core.client import MlflowClient
    from trace_tui.core.experiments import Experiment
    from trace_tui.core.model import TraceInfo
    from trace_tui.core.stream import LiveStream

MAX_BACKOFF_S = 10.0
REREAD_CHUNK = 200  # ids per batchGetInfos call


class FeedHost(Protocol):
    """What the feed tells the app."""

    def set_conn(self, state: str, error: str = "") -> None: ...

    def filter_failed(self, message: str) -> None: ...

    def list_loaded(self) -> None: ...


class ListFeed:
    """Initial load (server-side filter, newest ``capacity`` traces) then a ``LiveStream``
    whose arrivals are queued on the list (merged once per tick)."""

    def __init__(self, host: FeedHost, traces: TraceList, settings: Settings,
                 clock: Callable[[], float]) -> None:
        self.host = host
        self.traces = traces
        self.settings = settings
        self.clock = clock
        self.active_filter: str | None = None  # what the current list was loaded with
        self.stream: LiveStream | None = None
        self.settler = RowSettler()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def poke(self) -> None:
        """Poll now (e.g. on resume) instead of at the next interval."""
        if self.stream is not None:
            self.stream.poke()

    async def run(self, source: TraceSource, experiment: Experiment, filter_string: str,
                  first_page: list[TraceInfo] | None = None) -> None:
        """``first_page``: the newest traces already fetched (at start-up); shown at once,
        then the load fills the buffer around them."""
        self.close()
        exp_ids = [experiment.experiment_id]
        if first_page is not None:
            self.show_first_page(filter_string, first_page)
        else:
            self.settler.clear()
        if not await self._load(source, exp_ids, filter_string,
                                keep=first_page is not None):
            return
        self.host.list_loaded()
        if not supports_live(source):
            self.host.set_conn("static")
            return
        await self._follow(cast("MlflowClient", source), exp_ids, filter_string)

    def show_first_page(self, filter_string: str, first_page: list[TraceInfo]) -> None:
        """Show the newest traces fetched at start-up, before the client exists."""
        self.settler.clear()
        self.traces.reset()
        self.active_filter = filter_string
        self.traces.merge(first_page)
        self.settler.observe(first_page, self._now_ms())
        self.host.list_loaded()

    async def _load(self, source: TraceSource, exp_ids: list[str], filter_string: str,
                    keep: bool = False) -> bool:
        """Load the newest ``capacity`` traces; ``keep``: merge into the rows shown (the
        first page) instead of starting over."""
        traces = self.traces
        backoff = 0.5
        while True:
            self.host.set_conn("loading")
            try:
                first = True
                async for page in source.iter_trace_pages(
                        exp_ids, filter_string=filter_string or None,
                        max_results=traces.buffer.capacity):
                    if first:
                        if not keep:
                            traces.reset()
                        self.active_filter = filter_string
                        first = False
                    traces.merge(page)
                    self.settler.observe(page, self._now_ms())
                if first:
                    traces.reset()  # nothing matches (any more): an empty list
                    self.active_filter = filter_string
                return True
            except MlflowUnavailableError as exc:
                self.host.set_conn("reconnecting", str(exc))
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            except MlflowApiError as exc:
                self.host.set_conn("error", str(exc))
                self.host.filter_failed(str(exc))
                return False

    async def _follow(self, client: MlflowClient, exp_ids: list[str],
                      filter_string: str) -> None:
        from trace_tui.core.stream import LiveStream

        rows = self.traces.buffer.rows
        lookback_ms = int(self.settings.lookback_s * 1000)
        newest = max((r.request_time_ms for r in rows), default=0)
        since = newest or int(self.clock() * 1000)
        stream = LiveStream(client, exp_ids, filter_string=filter_string or None,
                            since_ms=since, lookback_ms=lookback_ms,
                            poll_interval_s=self.settings.refresh_interval_s)
        seen = getattr(getattr(stream, "cursor", None), "accept_seen", None)
        if seen is not None:  # settled traces the initial load listed need not come again
            now_ms = int(self.clock() * 1000)
            floor = since - lookback_ms * 2
            seen({r.trace_id: r.request_time_ms for r in rows
                  if r.request_time_ms >= floor and r.finished
                  and now_ms - r.request_time_ms - (r.duration_ms or 0) > 10_000})
        self.stream = stream
        self.host.set_conn("live")
        rereads = asyncio.create_task(self._reread_loop(client))
        try:
            async for batch in stream:
                if batch.connected:
                    self.host.set_conn("live")
                    self.traces.ingest(batch.traces)
                    self.settler.observe(batch.traces, self._now_ms(), fresh=True)
                else:
                    self.host.set_conn("reconnecting", batch.error or "server unreachable")
        except MlflowApiError as exc:
            self.host.set_conn("error", str(exc))
            self.host.filter_failed(str(exc))
        finally:
            rereads.cancel()
            stream.close()
            if self.stream is stream:
                self.stream = None

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _reread_loop(self, client: MlflowClient) -> None:
        """Re-read the rows that are not final, every refresh interval, until they settle."""
        while True:
            await asyncio.sleep(self.settings.refresh_interval_s)
            try:
                await self.reread_once(client)
            except (MlflowUnavailableError, MlflowApiError):
                continue  # the stream reports the connection; the rows stay watched

    async def reread_once(self, client: MlflowClient) -> int:
        """One round of re-reads; queues the rows that changed and returns their number."""
        settler = self.settler
        due = settler.due(self._now_ms())
        if not due:
            return 0
        listed = self.traces.buffer.by_id
        queued = {i.trace_id for i in self.traces.pending}
        gone = [tid for tid in due if tid not in listed and tid not in queued]
        settler.forget(gone)  # evicted: re-reading would bring them back
        due = [tid for tid in due if tid in listed or tid in queued]
        changed = 0
        for start in range(0, len(due), REREAD_CHUNK):
            chunk = due[start:start + REREAD_CHUNK]
            infos = await client.batch_get_trace_infos(chunk)
            fresh = settler.update(chunk, infos, self._now_ms())
            if fresh:
                self.traces.ingest(fresh)
                changed += len(fresh)
        return changed
