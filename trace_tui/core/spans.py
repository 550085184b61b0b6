"""Reading traces' spans: the cheapest endpoint first, big bodies parsed and decoded off the
event loop with the cyclic GC paused, finished traces' spans through the on-disk span cache
(core/span_cache.py). Mixed into MlflowClient (core/client.py), which supplies the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

try:  # a JSON parser several times faster on big span payloads; json is the fallback
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = json.loads  # type: ignore[assignment]  # json.loads takes bytes too

from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError, NotMlflowServerError
from trace_tui.core.model import (
    PENDING_INFO,
    TraceDecodeError,
    TraceInfo,
    TraceTree,
    decode_trace,
    with_info,
)
from trace_tui.core.span_cache import Cached, SpanCache, rows_of, tree_of

T = TypeVar("T")

SEARCH_PAGE_MAX = 500  # the server rejects max_results > 500 (batchGetInfos chunks too)

THREAD_PARSE_BYTES = 256 * 1024  # bigger bodies are parsed off the event loop
INLINE_DECODE_SPANS = 64  # bigger traces are decoded off the event loop
CACHE_WRITE_DELAY_S = 1.0  # a tree's rows are written this long after it was handed over
FINISHED = ("OK", "ERROR")  # a trace in one of these states has its final spans
ARTIFACT_PATH = "/ajax-api/3.0/mlflow/get-trace-artifact"  # the UI's span endpoint

_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Any:
    """No cyclic GC while building big acyclic structures (parsed JSON, span trees): each
    collection would rescan the growing heap, most of a big parse's time otherwise. Nested
    and thread-safe; the collector's state is restored when the last holder leaves."""
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


def parse_json(raw: bytes) -> Any:
    with gc_paused():
        return json_loads(raw)


def decode_trace_paused(payload: Mapping[str, Any]) -> TraceTree:
    with gc_paused():
        return decode_trace(payload)


async def decode_off_loop(payload: Mapping[str, Any]) -> TraceTree:
    """``decode_trace``, in a thread when the trace is big enough to stall the loop."""
    spans = payload.get("spans") if isinstance(payload, Mapping) else None
    if isinstance(spans, list) and len(spans) <= INLINE_DECODE_SPANS:
        return decode_trace(payload)
    return await asyncio.to_thread(decode_trace_paused, payload)


def open_gate(gate: asyncio.Future[None]) -> None:
    if not gate.done():
        gate.set_result(None)


def _decode_all(raws: list[dict[str, Any]]) -> list[TraceTree]:
    with gc_paused():
        return [decode_trace(raw) for raw in raws]


class SpanReads:
    """Trace and span reads of MlflowClient (it provides ``_request`` and friends)."""

    tracking_uri: str
    span_cache: SpanCache | None
    batch_size: int
    concurrency: int
    _artifact_ok: bool | None
    _cache_writes: set[asyncio.Task[None]]
    _write_gates: set[asyncio.Future[None]]  # delayed writes' gates; close() opens them
    _unwritten: dict[str, list[Any]]  # finished traces' spans whose cache write waits

    async def _request(self, method: str, path: str, *, params: Any = None, body: Any = None,
                       retry: bool = True, slow: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    async def _request_bytes(self, method: str, path: str, *, params: Any = None,
                             body: Any = None, retry: bool = True, slow: bool = False,
                             expect_json: bool = True) -> bytes:
        raise NotImplementedError

    def _field(self, data: Mapping[str, Any], key: str, path: str) -> Any:
        raise NotImplementedError

    @staticmethod
    async def _parse(raw: bytes) -> Any:
        """JSON, parsed in a thread (GC paused) when big enough to stall the loop."""
        if len(raw) < THREAD_PARSE_BYTES:
            return json_loads(raw)
        return await asyncio.to_thread(parse_json, raw)

    async def get_trace_info(self, trace_id: str) -> TraceInfo:
        return TraceInfo.from_json(await self._trace_info_json(trace_id))

    async def _trace_info_json(self, trace_id: str) -> dict[str, Any]:
        data = await self._request("GET", f"/api/3.0/mlflow/traces/{trace_id}")
        trace = self._field(data, "trace", "traces/get-info")
        return dict(self._field(trace, "trace_info", "traces/get-info"))

    async def batch_get_trace_infos(self, trace_ids: Sequence[str]) -> list[TraceInfo]:
        return [TraceInfo.from_json(t) for t in await self._batch_info_json(trace_ids)]

    async def _batch_info_json(self, trace_ids: Sequence[str]) -> list[dict[str, Any]]:
        ids = list(trace_ids)
        chunks = [ids[i:i + SEARCH_PAGE_MAX] for i in range(0, len(ids), SEARCH_PAGE_MAX)]

        async def one(chunk: list[str]) -> list[dict[str, Any]]:
            data = await self._request("POST", "/api/3.0/mlflow/traces/batchGetInfos",
                                       body={"trace_ids": chunk})
            return list(data.get("trace_infos", []))

        results = await asyncio.gather(*(one(c) for c in chunks))
        return [t for chunk in results for t in chunk]

    async def get_trace(self, trace_id: str) -> TraceTree:
        """One trace with its spans (partial traces allowed, so in-progress ones open)."""
        return (await self.get_trace_and_json(trace_id))[0]

    async def get_trace_and_json(self, trace_id: str
                                 ) -> tuple[TraceTree, dict[str, Any] | None]:
        """One trace's tree and its ``{"trace_info", "spans"}`` JSON (``get_trace_json``),
        or None for the JSON when the tree came from the span cache's rows (the raw spans
        are then left undecoded: ``get_trace_json`` reads them, from the cache, if needed).
        A finished trace in the span cache is read, and its tree built (in a thread, GC
        paused), while its info is requested: the info then only completes the tree."""
        info, loaded = await self._info_with_cached(trace_id, self._load_cached)
        finished = info.get("state") in FINISHED
        if finished and loaded is not None:
            cached, tree = loaded
            raw_spans = cached.spans
            if raw_spans is None and tree is not None:  # from the rows
                return with_info(tree, TraceInfo.from_json(info)), None
            payload: dict[str, Any] = {"trace_info": info, "spans": raw_spans or []}
            if tree is None:  # spans that do not decode: fail as without the cache
                return await decode_off_loop(payload), payload
            tree = with_info(tree, TraceInfo.from_json(info))
            if raw_spans is not None and cached.walk is None:  # older or tree-less file
                self._cache_later(trace_id, raw_spans, tree)  # rewritten with rows
            return tree, payload
        unwritten = self._unwritten.get(trace_id) if finished else None
        if unwritten is not None:  # handed over moments ago, its cache write still waiting
            payload = {"trace_info": info, "spans": unwritten}
            return await decode_off_loop(payload), payload
        payload = await self._fetch_spans(trace_id, info)
        spans: list[Any] = payload["spans"]
        try:
            tree = await decode_off_loop(payload)
        except TraceDecodeError:
            if finished:
                self._cache_later(trace_id, spans)
            raise
        if finished:
            self._cache_later(trace_id, spans, tree)
        return tree, payload

    async def _info_with_cached(self, trace_id: str, read: Callable[[str], T | None]
                                ) -> tuple[dict[str, Any], T | None]:
        """The trace's info JSON, and ``read(trace_id)`` of the span cache run in a thread
        while the info is requested (None when the trace is not cached). Only finished
        traces are cached, and the caller uses the cached result only if the info says so."""
        cache = self.span_cache
        reading = None
        if cache is not None and cache.has(self.tracking_uri, trace_id):
            reading = asyncio.ensure_future(asyncio.to_thread(read, trace_id))
        try:
            info = await self._trace_info_json(trace_id)
        except BaseException:
            if reading is not None:
                await asyncio.gather(reading, return_exceptions=True)
            raise
        return info, (await reading if reading is not None else None)

    def _load_cached(self, trace_id: str) -> tuple[Cached, TraceTree | None] | None:
        """A cached trace's spans and its tree without the info (in a worker thread)."""
        cache = self.span_cache
        if cache is None:
            return None
        with gc_paused():
            cached = cache.get(self.tracking_uri, trace_id, spans=False)
            if cached is None:
                return None
            try:
                return cached, tree_of(cached, PENDING_INFO)
            except TraceDecodeError:
                return cached, None

    async def get_trace_json(self, trace_id: str) -> dict[str, Any]:
        """The ``{"trace_info", "spans"}`` JSON of one trace (for the explorer, judges and
        export). The info (tags, assessments) is always read fresh; a finished trace's spans
        come from the span cache when there, else from the cheapest endpoint: the UI's
        trace-data endpoint, then ``traces/get``. Spans may be in either encoding."""
        # The info is read before the spans: a trace seen finished here has its final spans.
        # Only finished traces are cached, so a cached file is read while the info comes.
        info, spans = await self._info_with_cached(trace_id, self._read_cached)
        finished = info.get("state") in FINISHED
        if finished and spans is not None:
            return {"trace_info": info, "spans": spans}
        unwritten = self._unwritten.get(trace_id) if finished else None
        if unwritten is not None:  # its cache write still waiting
            return {"trace_info": info, "spans": unwritten}
        payload = await self._fetch_spans(trace_id, info)
        if finished:
            self._cache_later(trace_id, payload["spans"])
        return payload

    async def _fetch_spans(self, trace_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """The trace's JSON from the server: the trace-data endpoint, else ``traces/get``."""
        body = await self._artifact_body(trace_id)
        spans = None
        if body is not None:
            data = await self._parse_or_none(body)
            spans = data.get("spans") if isinstance(data, dict) else None
            if not isinstance(spans, list):
                spans = None
        if spans is None:
            data = await self._request("GET", "/api/3.0/mlflow/traces/get",
                                       params={"trace_id": trace_id, "allow_partial": "true"})
            trace = dict(self._field(data, "trace", "traces/get"))
            spans = trace.get("spans") or []
            info = trace.get("trace_info") or info
        return {"trace_info": info, "spans": spans}

    async def _artifact_body(self, trace_id: str) -> bytes | None:
        """The UI's trace-data answer (``{"spans": [...]}``, MLflow-native spans), or None
        when the server lacks that endpoint or it fails (then ``traces/get`` is used)."""
        if self._artifact_ok is False:
            return None
        try:
            raw = await self._request_bytes("GET", ARTIFACT_PATH, params={"request_id": trace_id},
                                            retry=False)
        except NotMlflowServerError:
            self._artifact_ok = False
            return None
        except MlflowApiError as exc:
            if exc.status in (404, 405) and exc.html:  # no such route on this server
                self._artifact_ok = False
            return None
        except MlflowUnavailableError:
            return None
        self._artifact_ok = True
        return raw

    async def _parse_or_none(self, raw: bytes) -> Any:
        try:
            return await self._parse(raw)
        except ValueError:
            return None

    def _read_cached(self, trace_id: str) -> list[Any] | None:
        """Cached spans (in a worker thread); a bad file is dropped by the cache."""
        cache = self.span_cache
        if cache is None:
            return None
        with gc_paused():
            cached = cache.get(self.tracking_uri, trace_id)
        return None if cached is None else cached.spans

    def _cache_later(self, trace_id: str, spans: list[Any],
                     tree: TraceTree | None = None) -> None:
        """Write a finished trace's spans (with the decoded rows of ``tree``, decoded from
        exactly these spans, when given) to the cache in a worker thread, off the caller's
        path; ``close()`` waits for writes still running. Working out the rows holds the
        GIL for some 0.1 s on a 10,000-span trace, so with a tree the write waits
        ``CACHE_WRITE_DELAY_S`` (or ``close()``): it would otherwise slow the first paint of
        the tree it was just handed."""
        cache = self.span_cache
        if cache is None:
            return
        server = self.tracking_uri

        def write() -> None:
            cache.put(server, trace_id, spans, None if tree is None else rows_of(spans, tree))

        loop = asyncio.get_running_loop()
        gate = None
        if tree is not None:
            self._unwritten[trace_id] = spans
            gate = loop.create_future()
            self._write_gates.add(gate)
            loop.call_later(CACHE_WRITE_DELAY_S, open_gate, gate)

        async def later() -> None:
            try:
                if gate is not None:
                    await gate
                await asyncio.to_thread(write)
            finally:
                if gate is not None:
                    self._write_gates.discard(gate)
                    if self._unwritten.get(trace_id) is spans:
                        del self._unwritten[trace_id]

        task = loop.create_task(later())
        self._cache_writes.add(task)
        task.add_done_callback(self._cache_writes.discard)

    async def batch_get_raw(self, trace_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Raw trace JSON for many ids, in the order given (unknown ids left out): cached
        spans with fresh infos (``batchGetInfos``), the rest by chunked ``batchGet``."""
        ids = list(dict.fromkeys(trace_ids))
        hits: dict[str, dict[str, Any]] = {}
        cache = self.span_cache
        if cache is not None and ids:
            cached = await asyncio.to_thread(
                lambda: [t for t in ids if cache.has(self.tracking_uri, t)])
            if cached:
                infos = await self._batch_info_json(cached)
                hits = await asyncio.to_thread(self._read_many, infos)
        misses = [t for t in ids if t not in hits]
        fetched = await self._batch_get_raw(misses) if misses else []
        by_id = dict(hits)
        for raw in fetched:
            info = raw.get("trace_info") if isinstance(raw, dict) else None
            if not isinstance(info, dict) or "trace_id" not in info:
                continue
            by_id[str(info["trace_id"])] = raw
            if cache is not None and info.get("state") in FINISHED:
                self._cache_later(str(info["trace_id"]), list(raw.get("spans") or []))
        return [by_id[t] for t in ids if t in by_id]

    def _read_many(self, infos: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        with gc_paused():
            for info in infos:
                trace_id = str(info.get("trace_id", ""))
                if info.get("state") not in FINISHED:
                    continue
                spans = self._read_cached(trace_id)
                if spans is not None:
                    out[trace_id] = {"trace_info": info, "spans": spans}
        return out

    async def _batch_get_raw(self, trace_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Chunked ``batchGet`` calls, bounded concurrency, server order."""
        chunks = [list(trace_ids[i:i + self.batch_size])
                  for i in range(0, len(trace_ids), self.batch_size)]
        gate = asyncio.Semaphore(self.concurrency)

        async def fetch(chunk: list[str]) -> list[dict[str, Any]]:
            async with gate:
                data = await self._request("GET", "/api/3.0/mlflow/traces/batchGet",
                                           params=[("trace_ids", t) for t in chunk], slow=True)
            return data.get("traces", [])

        results = await asyncio.gather(*(fetch(c) for c in chunks))
        return [t for chunk in results for t in chunk]

    async def batch_get_traces(self, traces: Sequence[str | TraceInfo]) -> list[TraceTree]:
        """Trees for many traces, in the order given; unknown ids are left out. Given
        TraceInfos (fresh from a search), cached spans need no further info request."""
        known = {t.trace_id: t for t in traces
                 if isinstance(t, TraceInfo) and t.state in FINISHED}
        ids = [t.trace_id if isinstance(t, TraceInfo) else t for t in traces]
        trees: dict[str, TraceTree] = {}
        cache = self.span_cache
        if cache is not None and known:
            trees = await asyncio.to_thread(self._trees_from_cache, list(known.values()))
        rest = [t for t in ids if t not in trees]
        raws = await self.batch_get_raw(rest) if rest else []
        if raws:
            trees.update((t.trace_id, t) for t in await asyncio.to_thread(_decode_all, raws))
        return [trees[t] for t in ids if t in trees]

    def _trees_from_cache(self, infos: list[TraceInfo]) -> dict[str, TraceTree]:
        out: dict[str, TraceTree] = {}
        cache = self.span_cache
        if cache is None:
            return out
        with gc_paused():
            for info in infos:
                cached = cache.get(self.tracking_uri, info.trace_id, spans=False)
                if cached is None:
                    continue
                try:
                    out[info.trace_id] = tree_of(cached, info)
                except TraceDecodeError:
                    continue
        return out
