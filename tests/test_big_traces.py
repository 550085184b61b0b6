"""Opening traces through the cheapest endpoint, and the span cache, against the real server.
Requests are counted by a local proxy in front of it (tests/counting_proxy.py)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
import sys
import time
from pathlib import Path

from bench.big_trace import seed_big_trace
from tests.conftest import Seeded
from tests.counting_proxy import counting_proxy
from trace_tui.core.client import ARTIFACT_PATH, MlflowClient
from trace_tui.core.span_cache import SpanCache
from trace_tui.demo.traffic import any_value, post_otlp

GET = "/api/3.0/mlflow/traces/get"
BATCH = "/api/3.0/mlflow/traces/batchGet"
INFOS = "/api/3.0/mlflow/traces/batchGetInfos"


def new_cache(tmp_path: Path, warnings: list[str] | None = None) -> SpanCache:
    return SpanCache(tmp_path / "spans", 64 << 20,
                     warn=None if warnings is None else warnings.append)


def summary(tree) -> tuple:  # type: ignore[no-untyped-def]
    return (len(tree.spans), tree.tokens, [s.name for s in tree.walk()][:50],
            sorted(tree.spans))


async def test_open_uses_trace_data_endpoint_then_cache_with_fresh_info(
        fresh_experiment: tuple[str, str], mlflow_uri: str, tmp_path: Path) -> None:
    trace_id = seed_big_trace(mlflow_uri, fresh_experiment[1], 400)
    cache = new_cache(tmp_path)
    async with MlflowClient(mlflow_uri, span_cache=False) as plain:
        reference = summary(await plain.get_trace(trace_id))
    async with counting_proxy(mlflow_uri) as proxy:
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            first = await client.get_trace(trace_id)
        assert proxy.counts[ARTIFACT_PATH] == 1 and proxy.counts[GET] == 0
        assert summary(first) == reference and len(first.spans) == 400
        assert any(s.attributes.get("mlflow.spanInputs") for s in first.walk())
        async with MlflowClient(mlflow_uri) as writer:
            await writer.create_assessment(trace_id, "reviewed", True)
        proxy.reset()
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            again = await client.get_trace(trace_id)
        # spans from the cache, the info (with the new assessment) fresh from the server
        assert proxy.counts[ARTIFACT_PATH] == 0 and proxy.counts[GET] == 0
        assert proxy.counts[f"/api/3.0/mlflow/traces/{trace_id}"] == 1
        assert summary(again) == reference
        assert [a.name for a in again.info.assessments] == ["reviewed"]
        assert cache.hits == 1


async def test_missing_trace_data_endpoint_falls_back_to_traces_get(
        fresh_experiment: tuple[str, str], mlflow_uri: str, tmp_path: Path) -> None:
    ids = [seed_big_trace(mlflow_uri, fresh_experiment[1], 30, seed=s) for s in (1, 2)]
    async with counting_proxy(mlflow_uri) as proxy:
        proxy.blocked.add(ARTIFACT_PATH)
        async with MlflowClient(proxy.uri, span_cache=new_cache(tmp_path)) as client:
            trees = [await client.get_trace(t) for t in ids]
            raw = await client.get_trace_json(ids[0])
        assert [len(t.spans) for t in trees] == [30, 30]
        assert proxy.counts[GET] == 2  # the second trace went straight to traces/get
        assert proxy.counts[ARTIFACT_PATH] == 1
        assert raw["trace_info"]["trace_id"] == ids[0] and len(raw["spans"]) == 30


async def test_in_progress_trace_is_never_cached(
        fresh_experiment: tuple[str, str], mlflow_uri: str, tmp_path: Path) -> None:
    trace_hex = f"{random.getrandbits(128):032x}"
    now = time.time_ns()
    post_otlp(mlflow_uri, fresh_experiment[1], [{  # a child whose root has not ended yet
        "traceId": trace_hex, "spanId": f"{random.getrandbits(64):016x}",
        "parentSpanId": f"{random.getrandbits(64):016x}", "name": "tool", "kind": 1,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000),
        "attributes": [{"key": "mlflow.spanType", "value": any_value("TOOL")}],
        "status": {"code": 1}}])
    trace_id = f"tr-{trace_hex}"
    cache = new_cache(tmp_path)
    async with counting_proxy(mlflow_uri) as proxy:
        for _ in range(2):
            async with MlflowClient(proxy.uri, span_cache=cache) as client:
                tree = await client.get_trace(trace_id)
                assert tree.info.state == "IN_PROGRESS" and len(tree.spans) == 1
                await client.batch_get_traces([trace_id])
        assert proxy.counts[ARTIFACT_PATH] == 2 and proxy.counts[BATCH] == 2
    assert not cache.has(proxy.uri, trace_id)
    assert not cache.root.exists() or not list(cache.root.iterdir())


async def test_corrupt_cache_file_is_discarded_and_the_trace_fetched(
        fresh_experiment: tuple[str, str], mlflow_uri: str, tmp_path: Path) -> None:
    trace_id = seed_big_trace(mlflow_uri, fresh_experiment[1], 50)
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        reference = summary(await client.get_trace(trace_id))
    path = cache.path(client.tracking_uri, trace_id)
    path.write_bytes(path.read_bytes()[:-40])  # a truncated write by something else
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert summary(await client.get_trace(trace_id)) == reference
    assert len(warnings) == 1 and "discarded" in warnings[0]
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert summary(await client.get_trace(trace_id)) == reference
    assert cache.hits == 1 and len(warnings) == 1  # fetched again and re-cached


async def test_second_bulk_fetch_reads_spans_from_the_cache(
        seeded: Seeded, tmp_path: Path) -> None:
    ids = seeded.trace_ids[:120]
    cache = new_cache(tmp_path)
    async with MlflowClient(seeded.uri, span_cache=False) as plain:
        raws = await plain.batch_get_raw(ids[:3])
    async with counting_proxy(seeded.uri) as proxy:
        async with MlflowClient(proxy.uri, span_cache=cache, batch_size=50) as client:
            first = await client.batch_get_traces(ids)
        assert proxy.counts[BATCH] == 3 and proxy.counts[INFOS] == 0
        proxy.reset()
        async with MlflowClient(proxy.uri, span_cache=cache, batch_size=50) as client:
            again = await client.batch_get_traces([*ids, "tr-" + "0" * 32])
            infos = await client.batch_get_trace_infos(ids)
            proxy.reset()
            from_infos = await client.batch_get_traces(infos)
            raws_again = await client.batch_get_raw(ids[:3])
        assert proxy.counts[BATCH] == 0 and proxy.counts[INFOS] == 1  # only raw's infos
    assert [summary(t) for t in again] == [summary(t) for t in first]
    assert [t.trace_id for t in from_infos] == ids
    assert [summary(t) for t in from_infos] == [summary(t) for t in first]
    assert [r["trace_info"]["trace_id"] for r in raws_again] == ids[:3]
    assert [len(r["spans"]) for r in raws_again] == [len(r["spans"]) for r in raws]


async def test_traces_show_reuses_the_cache_and_warns_once_on_a_bad_file(
        fresh_experiment: tuple[str, str], mlflow_uri: str, tmp_path: Path) -> None:
    trace_id = seed_big_trace(mlflow_uri, fresh_experiment[1], 40)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TRACE_TUI_CACHE_DIR", None)

    async def show(uri: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trace_tui", "traces", "show", "--tracking-uri", uri,
            "--format", "json", trace_id, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode or 0, out.decode(), err.decode()

    async with counting_proxy(mlflow_uri) as proxy:
        first = await show(proxy.uri)
        assert first[0] == 0 and proxy.counts[ARTIFACT_PATH] == 1, first[2]
        files = list((tmp_path / "cache" / "trace-tui" / "spans").iterdir())
        assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
        second = await show(proxy.uri)
        assert second[0] == 0 and proxy.counts[ARTIFACT_PATH] == 1  # spans from the cache
        assert json.loads(second[1]) == json.loads(first[1])
        files[0].write_bytes(b"not a cache file")
        third = await show(proxy.uri)
    assert third[0] == 0 and json.loads(third[1]) == json.loads(first[1])
    lines = [line for line in third[2].splitlines() if line.strip()]
    assert len(lines) == 1 and "span cache: discarded" in lines[0], third[2]
    assert "Traceback" not in third[2]
