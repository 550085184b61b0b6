"""The span cache's file format 2 (msgpack of the raw spans + decoded rows) against the real
server: a cached re-open gives the uncached tree span for span, format 1 files still read
(and are rewritten), bad format-2 files are dropped with one warning and never run code."""

from __future__ import annotations

import json
import pickle
import random
import time
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.counting_proxy import counting_proxy
from trace_tui.core.client import ARTIFACT_PATH, MlflowClient
from trace_tui.core.model import TraceTree
from trace_tui.core.span_cache import MAGIC, MAGIC_V1, Row, SpanCache, spans_body
from trace_tui.demo.traffic import any_value, post_otlp

GET = "/api/3.0/mlflow/traces/get"
BATCH = "/api/3.0/mlflow/traces/batchGet"


def seed_rich_trace(uri: str, experiment_id: str) -> str:
    """A finished trace with what a span can carry: inputs/outputs, token usage, a cost, an
    error status with a message and an exception event, a non-ASCII name, 40 spans."""
    trace_hex = f"{random.getrandbits(128):032x}"
    t0 = time.time_ns() - 10**9
    ids = [f"{random.getrandbits(64):016x}" for _ in range(40)]
    spans = []
    for i, span_id in enumerate(ids):
        attrs: dict[str, Any] = {"mlflow.spanType": "LLM" if i % 3 else "TOOL",
                                 "mlflow.spanInputs": {"q": f"question {i} ✓", "n": i},
                                 "mlflow.spanOutputs": {"a": [i, "answer"]}}
        if i % 3:
            attrs["mlflow.chat.tokenUsage"] = {"input_tokens": 10 * i, "output_tokens": i,
                                               "total_tokens": 11 * i}
        if i == 4:
            attrs["mlflow.llm.cost"] = {"input_cost": 0.25, "output_cost": 0.5,
                                        "total_cost": 0.75}
        raw: dict[str, Any] = {
            "traceId": trace_hex, "spanId": span_id, "name": f"step-{i} é", "kind": 1,
            "startTimeUnixNano": str(t0 + i * 1000), "endTimeUnixNano": str(t0 + 10**8 - i),
            "attributes": [{"key": k, "value": any_value(v)} for k, v in attrs.items()],
            "status": {"code": 1}}
        if i:
            raw["parentSpanId"] = ids[(i - 1) // 3]
        if i == 7:
            raw["status"] = {"code": 2, "message": "tool failed"}
            raw["events"] = [{"timeUnixNano": str(t0 + 5000), "name": "exception",
                              "attributes": [{"key": "exception.message",
                                              "value": any_value("boom")}]}]
        spans.append(raw)
    post_otlp(uri, experiment_id, spans)
    return f"tr-{trace_hex}"


def spans_of_tree(tree: TraceTree) -> list[tuple[Any, ...]]:
    return [(s.span_id, s.parent_id, s.name, s.depth, s.start_ns, s.end_ns, s.status,
             s.status_message, s.span_type, s.attributes, s.inputs, s.outputs, s.tokens,
             s.tokens_total, s.cost_usd, s.cost_total, s.model,
             [(e.name, e.time_ns, e.attributes) for e in s.events],
             [c.span_id for c in s.children]) for s in tree.walk()]


def whole(tree: TraceTree) -> tuple[Any, ...]:
    return (tree.info, tree.start_ns, tree.end_ns, tree.tokens, tree.cost_usd,
            tree.duration_ms, spans_of_tree(tree))


def new_cache(tmp_path: Path, warnings: list[str]) -> SpanCache:
    return SpanCache(tmp_path / "spans", 64 << 20, warn=warnings.append)


@pytest.fixture
def rich(fresh_experiment: tuple[str, str], mlflow_uri: str) -> str:
    return seed_rich_trace(mlflow_uri, fresh_experiment[1])


async def test_cached_reopen_equals_the_uncached_tree_span_for_span(
        rich: str, mlflow_uri: str, tmp_path: Path) -> None:
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=False) as plain:
        reference = await plain.get_trace(rich)
        reference_json = await plain.get_trace_json(rich)
        batch_reference = (await plain.batch_get_traces([rich]))[0]
    assert len(reference.spans) == 40 and reference.tokens.total > 0
    assert reference.spans[spans_of_tree(reference)[0][0]].name == "step-0 é"
    assert any(s.events and s.status == "ERROR" for s in reference.walk())
    assert any(s.cost_usd == 0.75 for s in reference.walk())
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        first = await client.get_trace(rich)  # fetched, then written with its rows
    cached = cache.get(mlflow_uri, rich)
    assert cached is not None and cached.format == 2 and cached.rows is not None
    assert cached.walk is not None
    assert len(cached.rows) == 40
    async with counting_proxy(mlflow_uri) as proxy:
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            cache_uri_tree = await client.get_trace(rich)  # another server URL: a miss
        proxy.reset()
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        again, again_json = await client.get_trace_and_json(rich)
        raw_again = await client.get_trace_json(rich)
        batch_again = (await client.batch_get_traces([rich]))[0]
    assert whole(first) == whole(reference) == whole(cache_uri_tree)
    assert whole(again) == whole(reference)  # from the rows: no JSON, no decode
    assert again_json is None  # the raw spans were not even decoded
    assert raw_again == reference_json  # the server's spans, as it sent them
    assert whole(batch_again) == whole(reference)
    assert whole(batch_reference) == whole(reference)
    assert warnings == []


async def test_bulk_spans_cached_without_rows_still_round_trip(
        rich: str, mlflow_uri: str, tmp_path: Path) -> None:
    """batchGet's OTLP-encoded spans are cached as they came (no rows); a re-open decodes
    them, equal to the uncached tree, and rewrites the file with rows."""
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=False) as plain:
        reference = await plain.get_trace(rich)
        raw = (await plain.batch_get_raw([rich]))[0]
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        await client.batch_get_raw([rich])
    cached = cache.get(mlflow_uri, rich)
    assert cached is not None and cached.rows is None and cached.spans == raw["spans"]
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert whole(await client.get_trace(rich)) == whole(reference)
    cached = cache.get(mlflow_uri, rich)
    assert cached is not None and cached.rows is not None and cached.spans == raw["spans"]
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert whole(await client.get_trace(rich)) == whole(reference)
    assert warnings == []


def write_format_1(cache: SpanCache, server: str, trace_id: str, spans: list[Any]) -> Path:
    """A file as the format-1 cache wrote it."""
    path = cache.path(server, trace_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"server": server, "trace_id": trace_id}).encode()
    path.write_bytes(MAGIC_V1 + header + b"\n" + zlib.compress(spans_body(spans), 1))
    return path


async def test_format_1_file_is_read_then_rewritten_as_format_2(
        rich: str, mlflow_uri: str, tmp_path: Path) -> None:
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=False) as plain:
        reference = await plain.get_trace(rich)
        reference_json = await plain.get_trace_json(rich)
    async with counting_proxy(mlflow_uri) as proxy:
        path = write_format_1(cache, proxy.uri, rich, reference_json["spans"])
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            tree, raw = await client.get_trace_and_json(rich)
        assert proxy.counts[ARTIFACT_PATH] == 0 and proxy.counts[GET] == 0  # from the file
        assert whole(tree) == whole(reference) and raw == reference_json
        assert path.read_bytes().startswith(MAGIC)  # rewritten as format 2, with rows
        cached = cache.get(proxy.uri, rich)
        assert cached is not None and cached.rows is not None
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            assert whole(await client.get_trace(rich)) == whole(reference)
        assert proxy.counts[ARTIFACT_PATH] == 0 and proxy.counts[GET] == 0
    assert warnings == []


async def test_tree_kept_under_other_rules_is_rebuilt_from_its_spans(
        rich: str, mlflow_uri: str, tmp_path: Path) -> None:
    """A file whose tree was built by other model rules (``TREE_RULES``) is not a bad file:
    its spans are decoded again, without a warning or a fetch, and the file rewritten."""
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        reference = await client.get_trace(rich)
    path = cache.path(mlflow_uri, rich)
    path.write_bytes(path.read_bytes().replace(b'"tree": 1', b'"tree": 0', 1))
    cached = cache.get(mlflow_uri, rich)
    assert cached is not None and cached.rows is None and cached.walk is None
    async with counting_proxy(mlflow_uri) as proxy:
        proxy_path = cache.path(proxy.uri, rich)
        proxy_path.write_bytes(path.read_bytes().replace(
            json.dumps(mlflow_uri).encode(), json.dumps(proxy.uri).encode(), 1))
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            assert whole(await client.get_trace(rich)) == whole(reference)
        assert proxy.counts[ARTIFACT_PATH] == 0 and proxy.counts[GET] == 0
    assert b'"tree": 1' in proxy_path.read_bytes()
    cached = cache.get(proxy.uri, rich)
    assert cached is not None and cached.walk is not None
    assert warnings == []


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path("/tmp/trace-tui-cache-ran-code"),))


def damaged(good: bytes, damage: str) -> bytes:
    end = good.index(b"\n", len(MAGIC))
    header = good[:end + 1]
    row = Row("ab" * 8, None, "x", 1, 2, "OK", "", None, None, (0, 0, 0), 0.0, [])
    two = [{"name": "x"}, {"name": "y"}]
    rows = [row, msgspec.structs.replace(row, span_id="cd" * 8)]
    body = {
        "truncated": good[:len(good) - 60],
        "garbage_body": header + zlib.compress(b"\xc1\xc1 not msgpack"),
        "wrong_types": header + zlib.compress(msgspec.msgpack.encode([[{"a": 1}], [["x"]]])),
        "attributes_missing": header + zlib.compress(
            msgspec.msgpack.encode([two, rows, [[0, 0], [1, 1]], [{}]])),
        "walk_with_a_loop": header + zlib.compress(  # row 0 twice: a cycle if linked
            msgspec.msgpack.encode([two, rows, [[0, 0], [0, 1]], [{}, {}]])),
        "walk_skipping_a_depth": header + zlib.compress(
            msgspec.msgpack.encode([two, rows, [[0, 0], [1, 2]], [{}, {}]])),
        "future_format": good.replace(b'"format": 2', b'"format": 3', 1),
        "pickle": header + zlib.compress(pickle.dumps(Evil())),
        "bare_pickle": pickle.dumps(Evil()),
    }
    return body[damage]


@pytest.mark.parametrize("damage", ["truncated", "garbage_body", "wrong_types",
                                    "attributes_missing", "walk_with_a_loop",
                                    "walk_skipping_a_depth", "future_format", "pickle",
                                    "bare_pickle"])
async def test_bad_format_2_file_is_discarded_with_one_warning_and_fetched(
        rich: str, mlflow_uri: str, tmp_path: Path, damage: str) -> None:
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        reference = await client.get_trace(rich)
    path = cache.path(mlflow_uri, rich)
    path.write_bytes(damaged(path.read_bytes(), damage))
    Path("/tmp/trace-tui-cache-ran-code").unlink(missing_ok=True)
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert whole(await client.get_trace(rich)) == whole(reference)  # fetched instead
    assert len(warnings) == 1 and "discarded" in warnings[0] and str(path) in warnings[0]
    assert "\n" not in warnings[0]
    assert not Path("/tmp/trace-tui-cache-ran-code").exists()  # data only, never code
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert whole(await client.get_trace(rich)) == whole(reference)
    assert cache.hits == 1 and len(warnings) == 1  # re-cached by the fetch


async def test_foreign_file_is_discarded(rich: str, mlflow_uri: str, tmp_path: Path) -> None:
    """A format-2 file of another trace (or server) under this trace's name."""
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        reference = await client.get_trace(rich)
    cache.put(mlflow_uri, "tr-" + "0" * 32, [{"name": "other"}])
    cache.path(mlflow_uri, rich).write_bytes(
        cache.path(mlflow_uri, "tr-" + "0" * 32).read_bytes())
    async with MlflowClient(mlflow_uri, span_cache=cache) as client:
        assert whole(await client.get_trace(rich)) == whole(reference)
    assert len(warnings) == 1 and "discarded" in warnings[0]


async def test_reads_while_the_write_waits_use_the_spans_in_memory(
        rich: str, mlflow_uri: str, tmp_path: Path) -> None:
    """A tree's cache write waits (so it does not slow that tree's paint); reading the
    trace again meanwhile fetches nothing, and close() lets the write land."""
    warnings: list[str] = []
    cache = new_cache(tmp_path, warnings)
    async with counting_proxy(mlflow_uri) as proxy:
        async with MlflowClient(proxy.uri, span_cache=cache) as client:
            first = await client.get_trace(rich)
            again, raw = await client.get_trace_and_json(rich)
            raw_again = await client.get_trace_json(rich)
        assert proxy.counts[ARTIFACT_PATH] == 1 and proxy.counts[GET] == 0
        assert proxy.counts[f"/api/3.0/mlflow/traces/{rich}"] == 3  # the info, fresh each time
        cached = cache.get(proxy.uri, rich)
    assert cached is not None and cached.walk is not None  # written by close()
    assert whole(again) == whole(first)
    assert raw is not None and raw == raw_again and len(raw["spans"]) == 40
    assert warnings == []
