"""MLflow GenAI evaluation datasets from traces, over the server's REST API (no mlflow import).

MLflow 3.x serves them at ``/api/3.0/mlflow/datasets/...`` (create, search, ``{id}/records``
upsert and read): the same store ``mlflow.genai.datasets`` reads, so a dataset written here shows
in the MLflow UI and ``mlflow.genai.evaluate(data=get_dataset(...))`` accepts it.

A record: ``inputs`` = the trace's root span inputs (a dict; other values as ``{"request": v}``),
``outputs`` = its root outputs, ``expectations`` = the human labels (``{judge: value}``, the
latest per judge), ``source`` = the trace (``TRACE``, ``trace_id``). The server deduplicates
records by their inputs, so re-adding a trace updates its record; records whose source is the
same trace are looked up first, so a trace's record is updated even if its inputs were edited.
A trace whose inputs equal those of another trace's record (the same question asked twice) is
not added: the server would merge it into that record, overwriting the other trace's outputs
and expectations. Those traces are listed in ``DatasetResult.same_inputs``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trace_tui.core.client import MlflowClient
from trace_tui.core.model import TraceInfo
from trace_tui.evaluation import labels


@dataclass
class DatasetResult:
    dataset_id: str
    name: str
    created: bool
    inserted: int = 0
    updated: int = 0
    same_inputs: list[str] = field(default_factory=list)  # traces not added, see add_traces


async def find_dataset(client: MlflowClient, name: str,
                       experiment_ids: Sequence[str]) -> dict[str, Any] | None:
    """The dataset named ``name`` among those of the experiments, or None."""
    token = None
    while True:
        data = await client.search_datasets(experiment_ids, token)
        for d in data.get("datasets") or []:
            if d.get("name") == name:
                return dict(d)
        token = data.get("next_page_token")
        if not token:
            return None


async def ensure_dataset(client: MlflowClient, name: str,
                         experiment_ids: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """(dataset, created): the named dataset of the experiments, created if missing."""
    found = await find_dataset(client, name, experiment_ids)
    if found is not None:
        return found, False
    created = await client.create_dataset(name, experiment_ids,
                                          {"trace_tui.created_by": "trace-tui"})
    return created, True


async def dataset_records(client: MlflowClient, dataset_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = None
    while True:
        data = await client.dataset_records_page(dataset_id, token)
        out += json.loads(data.get("records") or "[]")
        token = data.get("next_page_token")
        if not token:
            return out


def _as_dict(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return {} if value is None else {key: value}


def expectations_of(info: TraceInfo, judges: Sequence[str] | None = None) -> dict[str, Any]:
    """Human labels as expectations, ``{judge: value}`` (the newest label per judge)."""
    out: dict[str, Any] = {}
    names = judges or sorted({a.name for a in info.assessments if a.source_type == labels.HUMAN
                              and a.name != "user_feedback"})
    for name in names:
        found = sorted(labels.human_labels(info, name), key=lambda a: a.create_time)
        if found:
            out[name] = found[-1].value
    return out


def _key(inputs: Any) -> str:
    """What the server deduplicates records on (sha256 of this JSON)."""
    return json.dumps(inputs if inputs is not None else {}, sort_keys=True, default=str)


def _source_trace(record: Mapping[str, Any]) -> str | None:
    source = record.get("source") or {}
    data = source.get("source_data") if isinstance(source, Mapping) else None
    return str(data.get("trace_id")) if isinstance(data, Mapping) and data.get("trace_id") \
        else None


async def add_traces(client: MlflowClient, name: str, experiment_ids: Sequence[str],
                     trace_ids: Sequence[str],
                     judges: Sequence[str] | None = None) -> DatasetResult:
    """Create or extend the dataset with one record per trace (upsert by source trace)."""
    dataset, created = await ensure_dataset(client, name, experiment_ids)
    dataset_id = str(dataset.get("dataset_id", ""))
    result = DatasetResult(dataset_id, name, created)
    if not trace_ids:
        return result
    existing: dict[str, dict[str, Any]] = {}
    owner: dict[str, str | None] = {}  # inputs key -> source trace of the record holding them
    if not created:
        for rec in await dataset_records(client, dataset_id):
            tid = _source_trace(rec)
            owner[_key(rec.get("inputs"))] = tid
            if tid:
                existing[tid] = rec
    infos = {i.trace_id: i for i in await client.batch_get_trace_infos(list(trace_ids))}
    trees = {t.trace_id: t for t in await client.batch_get_traces(list(infos))}
    records = []
    for tid in trace_ids:
        info, tree = infos.get(tid), trees.get(tid)
        if info is None or tree is None or not tree.roots:
            continue
        root = tree.roots[0]
        old = existing.get(tid)
        # keep the inputs of the trace's existing record: the server matches on them
        inputs = dict(old["inputs"]) if old and isinstance(old.get("inputs"), dict) \
            else _as_dict(root.inputs, "request")
        if owner.setdefault(_key(inputs), tid) != tid:
            result.same_inputs.append(tid)
            continue
        records.append({"inputs": inputs, "outputs": _as_dict(root.outputs, "response"),
                        "expectations": expectations_of(info, judges),
                        "source": {"source_type": "TRACE", "source_data": {"trace_id": tid}},
                        "tags": {"trace_tui.trace_id": tid}})
    if records:
        data = await client.upsert_dataset_records(dataset_id, records)
        result.inserted = int(data.get("inserted_count") or 0)
        result.updated = int(data.get("updated_count") or 0)
    return result
