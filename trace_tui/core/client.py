"""Async MLflow REST client (aiohttp): experiments, traces, spans, tags, assessments, runs.

One ``aiohttp.ClientSession`` per client. Reads retry connection errors, timeouts, 429 and
5xx with exponential backoff within a time budget (see READ_TIMEOUT_S below); writes that are
not idempotent are sent once. No textual here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp

from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError, NotMlflowServerError
from trace_tui.core.experiments import Experiment  # re-exported: its old home
from trace_tui.core.http import RETRY_STATUSES, Credentials, api_error, is_html, transient
from trace_tui.core.model import Assessment, TraceInfo
from trace_tui.core.retry import Backoff, retrying
from trace_tui.core.span_cache import SpanCache
from trace_tui.core.spans import (  # noqa: F401  (ARTIFACT_PATH, decode_off_loop: re-exported)
    ARTIFACT_PATH,
    SEARCH_PAGE_MAX,
    SpanReads,
    decode_off_loop,
    open_gate,
)
from trace_tui.core.uri import redact_uri

# The retry budget (docs/reliability.md): each request may take CONNECT_TIMEOUT_S to connect
# and READ_TIMEOUT_S between bytes of the answer (batchGet 3x); a read is retried on no
# connection, a timeout, 429 or 5xx up to READ_RETRIES times (backoff 0.25, 0.5, 1 s, +-25%),
# and no retry starts after RETRY_BUDGET_S. Then the server counts as unavailable.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
READ_RETRIES = 3
RETRY_BUDGET_S = 12.0


DATASETS = "/api/3.0/mlflow/datasets"


class MlflowClient(SpanReads):
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
        self._write_gates: set[asyncio.Future[None]] = set()  # close(): delayed writes now
        self._unwritten: dict[str, list[Any]] = {}

    def __repr__(self) -> str:
        return f"MlflowClient({self.display_uri!r})"

    async def __aenter__(self) -> MlflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for gate in list(self._write_gates):
            open_gate(gate)
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
                # Idle connections are dropped before the server drops them (uvicorn after
                # 5 s, gunicorn after 2 s): a write sent on a connection the server is
                # closing fails as "Server disconnected" and writes are not retried.
                connector=aiohttp.TCPConnector(limit=max(16, self.concurrency * 2),
                                               keepalive_timeout=1.5),
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

    async def set_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Several run tags in one ``runs/log-batch`` call (at most 100; idempotent)."""
        await self._request("POST", "/api/2.0/mlflow/runs/log-batch", body={
            "run_id": run_id, "tags": [{"key": k, "value": v} for k, v in tags.items()]})

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

    # ------------------------------------------------------------------ evaluation datasets

    async def search_datasets(self, experiment_ids: Sequence[str],
                              page_token: str | None = None) -> dict[str, Any]:
        """One page of the experiments' GenAI evaluation datasets (``datasets``,
        ``next_page_token``)."""
        body: dict[str, Any] = {"experiment_ids": list(experiment_ids), "max_results": 1000}
        if page_token:
            body["page_token"] = page_token
        return await self._request("POST", f"{DATASETS}/search", body=body)

    async def create_dataset(self, name: str, experiment_ids: Sequence[str],
                             tags: Mapping[str, str]) -> dict[str, Any]:
        data = await self._request("POST", f"{DATASETS}/create", retry=False, body={
            "name": name, "experiment_ids": list(experiment_ids), "tags": json.dumps(tags)})
        return dict(data.get("dataset") or {})

    async def dataset_records_page(self, dataset_id: str,
                                   page_token: str | None = None) -> dict[str, Any]:
        """One page of a dataset's records (``records`` is a JSON string, as served)."""
        params: dict[str, Any] = {"max_results": 1000}
        if page_token:
            params["page_token"] = page_token
        return await self._request("GET", f"{DATASETS}/{dataset_id}/records", params=params)

    async def upsert_dataset_records(self, dataset_id: str,
                                     records: list[dict[str, Any]]) -> dict[str, Any]:
        """Insert or update records (the server matches them on their inputs); sent once."""
        return await self._request("POST", f"{DATASETS}/{dataset_id}/records", retry=False,
                                   body={"records": json.dumps(records, default=str)})

    async def _artifact_path(self, run_id: str, path: str) -> str:
        root = str((await self.get_run(run_id)).get("info", {}).get("artifact_uri", ""))
        if not root.startswith("mlflow-artifacts:"):
            raise MlflowApiError("UNSUPPORTED", f"run artifacts at {root!r} are not served over "
                                 "REST by this server (only --artifacts-destination proxies "
                                 "them)", 400, "mlflow-artifacts")
        rel = root.split("mlflow-artifacts:", 1)[1].lstrip("/")
        return f"/api/2.0/mlflow-artifacts/artifacts/{rel}/{path}"


def run_with_client(uri: str, fn: Callable[[MlflowClient], Awaitable[int]],
                    **options: Any) -> int:
    """Run ``fn(client)`` on a fresh client (``options`` go to MlflowClient) in a new event
    loop, closing it after."""

    async def go() -> int:
        async with MlflowClient(uri, **options) as client:
            return await fn(client)

    return asyncio.run(go())
