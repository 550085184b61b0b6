"""Seed one big trace (an agent loop of 9-span turns, hex ids) through OTLP, for the big-trace
benchmarks and tests: ``seed_big_trace(uri, experiment_id, n_spans) -> trace id``."""

from __future__ import annotations

import random
import time
from typing import Any

from trace_tui.demo.traffic import any_value, post_otlp


def big_trace_otlp_spans(n_spans: int, trace_hex: str, start_ns: int,
                         seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    spans: list[dict[str, Any]] = []

    def span(name: str, kind: str, parent: str | None, t0: int, dur: int,
             tokens: tuple[int, int] | None = None) -> str:
        span_id = f"{rng.getrandbits(64):016x}"
        attrs: dict[str, Any] = {"mlflow.spanType": kind,
                                 "mlflow.spanInputs": {"query": f"{name} input {len(spans)}"},
                                 "mlflow.spanOutputs": {"result": f"{name} output {len(spans)}"}}
        if tokens:
            attrs["mlflow.chat.tokenUsage"] = {"input_tokens": tokens[0],
                                               "output_tokens": tokens[1],
                                               "total_tokens": sum(tokens)}
            attrs["mlflow.llm.model"] = "gpt-4o-mini"
        if parent is None:
            attrs["mlflow.traceTag.mlflow.traceName"] = name
        raw: dict[str, Any] = {
            "traceId": trace_hex, "spanId": span_id, "name": name, "kind": 1,
            "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + dur),
            "attributes": [{"key": k, "value": any_value(v)} for k, v in attrs.items()],
            "status": {"code": 1}}
        if parent:
            raw["parentSpanId"] = parent
        spans.append(raw)
        return span_id

    turns = max(0, (n_spans - 1) // 9)
    turn_ns = 2_000_000
    root = span("agent_loop", "AGENT", None, start_ns, turns * turn_ns + 1_000_000)
    for k in range(turns):
        t = start_ns + 500_000 + k * turn_ns
        turn = span(f"turn_{k}", "CHAIN", root, t, turn_ns - 10_000)
        span("plan", "CHAT_MODEL", turn, t + 1_000, 600_000,
             (rng.randint(100, 900), rng.randint(10, 300)))
        tool = span("search_tool", "TOOL", turn, t + 610_000, 500_000)
        span("vector_search", "RETRIEVER", tool, t + 620_000, 300_000)
        span("rerank", "RERANKER", tool, t + 930_000, 150_000)
        router = span("router", "CHAT_MODEL", turn, t + 1_120_000, 600_000,
                      (rng.randint(100, 900), rng.randint(10, 300)))
        span("chat_completion", "CHAT_MODEL", router, t + 1_130_000, 550_000,
             (rng.randint(100, 900), rng.randint(10, 300)))
        span("parse", "PARSER", turn, t + 1_730_000, 50_000)
    while len(spans) < n_spans:
        span("memory_write", "MEMORY", root, start_ns + turns * turn_ns, 20_000)
    return spans


def seed_big_trace(uri: str, experiment_id: str, n_spans: int = 10_000,
                   seed: int = 5) -> str:
    """Log one finished trace of ``n_spans`` spans; its MLflow id."""
    trace_hex = f"{random.Random(seed ^ time.time_ns()).getrandbits(128):032x}"
    spans = big_trace_otlp_spans(n_spans, trace_hex, time.time_ns() - 10**9, seed)
    post_otlp(uri, experiment_id, spans, timeout_s=300.0)
    return f"tr-{trace_hex}"


def big_trace_payload(n_spans: int = 10_000, seed: int = 5,
                      trace_hex: str = "5eed" * 8) -> dict[str, Any]:
    """The same trace as the trace-data endpoint returns it (MLflow-native spans: base64 ids,
    JSON-string attribute values), with its trace info: for ``StaticTraceSource`` in the
    in-process profile and tests, no server needed."""
    import base64
    import json

    def b64(hex_id: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_id)).decode()

    def plain(value: dict[str, Any]) -> Any:
        if "kvlist_value" in value:
            return {kv["key"]: plain(kv["value"]) for kv in value["kvlist_value"]["values"]}
        (kind, inner), = value.items()
        return int(inner) if kind == "int_value" else inner

    start_ns = 1_767_268_800 * 10**9
    otlp = big_trace_otlp_spans(n_spans, trace_hex, start_ns, seed)
    spans = [{"trace_id": b64(trace_hex), "span_id": b64(s["spanId"]),
              "parent_span_id": b64(s["parentSpanId"]) if "parentSpanId" in s else None,
              "name": s["name"], "start_time_unix_nano": int(s["startTimeUnixNano"]),
              "end_time_unix_nano": int(s["endTimeUnixNano"]),
              "attributes": {a["key"]: json.dumps(plain(a["value"])) for a in s["attributes"]},
              "status": {"code": "STATUS_CODE_OK", "message": ""}, "events": []}
             for s in otlp]
    duration_s = (spans[0]["end_time_unix_nano"] - start_ns) / 1e9
    info = {"trace_id": f"tr-{trace_hex}", "request_time": "2026-01-01T12:00:00.000Z",
            "execution_duration": f"{duration_s:.3f}s", "state": "OK",
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": "1"}},
            "trace_metadata": {}, "tags": {"mlflow.traceName": "agent_loop"}}
    return {"trace_info": info, "spans": spans}
