"""The trace model on hand-written payloads in both encodings MLflow serves."""

from __future__ import annotations

import base64
import json

import pytest

from trace_tui.core.model import (
    TokenUsage,
    TraceDecodeError,
    TraceInfo,
    build_tree,
    decode_id,
    decode_span,
    decode_trace,
)

T0 = 1_795_663_640_000_000_000  # above 2**53: must stay exact


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def usage(i: int, o: int) -> dict:
    return {"kvlist_value": {"values": [
        {"key": "input_tokens", "value": {"int_value": i}},
        {"key": "output_tokens", "value": {"int_value": o}},
        {"key": "total_tokens", "value": {"int_value": i + o}}]}}


def proto_span(sid: str, parent: str | None, name: str, start: int, end: int,
               attrs: dict | None = None, status: str = "STATUS_CODE_OK") -> dict:
    span = {"trace_id": b64("f53a9d69" * 4), "span_id": b64(sid), "name": name,
            "start_time_unix_nano": T0 + start, "end_time_unix_nano": T0 + end,
            "attributes": [{"key": k, "value": v} for k, v in (attrs or {}).items()],
            "status": {"code": status}}
    if parent:
        span["parent_span_id"] = b64(parent)
    return span


INFO = {"trace_id": "tr-" + "f53a9d69" * 4, "request_time": "2026-11-26T03:27:20.748Z",
        "execution_duration": "0.096s", "state": "OK",
        "trace_location": {"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": "7"}},
        "trace_metadata": {"mlflow.trace.tokenUsage": json.dumps(
            {"input_tokens": 107, "output_tokens": 23, "total_tokens": 130}),
            "mlflow.trace.session": "s1", "mlflow.trace.user": "u1"},
        "tags": {"mlflow.traceName": "agent", "route": "search"}}


def sample_payload() -> dict:
    """root -> chat A (100/20) -> chat B (5/5); root -> tool -> chat C (7/3). Server: A + C."""
    spans = [
        proto_span("01" * 8, None, "agent", 0, 96_000_000,
                   {"mlflow.spanType": {"string_value": "AGENT"}}),
        proto_span("02" * 8, "01" * 8, "chat_a", 1_000_000, 40_000_000,
                   {"mlflow.spanType": {"string_value": "CHAT_MODEL"},
                    "mlflow.chat.tokenUsage": usage(100, 20),
                    "mlflow.llm.model": {"string_value": "gpt-4o-mini"}}),
        proto_span("03" * 8, "02" * 8, "chat_b", 2_000_000, 30_000_000,
                   {"mlflow.chat.tokenUsage": usage(5, 5)}),
        proto_span("04" * 8, "01" * 8, "tool", 41_000_000, 90_000_000,
                   {"mlflow.spanType": {"string_value": "TOOL"}}, "STATUS_CODE_ERROR"),
        proto_span("05" * 8, "04" * 8, "chat_c", 42_000_000, 80_000_000,
                   {"mlflow.chat.tokenUsage": usage(7, 3)}),
    ]
    spans[3]["events"] = [{"time_unix_nano": T0 + 90_000_000, "name": "exception",
                           "attributes": [{"key": "exception.message",
                                           "value": {"string_value": "boom"}}]}]
    return {"trace_info": INFO, "spans": spans}


def test_info_fields_decode() -> None:
    info = TraceInfo.from_json(INFO)
    assert info.request_time_ms == 1795663640748
    assert info.duration_ms == pytest.approx(96.0)
    assert (info.name, info.experiment_id, info.session, info.user) == ("agent", "7", "s1", "u1")
    assert info.tokens == TokenUsage(107, 23, 130)


def test_ids_are_hex_and_timestamps_exact() -> None:
    tree = decode_trace(sample_payload())
    root = tree.roots[0]
    assert root.span_id == "01" * 8 and root.parent_id is None
    assert root.start_ns == T0 and tree.start_ns == T0
    assert decode_id("0123456789abcdef") == "0123456789abcdef"


def test_token_rollup_follows_the_server_rule() -> None:
    tree = decode_trace(sample_payload())
    by_name = {s.name: s for s in tree.walk()}
    assert tree.tokens == TokenUsage(107, 23, 130)  # A + C, not A + B + C
    assert by_name["chat_a"].tokens_total == TokenUsage(100, 20, 120)
    assert by_name["tool"].tokens_total == TokenUsage(7, 3, 10)
    assert by_name["tool"].tokens is None
    assert not tree.tokens_mismatch


def test_stored_total_disagreeing_with_spans_is_flagged() -> None:
    payload = sample_payload()
    payload["trace_info"] = {**INFO, "trace_metadata": {"mlflow.trace.tokenUsage": json.dumps(
        {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120})}}
    tree = decode_trace(payload)
    assert tree.tokens_mismatch and tree.tokens == TokenUsage(107, 23, 130)


def test_stored_cost_disagreeing_with_spans_is_flagged() -> None:
    def with_cost(stored: float) -> dict:
        payload = sample_payload()
        for span, cost in ((payload["spans"][1], 0.002), (payload["spans"][2], 0.5),
                           (payload["spans"][4], 0.001)):
            span["attributes"].append({"key": "mlflow.llm.cost", "value": {"string_value":
                                       json.dumps({"total_cost": cost})}})
        payload["trace_info"] = {**INFO, "trace_metadata": {
            "mlflow.trace.cost": json.dumps({"total_cost": stored})}}
        return payload

    agrees = decode_trace(with_cost(0.003))  # chat_b's cost hides under chat_a's: A + C
    assert agrees.cost_usd == pytest.approx(0.003) and not agrees.cost_mismatch
    differs = decode_trace(with_cost(0.0011))
    assert differs.cost_mismatch and differs.info.cost_usd == pytest.approx(0.0011)


def test_offsets_durations_errors_and_critical_path() -> None:
    tree = decode_trace(sample_payload())
    by_name = {s.name: s for s in tree.walk()}
    assert [s.name for s in tree.walk()] == ["agent", "chat_a", "chat_b", "tool", "chat_c"]
    assert by_name["tool"].is_error and by_name["tool"].exceptions[0].attributes == {
        "exception.message": "boom"}
    assert tree.offset_ms(by_name["tool"]) == pytest.approx(41.0)
    assert by_name["chat_a"].duration_ms == pytest.approx(39.0)
    assert by_name["chat_a"].model == "gpt-4o-mini"
    # chat_a (with chat_b inside it) ends before tool starts: the steps are sequential
    assert [tree.spans[i].name for i in tree.critical_path()] == [
        "agent", "chat_a", "chat_b", "tool", "chat_c"]


def test_mlflow_native_encoding_decodes_the_same() -> None:
    native = {"span_id": b64("02" * 8), "parent_span_id": None, "name": "chat",
              "start_time_unix_nano": T0, "end_time_unix_nano": T0 + 5_000_000,
              "attributes": {"mlflow.spanType": '"CHAT_MODEL"',
                             "mlflow.chat.tokenUsage": '{"input_tokens": 62, '
                             '"output_tokens": 199, "total_tokens": 261}',
                             "custom.temperature": "0.2"},
              "status": {"code": "OK", "message": ""}, "events": []}
    span = decode_span(native)
    assert span.span_type == "CHAT_MODEL" and span.tokens == TokenUsage(62, 199, 261)
    assert span.attributes["custom.temperature"] == 0.2 and span.status == "OK"


def test_orphans_hang_at_root_level_and_cycles_cannot_hang() -> None:
    info = TraceInfo.from_json(INFO)
    spans = [decode_span(proto_span("0a" * 8, "ff" * 8, "orphan", 5, 10)),
             decode_span(proto_span("0b" * 8, "0c" * 8, "cyc1", 1, 9)),
             decode_span(proto_span("0c" * 8, "0b" * 8, "cyc2", 2, 8)),
             decode_span(proto_span("0d" * 8, "0d" * 8, "self", 3, 4))]
    tree = build_tree(info, spans)
    assert sorted(s.name for s in tree.walk()) == ["cyc1", "cyc2", "orphan", "self"]
    assert {r.name for r in tree.roots} == {"orphan", "cyc1", "self"}


def test_deep_trees_do_not_recurse() -> None:
    info = TraceInfo.from_json(INFO)
    spans = [decode_span(proto_span(f"{i + 1:016x}", f"{i:016x}" if i else None, f"s{i}", i,
                                    i + 1)) for i in range(5000)]
    tree = build_tree(info, spans)
    assert max(s.depth for s in tree.walk()) == 4999


def test_gen_ai_usage_counts_as_tokens() -> None:
    span = decode_span(proto_span("0e" * 8, None, "llm", 0, 1, {
        "gen_ai.usage.input_tokens": {"int_value": 9},
        "gen_ai.usage.output_tokens": {"int_value": 4}}))
    assert span.tokens == TokenUsage(9, 4, 13)


@pytest.mark.parametrize(("payload", "culprit"), [
    ({"spans": []}, "trace_info"),
    ({"trace_info": INFO, "spans": [{"name": "x"}]}, "has no span_id"),
    ({"trace_info": INFO, "spans": [{"name": "x", "span_id": "???"}]}, "neither base64"),
    ({"trace_info": INFO, "spans": "nope"}, "not a list"),
    ({"trace_info": {**INFO, "request_time": "yesterday"}, "spans": []}, "request_time"),
])
def test_bad_payloads_name_the_culprit(payload: dict, culprit: str) -> None:
    with pytest.raises(TraceDecodeError, match=culprit) as err:
        decode_trace(payload)
    assert "\n" not in str(err.value)


def native_payload(statuses: tuple[str, ...] = ("STATUS_CODE_OK", "ERROR", "OK")) -> dict:
    """A native trace: root -> 3 chats (usage, cost), one with a bad-status error, ids base64
    (the span cache and the trace-data endpoint) and as strings of timestamps."""
    spans = [{"span_id": b64("01" * 8), "parent_span_id": None, "name": "agent",
              "start_time_unix_nano": str(T0), "end_time_unix_nano": T0 + 90_000_000,
              "attributes": {"mlflow.spanType": '"AGENT"',
                             "mlflow.spanInputs": '{"q": "hi"}'},
              "status": {"code": "STATUS_CODE_OK", "message": ""}, "events": []}]
    for k, code in enumerate(statuses):
        attrs = {"mlflow.spanType": '"CHAT_MODEL"', "mlflow.llm.model": '"gpt-4o-mini"',
                 "mlflow.chat.tokenUsage": json.dumps(
                     {"input_tokens": 10 * (k + 1), "output_tokens": k, "total_tokens":
                      11 * (k + 1)}),
                 "mlflow.llm.cost": json.dumps({"total_cost": 0.25 * (k + 1)})}
        spans.append({"span_id": b64(f"{k + 2:02x}" * 8), "parent_span_id": b64("01" * 8),
                      "name": f"chat_{k}", "start_time_unix_nano": T0 + (3 - k) * 1_000_000,
                      "end_time_unix_nano": T0 + (3 - k) * 20_000_000,
                      "attributes": attrs, "status": {"code": code, "message": f"m{k}"}})
    return {"trace_info": INFO, "spans": spans}


def test_native_spans_decode_as_the_general_path_does() -> None:
    """The native fast path (plain dicts) gives the tree the general path gives (the same
    spans as read-only mappings), so a big trace reads the same whichever path it took."""
    from types import MappingProxyType

    payload = native_payload()
    fast = decode_trace(payload)
    slow = decode_trace({"trace_info": INFO, "spans": [
        MappingProxyType(s) for s in payload["spans"]]})

    def seen(tree) -> list[tuple]:  # type: ignore[no-untyped-def]
        return [(s.span_id, s.parent_id, s.name, s.depth, s.start_ns, s.end_ns, s.status,
                 s.status_message, s.span_type, s.model, s.tokens, s.tokens_total,
                 s.cost_usd, s.cost_total, s.attributes, s.inputs) for s in tree.walk()]

    assert seen(fast) == seen(slow)
    assert (fast.tokens, fast.cost_usd, fast.critical_path()) == (
        slow.tokens, slow.cost_usd, slow.critical_path())
    assert fast.tokens == TokenUsage(10, 0, 11) + TokenUsage(20, 1, 22) + TokenUsage(30, 2, 33)
    assert fast.cost_usd == pytest.approx(1.5)
    assert [s.status for s in fast.walk()] == ["OK", "OK", "ERROR", "OK"]
    assert fast.spans["02" * 8].parent_id == "01" * 8


def test_native_span_errors_name_the_culprit() -> None:
    payload = native_payload()
    del payload["spans"][2]["span_id"]
    with pytest.raises(TraceDecodeError, match=r"span #2: span 'chat_1' has no span_id"):
        decode_trace(payload)
    payload = native_payload()
    payload["spans"][1]["end_time_unix_nano"] = "soon"
    with pytest.raises(TraceDecodeError, match="'chat_0': timestamps are not integers"):
        decode_trace(payload)
    payload = native_payload()
    payload["spans"][3]["parent_span_id"] = "not an id!"
    with pytest.raises(TraceDecodeError, match="neither base64 nor hex"):
        decode_trace(payload)
