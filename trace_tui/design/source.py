"""A design window from an MLflow experiment: recent finished traces and their verdicts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from trace_tui.core.client import MlflowClient
from trace_tui.core.model import TraceInfo
from trace_tui.evaluation.records import record_from_info

from .window import DEFAULT_CAP, DesignWindow, WindowBuilder

FINISHED = "trace.status IN ('OK', 'ERROR')"
SPAN_FETCH_LIMIT = 2_000  # span types and models need the trees: only for small windows


def verdicts_of(info: TraceInfo) -> dict[str, Any]:
    """judge name -> value of the trace's feedback assessments (the latest per name)."""
    out: dict[str, Any] = {}
    for a in info.assessments:
        if a.error is None and a.valid and a.value is not None:
            out[a.name] = a.value
    return out


async def fetch_window(client: MlflowClient, experiment_ids: Sequence[str], since_s: float,
                       *, filter_string: str | None = None, cap: int = DEFAULT_CAP,
                       spans: bool | None = None) -> DesignWindow:
    """The finished traces of the last `since_s` seconds (uniformly subsampled to `cap`)."""
    since_ms = int((time.time() - since_s) * 1000)
    parts = [FINISHED, f"trace.timestamp_ms >= {since_ms}"]
    if filter_string:
        parts.append(filter_string)
    infos = await client.search_traces(list(experiment_ids), filter_string=" AND ".join(parts))
    infos.sort(key=lambda i: (i.request_time_ms, i.trace_id))
    trees: dict[str, Any] = {}
    if spans if spans is not None else len(infos) <= SPAN_FETCH_LIMIT:
        trees = {t.trace_id: t for t in await client.batch_get_traces(
            [i.trace_id for i in infos])}
    builder = WindowBuilder(cap=cap)
    for info in infos:
        builder.add(record_from_info(info, trees.get(info.trace_id)), verdicts_of(info))
    return builder.build()
