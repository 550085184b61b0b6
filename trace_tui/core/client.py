"""Async MLflow REST client (aiohttp): experiments, traces, spans, tags, assessments, runs.

One ``aiohttp.ClientSession`` per client. Reads retry connection errors, timeouts, 429 and
5xx with exponential backoff within a time budget (see READ_TIMEOUT_S below); writes that are
not idempotent are sent once. No textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

try:  # a JSON parser several times faster on big span payloads; json is the fallback
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = json.loads  # type: ignore[assignment]  # json.loads takes bytes too

from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError, NotMlflowServerError
from trace_tui.core.http import RETRY_STATUSES, Credentials, api_error, is_html, transient
from trace_tui.core.model import (
    Assessment,
    TraceDecodeError,
    TraceInfo,
    TraceTree,
    build_tree,
    decode_span,
    decode_trace,
)
from trace_tui.core.retry import Backoff, retrying
from trace_tui.core.span_cache import SpanCache, spans_body
from trace_tui.core.uri import redact_uri

SEARCH_PAGE_MAX = 500  # the server rejects max_results > 500
# The retry budget (docs/reliability.md): each request may take CONNECT_TIMEOUT_S to connect
# and READ_TIMEOUT_S between bytes of the answer (batchGet 3x); a read is retried on no
# connection, a timeout, 429 or 5xx up to READ_RETRIES times (backoff 0.25, 0.5, 1 s, +-25%),
# and no retry starts after RETRY_BUDGET_S. Then the server counts as unavailable.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
READ_RETRIES = 3
RETRY_BUDGET_S = 12.0
THREAD_PARSE_BYTES = 256 * 1024  # bigger bodies are parsed off the event loop
INLINE_DECODE_SPANS = 64  # bigger traces are decoded off the event loop
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


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    last_update_time: int = 0

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Experiment:
        return cls(str(d.get("experiment_id", "")), str(d.get("name", "")),
                   str(d.get("lifecycle_stage", "active")), int(d.get("last_update_time") or 0))


class MlflowClient:
    """Async client for one MLflow tracking server. Use as ``async with MlflowClient(uri)``."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        credentials: Credentials | None = None,
        timeout_s: float = READ_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_retries: int = READ_RETRIES,
        retry_budget_s: float = RETRY_BUDGET_S,
        backoff: Backoff | None = None,
        concurrency: int = 8,
        batch_size: int = 100,
        span_cache: SpanCache | bool | None = True,
    ) -> None:
        """``span_cache``: True for the user's cache (``SpanCache.default()``), a SpanCache,
        or False/None for none."""
        self.display_uri = redact_uri(tracking_uri.rstrip("/"))
        # user:password in the URL becomes Basic auth unless other credentials are given
        # (aiohttp refuses both at once); the URL kept has no user info.
        bare, from_url = Credentials.from_url(tracking_uri.rstrip("/"))
        self.tracking_uri = bare
        if credentials is None:
            env = Credentials.from_env()
            credentials = env if env.present or from_url is None else from_url
        self._credentials = credentials
        self.read_timeout_s = timeout_s  # per request, between bytes; batchGet gets 3x
        # sock_connect, not connect: `connect` also counts the wait for a free pooled
        # connection, which under many concurrent calls is queueing, not an unreachable server.
        self.connect_timeout_s = connect_timeout_s
        self.read_retries = read_retries
        self.retry_budget_s = retry_budget_s
        self.backoff = backoff or Backoff(first_s=0.25, max_s=2.0)
        self.concurrency = concurrency
        self.batch_size = batch_size
        self._session: aiohttp.ClientSession | None = None
        self.span_cache: SpanCache | None = (
            SpanCache.default() if span_cache is True
            else span_cache if isinstance(span_cache, SpanCache) else None)
        self._artifact_ok: bool | None = None  # does the server have ARTIFACT_PATH?
        self._cache_writes: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"MlflowClient({self.display_uri!r})"

    async def __aenter__(self) -> MlflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._cache_writes:  # let spans already fetched reach the cache
            await asyncio.gather(*self._cache_writes, return_exceptions=True)
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # The default for calls that do not pass their own (artifact uploads).
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s,
                                              sock_read=self.read_timeout_s * 3),
                headers={"User-Agent": "trace-tui", **self._credentials.header()},
                connector=aiohttp.TCPConnector(limit=max(16, self.concurrency * 2)),
            )
        return self._session

    # ------------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        retry: bool = True,
        slow: bool = False,
    ) -> dict[str, Any]:
        """One call; retried with backoff when ``retry`` (reads and idempotent writes)."""
        raw = await self._request_bytes(method, path, params=params, body=body, retry=retry,
                                        slow=slow)
        if not raw:
            return {}
        try:
            data = await self._parse(raw)
        except ValueError:
            raise NotMlflowServerError(self._not_mlflow(path, "something not JSON")) from None
        return data if isinstance(data, dict) else {}

    async def _request_bytes(
        self, method: str, path: str, *, params: Any = None, body: Any = None,
        retry: bool = True, slow: bool = False, expect_json: bool = True,
    ) -> bytes:
        """The body of a 2xx answer. ``slow`` calls (batchGet) get 3x the read timeout.

        Failures: an MLflow error -> MlflowApiError; no answer, a timeout, 429/5xx (a proxy's
        502/503/504 too) after the retries -> MlflowUnavailableError; an HTML page or a
        non-JSON body -> NotMlflowServerError."""
        url = self.tracking_uri + path
        read_s = self.read_timeout_s * (3 if slow else 1)

        async def attempt(remaining_s: float) -> bytes:
            # A retry's read timeout is capped by the retry budget left: an unanswering
            # server is given up on within max(read timeout, budget) + a second.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s,
                                            sock_read=min(read_s, remaining_s))
            session = self._get_session()
            async with session.request(method, url, params=params, json=body,
                                       timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise api_error(resp.status, raw, path)
                if expect_json and is_html(resp.content_type, raw):
                    raise NotMlflowServerError(self._not_mlflow(path, "an HTML page"))
                return raw

        try:
            return await retrying(attempt, attempts=1 + (self.read_retries if retry else 0),
                                  transient=transient, backoff=self.backoff,
                                  budget_s=self.retry_budget_s)
        except MlflowApiError as exc:
            if exc.status in RETRY_STATUSES:
                what = f"HTTP {exc.status}" + (" error page" if exc.html else "")
                raise MlflowUnavailableError(
                    f"MLflow server at {self.display_uri} is unavailable ({what})") from None
            if exc.html:
                raise NotMlflowServerError(self._not_mlflow(
                    path, f"HTTP {exc.status} with an HTML page")) from None
            raise
        except aiohttp.InvalidURL as exc:
            raise MlflowUnavailableError(
                f"tracking URI {self.display_uri} is not a usable URL ({exc})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            detail = "no answer within the timeout" if isinstance(exc, TimeoutError) \
                else (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__
            raise MlflowUnavailableError(
                f"MLflow server at {self.display_uri} is unreachable "
                f"({detail})") from None

    @staticmethod
    async def _parse(raw: bytes) -> Any:
        """JSON, parsed in a thread (GC paused) when big enough to stall the loop."""
        if len(raw) < THREAD_PARSE_BYTES:
            return json_loads(raw)
        return await asyncio.to_thread(parse_json, raw)

    def _not_mlflow(self, path: str, what: str) -> str:
        return (f"{self.display_uri} is not an MLflow server ({path.split('?')[0]} answered "
                f"{what})")

    def _field(self, data: Mapping[str, Any], key: str, path: str) -> Any:
        """``data[key]``, or NotMlflowServerError when an answer lacks what MLflow sends."""
        value = data.get(key)
        if not isinstance(value, dict):
            raise NotMlflowServerError(self._not_mlflow(path, f"JSON without {key!r}"))
        return value

    # ------------------------------------------------------------------ server

    async def health(self) -> bool:
        """True when ``/health`` answers OK (one quick try, no retries)."""
        try:
            raw = await self._request_bytes("GET", "/health", retry=False, expect_json=False)
        except (MlflowUnavailableError, MlflowApiError):
            return False
        return raw.strip() == b"OK"

    async def search_experiments(self, filter_string: str | None = None) -> list[Experiment]:
        """All active experiments, most recently updated first."""
        out: list[Experiment] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {"max_results": 1000, "order_by": ["last_update_time DESC"]}
            if filter_string:
                body["filter"] = filter_string
            if token:
                body["page_token"] = token
            data = await self._request("POST", "/api/2.0/mlflow/experiments/search", body=body)
            out.extend(Experiment.from_json(e) for e in data.get("experiments", []))
            token = data.get("next_page_token")
            if not token:
                return out

    async def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            data = await self._request("GET", "/api/2.0/mlflow/experiments/get-by-name",
                                       params={"experiment_name": name})
        except MlflowApiError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return Experiment.from_json(self._field(data, "experiment", "experiments/get-by-name"))

    async def get_experiment(self, experiment_id: str) -> Experiment | None:
        try:
            data = await self._request("GET", "/api/2.0/mlflow/experiments/get",
                                       params={"experiment_id": experiment_id})
        except MlflowApiError as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return Experiment.from_json(self._field(data, "experiment", "experiments/get"))

    async def resolve_experiment(self, name_or_id: str | None) -> Experiment:
        """An experiment by id or name; None picks the most recently updated one."""
        if name_or_id is None:
            experiments = await self.search_experiments()
            with_traces = [e for e in experiments if e.experiment_id != "0"]
            if not experiments:
                raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", "the server has no experiment",
                                     404, "experiments/search")
            return (with_traces or experiments)[0]
        if name_or_id.isdigit():
            found = await self.get_experiment(name_or_id)
            if found is not None:
                return found
        found = await self.get_experiment_by_name(name_or_id)
        if found is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST",
                                 f"no experiment named or numbered {name_or_id!r}",
                                 404, "experiments/get-by-name")
        return found

    # ------------------------------------------------------------------ traces

    async def iter_trace_pages(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int | None = None,
        page_size: int = SEARCH_PAGE_MAX,
    ) -> AsyncIterator[list[TraceInfo]]:
        """Pages of TraceInfos (no spans) until ``max_results`` or the end."""
        page_size = max(1, min(page_size, SEARCH_PAGE_MAX))
        token: str | None = None
        seen = 0
        while max_results is None or seen < max_results:
            want = page_size if max_results is None else min(page_size, max_results - seen)
            body: dict[str, Any] = {
                "locations": [{"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": str(e)}}
                              for e in experiment_ids],
                "max_results": want,
            }
            if filter_string:
                body["filter"] = filter_string
            if order_by:
                body["order_by"] = list(order_by)
            if token:
                body["page_token"] = token
            data = await self._request("POST", "/api/3.0/mlflow/traces/search", body=body)
            page = [TraceInfo.from_json(t) for t in data.get("traces", [])]
            seen += len(page)
            if page:
                yield page
            token = data.get("next_page_token")
            if not token or not page:
                return

    async def search_traces(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int | None = None,
    ) -> list[TraceInfo]:
        """All matching TraceInfos (paged at 500), newest first unless ``order_by``."""
        out: list[TraceInfo] = []
        async for page in self.iter_trace_pages(experiment_ids, filter_string=filter_string,
                                                order_by=order_by, max_results=max_results):
            out.extend(page)
        return out

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
        return await decode_off_loop(await self.get_trace_json(trace_id))

    async def get_trace_json(self, trace_id: str) -> dict[str, Any]:
        """The ``{"trace_info", "spans"}`` JSON of one trace (for the explorer, judges and
        export). The info (tags, assessments) is always read fresh; a finished trace's spans
        come from the span cache when there, else from the cheapest endpoint: the UI's
        trace-data endpoint, then ``traces/get``. Spans may be in either encoding."""
        # The info is read before the spans: a trace seen finished here has its final spans.
        info = await self._trace_info_json(trace_id)
        finished = info.get("state") in FINISHED
        if finished and self.span_cache is not None:
            spans = await asyncio.to_thread(self._read_cached, trace_id)
            if spans is not None:
                return {"trace_info": info, "spans": spans}
        body = await self._artifact_body(trace_id)
        spans = None
        if body is not None:
            data = await self._parse_or_none(body)
            spans = data.get("spans") if isinstance(data, dict) else None
            if not isinstance(spans, list):
                spans, body = None, None
        if spans is None:
            data = await self._request("GET", "/api/3.0/mlflow/traces/get",
                                       params={"trace_id": trace_id, "allow_partial": "true"})
            trace = dict(self._field(data, "trace", "traces/get"))
            spans = trace.get("spans") or []
            info = trace.get("trace_info") or info
        if finished:
            self._cache_later(trace_id, spans, body)
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
        """Cached spans (in a worker thread); a file that holds no span list is dropped."""
        cache = self.span_cache
        if cache is None:
            return None
        body = cache.get_bytes(self.tracking_uri, trace_id)
        if body is None:
            return None
        try:
            data = parse_json(body)
        except ValueError:
            data = None
        spans = data.get("spans") if isinstance(data, dict) else None
        if not isinstance(spans, list):
            path = cache.path(self.tracking_uri, trace_id)
            cache.warn(f"span cache: discarded corrupt file {path}")
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return spans

    def _cache_later(self, trace_id: str, spans: list[Any], body: bytes | None) -> None:
        """Write a finished trace's spans to the cache in a worker thread, off the caller's
        path; ``close()`` waits for writes still running."""
        cache = self.span_cache
        if cache is None:
            return
        server = self.tracking_uri

        def write() -> None:
            cache.put_bytes(server, trace_id, body if body is not None else spans_body(spans))

        task = asyncio.get_running_loop().create_task(asyncio.to_thread(write))
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
                self._cache_later(str(info["trace_id"]), list(raw.get("spans") or []), None)
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
        out = {}
        with gc_paused():
            for info in infos:
                spans = self._read_cached(info.trace_id)
                if spans is None:
                    continue
                try:
                    out[info.trace_id] = build_tree(info, [decode_span(s) for s in spans])
                except TraceDecodeError:
                    continue
        return out

    # ------------------------------------------------------------------ tags

    async def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        await self._request("PATCH", f"/api/3.0/mlflow/traces/{trace_id}/tags",
                            body={"key": key, "value": value})

    async def delete_trace_tag(self, trace_id: str, key: str) -> None:
        await self._request("DELETE", f"/api/3.0/mlflow/traces/{trace_id}/tags",
                            body={"key": key})

    # ------------------------------------------------------------------ assessments

    async def create_assessment(
        self,
        trace_id: str,
        name: str,
        value: Any,
        *,
        source_type: str = "HUMAN",
        source_id: str = "trace-tui",
        rationale: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        span_id: str | None = None,
        error: str | None = None,
    ) -> Assessment:
        """Log a feedback assessment. Sent once: a retry could write it twice."""
        feedback: dict[str, Any] = {"value": value}
        if error is not None:
            feedback = {"error": {"error_code": "JUDGE_ERROR", "error_message": error}}
        assessment: dict[str, Any] = {
            "assessment_name": name,
            "source": {"source_type": source_type, "source_id": source_id},
            "feedback": feedback,
        }
        if rationale:
            assessment["rationale"] = rationale
        if metadata:
            assessment["metadata"] = {str(k): str(v) for k, v in metadata.items()}
        if span_id:
            assessment["span_id"] = span_id
        data = await self._request("POST", f"/api/3.0/mlflow/traces/{trace_id}/assessments",
                                   body={"assessment": assessment}, retry=False)
        return Assessment.from_json(self._field(data, "assessment", "assessments"))

    async def update_assessment(
        self, trace_id: str, assessment_id: str, *, value: Any = None,
        rationale: str | None = None,
    ) -> Assessment:
        body: dict[str, Any] = {}
        mask = []
        if value is not None:
            body["feedback"] = {"value": value}
            mask.append("feedback")
        if rationale is not None:
            body["rationale"] = rationale
            mask.append("rationale")
        data = await self._request(
            "PATCH", f"/api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}",
            body={"assessment": body, "update_mask": ",".join(mask)})
        return Assessment.from_json(self._field(data, "assessment", "assessments"))

    async def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        await self._request("DELETE",
                            f"/api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}")

    # ------------------------------------------------------------------ runs (policy state)

    async def search_runs(self, experiment_ids: Iterable[str], filter_string: str = "",
                          max_results: int = 100) -> list[dict[str, Any]]:
        data = await self._request("POST", "/api/2.0/mlflow/runs/search", body={
            "experiment_ids": list(experiment_ids), "filter": filter_string,
            "max_results": max_results})
        return list(data.get("runs", []))

    async def create_run(self, experiment_id: str, run_name: str,
                         tags: Mapping[str, str] | None = None) -> str:
        body = {"experiment_id": experiment_id, "run_name": run_name,
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        data = await self._request("POST", "/api/2.0/mlflow/runs/create", body=body, retry=False)
        run = self._field(data, "run", "runs/create")
        return str(self._field(run, "info", "runs/create").get("run_id", ""))

    async def get_run(self, run_id: str) -> dict[str, Any]:
        data = await self._request("GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})
        return dict(self._field(data, "run", "runs/get"))

    async def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        await self._request("POST", "/api/2.0/mlflow/runs/set-tag",
                            body={"run_id": run_id, "key": key, "value": value})

    async def upload_artifact(self, run_id: str, path: str, content: bytes) -> None:
        """Write a run artifact through the server's artifact proxy (``--serve-artifacts``)."""
        url = f"{self.tracking_uri}{await self._artifact_path(run_id, path)}"
        async with self._get_session().put(url, data=content) as resp:
            if resp.status >= 400:
                raise api_error(resp.status, await resp.read(), "mlflow-artifacts")

    async def download_artifact(self, run_id: str, path: str) -> bytes | None:
        """A run artifact's bytes, or None when it does not exist."""
        try:
            return await self._request_bytes("GET", await self._artifact_path(run_id, path),
                                             expect_json=False)
        except MlflowApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def _artifact_path(self, run_id: str, path: str) -> str:
        root = str((await self.get_run(run_id)).get("info", {}).get("artifact_uri", ""))
        if not root.startswith("mlflow-artifacts:"):
            raise MlflowApiError("UNSUPPORTED", f"run artifacts at {root!r} are not served by "
                                 "the tracking server (start it with --serve-artifacts)",
                                 400, "mlflow-artifacts")
        rel = root.split("mlflow-artifacts:", 1)[1].lstrip("/")
        return f"/api/2.0/mlflow-artifacts/artifacts/{rel}/{path}"


def _decode_all(raws: list[dict[str, Any]]) -> list[TraceTree]:
    with gc_paused():
        return [decode_trace(raw) for raw in raws]


def run_with_client(uri: str, fn: Callable[[MlflowClient], Awaitable[int]],
                    **options: Any) -> int:
    """Run ``fn(client)`` on a fresh client (``options`` go to MlflowClient) in a new event
    loop, closing it after."""

    async def go() -> int:
        async with MlflowClient(uri, **options) as client:
            return await fn(client)

    return asyncio.run(go())
