"""Where the explorer's traces come from: the ``TraceSource`` protocol, met by
``MlflowClient`` (a server, live) and by ``StaticTraceSource`` (frozen fixtures, benchmarks).

No aiohttp here: ``Experiment`` comes from the client module only when a static source is
built (tests, benchmarks), so the explorer's start path stays light.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from trace_tui.core.errors import MlflowApiError
from trace_tui.core.model import Assessment, TraceInfo, TraceTree, decode_trace

if TYPE_CHECKING:
    from trace_tui.core.client import Experiment


class TraceSource(Protocol):
    """What the explorer reads and writes. ``supports_live`` (optional attribute, default
    True) says whether the list may follow new traces with a ``LiveStream``."""

    tracking_uri: str

    async def close(self) -> None: ...

    async def resolve_experiment(self, name_or_id: str | None) -> Experiment: ...

    async def search_experiments(self, filter_string: str | None = None
                                 ) -> list[Experiment]: ...

    def iter_trace_pages(self, experiment_ids: Sequence[str], *,
                         filter_string: str | None = None,
                         order_by: Sequence[str] | None = None,
                         max_results: int | None = None,
                         page_size: int = 500) -> AsyncIterator[list[TraceInfo]]: ...

    async def search_traces(self, experiment_ids: Sequence[str], *,
                            filter_string: str | None = None,
                            order_by: Sequence[str] | None = None,
                            max_results: int | None = None) -> list[TraceInfo]: ...

    async def get_trace_json(self, trace_id: str) -> dict[str, Any]: ...

    async def get_trace_and_json(self, trace_id: str
                                 ) -> tuple[TraceTree, dict[str, Any] | None]: ...

    async def create_assessment(self, trace_id: str, name: str, value: Any, *,
                                source_type: str = "HUMAN", source_id: str = "trace-tui",
                                rationale: str | None = None,
                                span_id: str | None = None) -> Assessment: ...


def supports_live(source: TraceSource) -> bool:
    return bool(getattr(source, "supports_live", True))


class StaticTraceSource:
    """An in-memory stand-in for ``MlflowClient`` (frozen fixtures, benchmarks).

    Serves the given trace payloads (``{"trace_info": ..., "spans": [...]}``) and/or bare
    TraceInfos. Filters: ``trace.status = 'X'``, ``trace.execution_time_ms > N``,
    ``trace.name = 'X'``, ``metadata.`k` = 'v'`` and ``tags.`k` = 'v'`` (AND);
    anything else is rejected like the server does. Feedback is kept in memory.
    """

    supports_live = False

    def __init__(self, payloads: Iterable[Mapping[str, Any]] = (), *,
                 infos: Iterable[TraceInfo] = (), experiment_name: str = "frozen",
                 experiment_id: str = "1", tracking_uri: str = "static://") -> None:
        from trace_tui.core.client import Experiment

        self.tracking_uri = tracking_uri
        self.experiment = Experiment(experiment_id, experiment_name)
        self.raw: dict[str, dict[str, Any]] = {}
        by_id: dict[str, TraceInfo] = {}
        for payload in payloads:
            info = TraceInfo.from_json(payload["trace_info"])
            self.raw[info.trace_id] = dict(payload)
            by_id[info.trace_id] = info
        for info in infos:
            by_id[info.trace_id] = info
        self.infos = sorted(by_id.values(), key=lambda i: i.request_time_ms, reverse=True)
        self._assessments = 0

    @classmethod
    def from_files(cls, paths: Iterable[Path | str], **kwargs: Any) -> StaticTraceSource:
        return cls([json.loads(Path(p).read_text()) for p in paths], **kwargs)

    async def close(self) -> None:
        return None

    async def resolve_experiment(self, name_or_id: str | None) -> Experiment:
        return self.experiment

    async def search_experiments(self, filter_string: str | None = None) -> list[Experiment]:
        return [self.experiment]

    def _match(self, filter_string: str | None) -> Callable[[TraceInfo], bool]:
        tests: list[Callable[[TraceInfo], bool]] = []
        for clause in filter(None, (c.strip() for c in
                                    re.split(r"\s+AND\s+", filter_string or "", flags=re.I))):
            if m := re.fullmatch(r"trace\.status\s*=\s*'(\w+)'", clause):
                tests.append(_state_is(m[1]))
            elif m := re.fullmatch(r"trace\.execution_time_ms\s*>\s*([\d.]+)", clause):
                tests.append(_slower_than(float(m[1])))
            elif m := re.fullmatch(r"trace\.timestamp_ms\s*>=\s*(\d+)", clause):
                tests.append(_since(int(m[1])))
            elif m := re.fullmatch(r"(metadata|tags)\.`?([\w.]+)`?\s*=\s*'([^']*)'", clause):
                tests.append(_field_is(m[1], m[2], m[3]))
            elif m := re.fullmatch(r"trace\.name\s*=\s*'([^']*)'", clause):
                tests.append(_field_is("tags", "mlflow.traceName", m[1]))
            else:
                raise MlflowApiError("INVALID_PARAMETER_VALUE",
                                     f"Invalid clause(s) in filter string: {clause!r}",
                                     400, "traces/search")
        return lambda info: all(t(info) for t in tests)

    async def iter_trace_pages(self, experiment_ids: Sequence[str], *,
                               filter_string: str | None = None,
                               order_by: Sequence[str] | None = None,
                               max_results: int | None = None,
                               page_size: int = 500) -> AsyncIterator[list[TraceInfo]]:
        match = self._match(filter_string)
        rows = [i for i in self.infos if match(i)]
        if order_by and "ASC" in order_by[0]:
            rows.reverse()
        if max_results is not None:
            rows = rows[:max_results]
        for start in range(0, len(rows), page_size):
            yield rows[start:start + page_size]

    async def search_traces(self, experiment_ids: Sequence[str], *,
                            filter_string: str | None = None,
                            order_by: Sequence[str] | None = None,
                            max_results: int | None = None) -> list[TraceInfo]:
        pages = self.iter_trace_pages(experiment_ids, filter_string=filter_string,
                                      order_by=order_by, max_results=max_results)
        return [i async for page in pages for i in page]

    async def get_trace_json(self, trace_id: str) -> dict[str, Any]:
        if trace_id not in self.raw:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST",
                                 f"Trace with ID '{trace_id}' not found.", 404, "traces/get")
        return self.raw[trace_id]

    async def get_trace(self, trace_id: str) -> TraceTree:
        return decode_trace(await self.get_trace_json(trace_id))

    async def get_trace_and_json(self, trace_id: str
                                 ) -> tuple[TraceTree, dict[str, Any] | None]:
        from trace_tui.core.spans import decode_off_loop  # the client's rule: big ones threaded

        raw = await self.get_trace_json(trace_id)
        return await decode_off_loop(raw), raw

    async def get_trace_info(self, trace_id: str) -> TraceInfo:
        for info in self.infos:
            if info.trace_id == trace_id:
                return info
        raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Trace with ID '{trace_id}' not found.",
                             404, "traces/get")

    async def create_assessment(self, trace_id: str, name: str, value: Any, *,
                                source_type: str = "HUMAN", source_id: str = "trace-tui",
                                rationale: str | None = None, span_id: str | None = None,
                                **_: Any) -> Assessment:
        self._assessments += 1
        return Assessment(assessment_id=f"a-static-{self._assessments}", name=name,
                          source_type=source_type, source_id=source_id, value=value,
                          rationale=rationale or "", span_id=span_id)


def _state_is(state: str) -> Callable[[TraceInfo], bool]:
    return lambda info: info.state == state


def _slower_than(ms: float) -> Callable[[TraceInfo], bool]:
    return lambda info: (info.duration_ms or 0) > ms


def _since(ms: int) -> Callable[[TraceInfo], bool]:
    return lambda info: info.request_time_ms >= ms


def _field_is(kind: str, key: str, value: str) -> Callable[[TraceInfo], bool]:
    if kind == "tags":
        return lambda info: info.tags.get(key) == value
    return lambda info: info.metadata.get(key) == value

