"""Real MLflow judges (make_judge, built-in scorers) against the fake judge on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import time

import pytest

from trace_tui.demo.fake_judge import FORCE_FAIL_MARKER, FORCE_PASS_MARKER, run_in_thread
from trace_tui.judging import (
    JudgeConfigError,
    JudgeSpec,
    JudgeVerdict,
    arun_judge,
    build_judge,
    judge_spec_of,
    run_judge,
    trace_from_rest_json,
)

# trace_tui.judging imports mlflow lazily, so this still runs before mlflow is imported.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")  # no github.com lookups from tests

MODEL = "openai:/gpt-4o-mini"
SECRET = "sk-trace-tui-test-0123456789abcdef"
KEY_ENV = "TRACE_TUI_TEST_JUDGE_KEY"
T0 = 1795663640847962268
TRACE_ID = bytes(range(16))
ROOT, RETRIEVER, LLM = b"\x01" * 8, b"\x02" * 8, b"\x03" * 8


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _str(v: str) -> dict:
    return {"string_value": v}


def _kv(d: dict) -> dict:
    return {"kvlist_value": {"values": [
        {"key": k, "value": _str(v) if isinstance(v, str) else v} for k, v in d.items()
    ]}}


def rest_trace(answer: str, *, int64_as_str: bool = False, wrap: bool = True) -> dict:
    """A ``GET /api/3.0/mlflow/traces/get`` body, shaped like real server output (§2-3)."""

    def ns(v: int):
        return str(v) if int64_as_str else v

    tid = _b64(TRACE_ID)
    item = {
        "trace_info": {
            "trace_id": "tr-" + TRACE_ID.hex(),
            "client_request_id": "req-0",
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": "1"}},
            "request_time": "2026-11-26T03:27:20.748Z",
            "execution_duration": "0.096s",
            "state": "OK",
            "trace_metadata": {"mlflow.trace.session": "sess-0", "mlflow.trace.user": "user-0"},
            "tags": {"mlflow.traceName": "agent", "env": "demo"},
            "request_preview": "{\"question\": \"What is the capital of France?\"}",
            "some_future_field": 1,  # unknown fields are ignored
        },
        "spans": [
            {"trace_id": tid, "span_id": _b64(ROOT), "name": "agent",
             "start_time_unix_nano": ns(T0), "end_time_unix_nano": ns(T0 + 96_000_000),
             "attributes": [
                 {"key": "mlflow.spanType", "value": _str("AGENT")},
                 {"key": "mlflow.spanInputs",
                  "value": _kv({"question": "What is the capital of France?"})},
                 {"key": "mlflow.spanOutputs", "value": _kv({"answer": answer})},
             ],
             "status": {"code": "STATUS_CODE_OK"}},
            {"trace_id": tid, "span_id": _b64(RETRIEVER), "parent_span_id": _b64(ROOT),
             "name": "retrieve", "start_time_unix_nano": ns(T0 + 1_000),
             "end_time_unix_nano": ns(T0 + 2_000_000),
             "attributes": [
                 {"key": "mlflow.spanType", "value": _str("RETRIEVER")},
                 {"key": "mlflow.spanOutputs", "value": {"array_value": {"values": [
                     _kv({"page_content": "Paris is the capital of France.",
                          "metadata": _kv({"doc_uri": "kb://1"})}),
                 ]}}},
             ],
             "status": {"code": "STATUS_CODE_OK"}},
            {"trace_id": tid, "span_id": _b64(LLM), "parent_span_id": _b64(ROOT),
             "name": "chat_completion", "start_time_unix_nano": ns(T0 + 3_000_000),
             "end_time_unix_nano": ns(T0 + 90_000_000),
             "attributes": [
                 {"key": "mlflow.spanType", "value": _str("CHAT_MODEL")},
                 {"key": "mlflow.chat.tokenUsage", "value": _kv({
                     "input_tokens": {"int_value": 62}, "output_tokens": {"int_value": 9},
                     "total_tokens": {"int_value": 71}})},
                 {"key": "custom.temperature", "value": {"double_value": 0.2}},
             ],
             "status": {"code": "STATUS_CODE_ERROR", "message": "RuntimeError: flaky"},
             "events": [{"time_unix_nano": ns(T0 + 5_000_000), "name": "exception",
                         "attributes": [{"key": "exception.message", "value": _str("flaky")}]}]},
        ],
    }
    return {"trace": item} if wrap else item


@pytest.fixture(scope="module")
def fake():
    base_url, stop = run_in_thread()
    yield base_url, stop.server
    stop()


@pytest.fixture(scope="module")
def failing():
    base_url, stop = run_in_thread(failure_rate=1.0)
    yield base_url, stop.server
    stop()


@pytest.fixture(scope="module")
def pass_trace():
    return trace_from_rest_json(rest_trace(f"Paris is the capital of France. {FORCE_PASS_MARKER}"))


@pytest.fixture(scope="module")
def fail_trace():
    return trace_from_rest_json(rest_trace(f"Lyon, probably. {FORCE_FAIL_MARKER}"))


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return KEY_ENV


def spec(name: str, scorer: str, base_url: str, **options) -> JudgeSpec:
    return JudgeSpec.from_decl(name, scorer, {"model": MODEL, "base_url": base_url, **options})


# --------------------------------------------------------------------------- REST JSON -> Trace


def test_trace_from_rest_json_decodes_info_and_spans(pass_trace) -> None:
    trace = pass_trace
    assert trace.info.trace_id == "tr-" + TRACE_ID.hex()
    assert trace.info.state.value == "OK"
    assert trace.info.execution_duration == 96
    assert trace.info.request_time == 1795663640748
    assert trace.info.trace_metadata["mlflow.trace.session"] == "sess-0"
    assert trace.info.tags["env"] == "demo"
    spans = {s.name: s for s in trace.data.spans}
    root = spans["agent"]
    assert root.parent_id is None
    assert root.span_id == ROOT.hex()
    assert root.span_type == "AGENT"
    assert root.inputs == {"question": "What is the capital of France?"}
    assert root.outputs["answer"].startswith("Paris")
    assert spans["retrieve"].parent_id == ROOT.hex()
    assert spans["retrieve"].outputs[0]["metadata"] == {"doc_uri": "kb://1"}
    llm = spans["chat_completion"]
    assert llm.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 62, "output_tokens": 9, "total_tokens": 71}
    assert llm.get_attribute("custom.temperature") == 0.2
    assert llm.status.status_code.value == "ERROR"
    assert llm.events[0].name == "exception"
    assert root.start_time_ns == T0


def test_trace_from_rest_json_accepts_batchget_items_and_string_int64() -> None:
    a = trace_from_rest_json(rest_trace("x", int64_as_str=True, wrap=False))
    b = trace_from_rest_json(rest_trace("x"))
    assert [s.to_dict() for s in a.data.spans] == [s.to_dict() for s in b.data.spans]


def test_trace_from_rest_json_accepts_native_dicts(pass_trace) -> None:
    again = trace_from_rest_json(pass_trace.to_dict())
    assert again.info.trace_id == pass_trace.info.trace_id
    assert [s.to_dict() for s in again.data.spans] == [s.to_dict() for s in pass_trace.data.spans]
    # get-trace-artifact form: proto trace_info plus MLflow-native spans
    mixed = rest_trace("x", wrap=False)
    mixed["spans"] = [s.to_dict() for s in pass_trace.data.spans]
    assert trace_from_rest_json(mixed).data.spans[0].outputs == pass_trace.data.spans[0].outputs


def _via_protobuf(item: dict):
    """MLflow's own decoding of a batchGet item (ParseDict + Trace.from_proto): the reference."""
    from google.protobuf.json_format import ParseDict
    from mlflow.entities import Trace
    from mlflow.protos.service_pb2 import Trace as ProtoTrace

    return Trace.from_proto(ParseDict(item, ProtoTrace(), ignore_unknown_fields=True))


def _same_trace(a, b) -> None:
    assert a.to_dict() == b.to_dict()
    for x, y in zip(a.data.spans, b.data.spans, strict=True):
        assert (x.inputs, x.outputs, x.attributes, x.status, x.parent_id) == (
            y.inputs, y.outputs, y.attributes, y.status, y.parent_id)
        assert [(e.name, e.timestamp, e.attributes) for e in x.events] == [
            (e.name, e.timestamp, e.attributes) for e in y.events]


def test_otel_json_spans_decode_like_mlflow_protobuf_path(seeded) -> None:
    """OTel-proto JSON spans skip protobuf (the worker's largest CPU cost per trace after the
    judge call); the Trace must be what MLflow's protobuf decoding gives, for real server
    output (agents, RAG, error traces with exception events) and hand-built edge cases."""
    import asyncio

    from trace_tui.core.client import MlflowClient
    from trace_tui.judging.rest_trace import _native_spans

    async def fetch() -> list[dict]:
        async with MlflowClient(seeded.uri, span_cache=False) as client:
            return await client.batch_get_raw(seeded.trace_ids[:150])

    items = asyncio.run(fetch())
    assert len(items) == 150
    assert any(i["trace_info"].get("state") == "ERROR" for i in items)
    assert any(s.get("events") for i in items for s in i["spans"])
    for item in items:
        assert _native_spans(item["spans"]) is not None  # the fast path, not the fallback
        _same_trace(trace_from_rest_json(item), _via_protobuf(item))
    for item in (rest_trace("x", wrap=False), rest_trace("y", int64_as_str=True, wrap=False)):
        _same_trace(trace_from_rest_json(item), _via_protobuf(item))
    # What the direct conversion does not cover still decodes, through protobuf.
    edge = rest_trace("z", wrap=False)
    edge["spans"][0]["attributes"].append({"key": "blob", "value": {"bytes_value": "AAE="}})
    edge["spans"][1]["links"] = [{"trace_id": edge["spans"][1]["trace_id"],
                                  "span_id": edge["spans"][0]["span_id"]}]
    edge["spans"][2]["attributes"].append({"key": "empty", "value": {}})
    assert _native_spans(edge["spans"]) is None
    _same_trace(trace_from_rest_json(edge), _via_protobuf(edge))
    assert trace_from_rest_json(edge).data.spans[0].get_attribute("blob") is not None


def test_trace_from_rest_json_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="trace_info"):
        trace_from_rest_json({"spans": []})
    with pytest.raises(ValueError, match="proto"):
        trace_from_rest_json({"trace_info": {"state": 17}, "spans": []})


def test_sdk_built_trace_round_trips_through_rest_shape(tmp_path, monkeypatch, fake) -> None:
    """A trace written with the MLflow tracing SDK, serialised as the REST API does, judged."""
    import mlflow
    from google.protobuf.json_format import MessageToDict
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    monkeypatch.chdir(tmp_path)
    with _use_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db"):
        mlflow.set_experiment("sdk-built-trace")  # not whatever an earlier test left active

        @mlflow.trace(span_type="AGENT")
        def agent(question: str) -> str:
            with mlflow.start_span("llm", span_type="CHAT_MODEL") as span:
                span.set_inputs({"messages": [{"role": "user", "content": question}]})
                span.set_outputs({"content": "Paris"})
            return f"Paris. {FORCE_PASS_MARKER}"

        agent("What is the capital of France?")
        trace_id = mlflow.get_last_active_trace_id()
        mlflow.flush_trace_async_logging()
        original = mlflow.get_trace(trace_id)

    rest = MessageToDict(original.to_proto(), preserving_proto_field_name=True)
    trace = trace_from_rest_json({"trace": rest})
    assert trace.info.trace_id == trace_id
    assert [s.to_dict() for s in trace.data.spans] == [s.to_dict() for s in original.data.spans]
    base_url, _ = fake
    judge = build_judge(spec("answers", "make_judge", base_url,
                             instructions="Does {{ outputs }} answer {{ inputs }}?"))
    verdict = run_judge(judge, trace, timeout_s=20)
    assert verdict.error is None and verdict.passed is True


# --------------------------------------------------------------------------- declarations


def test_spec_normalises_base_url_both_forms() -> None:
    a = spec("a", "make_judge", "http://127.0.0.1:5099/v1/", instructions="{{ outputs }}")
    b = spec("b", "make_judge", "http://127.0.0.1:5099/v1/chat/completions",
             instructions="{{ outputs }}")
    assert a.base_url == b.base_url == "http://127.0.0.1:5099/v1"
    assert a.completions_url == "http://127.0.0.1:5099/v1/chat/completions"
    assert a.feedback_value_type == "yes_no"
    assert not a.trace_aware
    assert spec("t", "make_judge", "http://127.0.0.1:1/v1",
                instructions="Inspect {{ trace }}").trace_aware


@pytest.mark.parametrize(
    ("scorer", "options", "key"),
    [
        ("builtin:Nope", {"model": MODEL}, "scorer"),
        ("make_judge", {"instructions": "{{ outputs }}"}, "model"),
        ("make_judge", {"model": "gpt-4o-mini", "instructions": "{{ outputs }}"}, "model"),
        ("make_judge", {"model": MODEL}, "instructions"),
        ("make_judge", {"model": MODEL, "instructions": "no variables"}, "instructions"),
        ("make_judge", {"model": MODEL, "instructions": "{{ answer }}"}, "instructions"),
        ("make_judge", {"model": MODEL, "instructions": "{{ outputs }}",
                        "feedback_value_type": "list"}, "feedback_value_type"),
        ("make_judge", {"model": MODEL, "instructions": "{{ outputs }}",
                        "pass_threshold": 0.5}, "pass_threshold"),
        ("builtin:Guidelines", {"model": MODEL}, "guidelines"),
        ("builtin:Guidelines", {"model": MODEL, "guidelines": []}, "guidelines"),
        ("builtin:Safety", {"model": MODEL, "instructions": "{{ outputs }}"}, "instructions"),
        ("builtin:Safety", {"model": MODEL, "base_url": "ftp://127.0.0.1/v1"}, "base_url"),
        ("builtin:Safety", {"model": "anthropic:/claude", "base_url": "http://127.0.0.1:1"},
         "base_url"),
        ("builtin:Safety", {"model": MODEL, "api_key_env": "has space"}, "api_key_env"),
        ("builtin:Safety", {"model": MODEL, "temperature": 0}, "temperature"),
    ],
)
def test_spec_validation_names_judge_and_key(scorer, options, key) -> None:
    with pytest.raises(JudgeConfigError) as info:
        JudgeSpec.from_decl("my-judge", scorer, options)
    err = info.value
    assert err.judge == "my-judge" and err.key == key
    assert str(err).startswith(f"judge 'my-judge': {key}: ")
    assert "\n" not in str(err)


def test_key_pasted_as_env_name_is_not_echoed() -> None:
    with pytest.raises(JudgeConfigError) as info:
        JudgeSpec.from_decl("j", "builtin:Safety", {"model": MODEL, "api_key_env": "sk-" + "a" * 9})
    assert "sk-" not in str(info.value)


def test_missing_key_env_for_remote_endpoint_names_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("TRACE_TUI_UNSET_KEY", raising=False)
    s = JudgeSpec.from_decl("remote", "builtin:Safety", {
        "model": MODEL,
        "base_url": "https://judge.invalid/v1",  # never contacted: the build fails first
        "api_key_env": "TRACE_TUI_UNSET_KEY",
    })
    with pytest.raises(JudgeConfigError) as info:
        build_judge(s)
    assert info.value.key == "api_key_env"
    assert "TRACE_TUI_UNSET_KEY" in str(info.value)
    assert "remote" in str(info.value)


def test_missing_key_env_for_loopback_uses_a_placeholder(monkeypatch, fake, pass_trace) -> None:
    base_url, server = fake
    monkeypatch.delenv("TRACE_TUI_UNSET_KEY", raising=False)
    judge = build_judge(
        spec("local", "builtin:Safety", base_url, api_key_env="TRACE_TUI_UNSET_KEY")
    )
    verdict = run_judge(judge, pass_trace, timeout_s=20)
    assert verdict.error is None
    assert server.last_authorization.startswith("Bearer ")


def test_key_never_in_reprs_or_errors(key_env, fake, failing, pass_trace) -> None:
    base_url, server = fake
    s = spec("secretive", "builtin:Safety", base_url, api_key_env=key_env)
    judge = build_judge(s)
    assert SECRET not in repr(s)
    assert SECRET not in repr(judge)
    assert SECRET not in str(judge.model_dump())
    assert SECRET not in repr(vars(judge))
    assert judge_spec_of(judge) == s
    verdict = run_judge(judge, pass_trace, timeout_s=20)
    assert verdict.error is None
    assert server.last_authorization == f"Bearer {SECRET}"  # the judge's own key was sent
    assert SECRET not in repr(verdict)

    bad_judge = build_judge(spec("secretive", "builtin:Safety", failing[0], api_key_env=key_env))
    bad = run_judge(bad_judge, pass_trace, timeout_s=20)
    assert bad.error and SECRET not in bad.error and SECRET not in repr(bad)


# --------------------------------------------------------------------------- verdicts


def test_make_judge_outputs(fake, pass_trace, fail_trace, key_env) -> None:
    base_url, server = fake
    judge = build_judge(spec("answers", "make_judge", base_url, api_key_env=key_env,
                             instructions="Does {{ outputs }} answer {{ inputs }}?"))
    tool_calls = server.stats()["tool_calls"]
    good = run_judge(judge, pass_trace, timeout_s=20)
    bad = run_judge(judge, fail_trace, timeout_s=20)
    assert isinstance(good, JudgeVerdict)
    assert (good.value, good.passed, good.error) == ("yes", True, None)
    assert (bad.value, bad.passed, bad.error) == ("no", False, None)
    assert good.rationale and "fake judge" in good.rationale
    assert good.input_tokens and good.input_tokens > 50
    assert good.output_tokens and good.output_tokens > 0
    assert good.cost_usd and good.cost_usd > 0  # gpt-4o-mini is in MLflow's bundled catalog
    assert 0 < good.latency_s < 20
    assert server.stats()["tool_calls"] == tool_calls  # outputs judges need no tools


def test_make_judge_builds_its_response_format_once(fake, pass_trace, fail_trace) -> None:
    """The response-format model (pydantic.create_model in mlflow, per call) is built once
    per judge; every call still sends the typed schema (the fake answers in that type)."""
    base_url, _ = fake
    judge = build_judge(spec("scored", "make_judge", base_url, feedback_value_type="float",
                             instructions="Rate {{ outputs }} for {{ inputs }} from 0 to 1."))
    first = judge._create_response_format_model()
    assert judge._create_response_format_model() is first
    assert set(first.model_json_schema()["properties"]) == {"result", "rationale"}
    verdicts = [run_judge(judge, t, timeout_s=20) for t in (pass_trace, fail_trace, pass_trace)]
    assert all(v.error is None and isinstance(v.value, float) for v in verdicts)
    assert verdicts[0].value == verdicts[2].value
    assert judge._create_response_format_model() is first


def test_make_judge_trace_uses_the_tool_loop(fake, pass_trace, fail_trace) -> None:
    base_url, server = fake
    judge = build_judge(spec("tool-use", "make_judge", base_url,
                             instructions="Did the agent in {{ trace }} answer correctly?"))
    before = server.stats()
    good = run_judge(judge, pass_trace, timeout_s=20)
    after = server.stats()
    assert (good.value, good.passed, good.error) == ("yes", True, None)
    assert after["tool_calls"] == before["tool_calls"] + 1
    assert after["completions"] == before["completions"] + 2
    bad = run_judge(judge, fail_trace, timeout_s=20)
    assert (bad.value, bad.passed) == ("no", False)  # marker found in the get_root_span result
    assert good.input_tokens > 1000  # trace judges are far more expensive


@pytest.mark.parametrize(
    ("fvt", "extra", "good_value", "bad_value"),
    [
        ("bool", {}, True, False),
        ("float", {"pass_threshold": 0.5}, None, None),
        ("int", {"pass_threshold": 1}, 1, 0),
        ("str", {}, "yes", "no"),
    ],
)
def test_make_judge_value_types(fake, pass_trace, fail_trace, fvt, extra, good_value,
                                bad_value) -> None:
    base_url, _ = fake
    judge = build_judge(spec(f"typed-{fvt}", "make_judge", base_url,
                             instructions="Rate {{ outputs }}", feedback_value_type=fvt, **extra))
    good = run_judge(judge, pass_trace, timeout_s=20)
    bad = run_judge(judge, fail_trace, timeout_s=20)
    assert good.error is None and bad.error is None
    assert good.passed is True and bad.passed is False
    if good_value is not None:
        assert (good.value, bad.value) == (good_value, bad_value)
        assert type(good.value) is type(good_value)
    else:
        assert 0.5 <= good.value < 1 and 0 <= bad.value < 0.5


@pytest.mark.parametrize("scorer", ["builtin:RelevanceToQuery", "builtin:Safety"])
def test_builtin_scorers(fake, pass_trace, fail_trace, scorer) -> None:
    base_url, server = fake
    judge = build_judge(spec(scorer.split(":")[1].lower(), scorer, base_url))
    before = server.stats()["completions"]
    good = run_judge(judge, pass_trace, timeout_s=20)
    bad = run_judge(judge, fail_trace, timeout_s=20)
    assert (good.value, good.passed, good.error) == ("yes", True, None)
    assert (bad.value, bad.passed, bad.error) == ("no", False, None)
    assert server.stats()["completions"] == before + 2
    assert good.input_tokens and good.output_tokens


def test_other_builtins(fake, pass_trace) -> None:
    base_url, _ = fake
    for scorer, options in [
        ("builtin:Guidelines", {"guidelines": ["Answer in English", "Be brief"]}),
        ("builtin:Correctness", {"expected_response": "Paris"}),
        ("builtin:RetrievalGroundedness", {}),
    ]:
        verdict = run_judge(build_judge(spec("other", scorer, base_url, **options)), pass_trace,
                            timeout_s=20)
        assert (verdict.value, verdict.passed, verdict.error) == ("yes", True, None), scorer


async def test_arun_judge(fake, pass_trace) -> None:
    base_url, _ = fake
    judge = build_judge(spec("async", "builtin:Safety", base_url))
    verdict = await arun_judge(judge, pass_trace, timeout_s=20)
    assert verdict.passed is True


# --------------------------------------------------------------------------- bounded time


def test_failing_endpoint_gives_error_verdict_fast(failing, pass_trace) -> None:
    base_url, server = failing
    judge = build_judge(spec("flaky", "builtin:Safety", base_url))
    before = server.stats()["completions"]
    started = time.monotonic()
    verdict = run_judge(judge, pass_trace, timeout_s=10)
    elapsed = time.monotonic() - started
    assert verdict.value is None and verdict.passed is None
    assert verdict.error and ("HTTP 5" in verdict.error or "HTTP 429" in verdict.error)
    assert verdict.error_kind in ("server_error", "rate_limited")
    assert verdict.retryable
    assert elapsed < 2  # one attempt: MLflow's internal retries are off
    assert server.stats()["completions"] == before + 1


def test_internal_retries_stop_at_the_deadline(failing, pass_trace) -> None:
    base_url, server = failing
    judge = build_judge(spec("flaky-retry", "make_judge", base_url,
                             instructions="{{ outputs }} ok?"))
    before = server.stats()["completions"]
    started = time.monotonic()
    verdict = run_judge(judge, pass_trace, timeout_s=2.5, max_internal_retries=10)
    elapsed = time.monotonic() - started
    assert verdict.retryable and verdict.error
    assert elapsed < 2.5 + 0.5  # MLflow alone would retry for ~3 minutes
    # attempts at t=0 and t=1 s; the next backoff (2 s) would cross the deadline
    assert server.stats()["completions"] - before == 2


def test_hung_endpoint_times_out_within_the_deadline(pass_trace) -> None:
    base_url, stop = run_in_thread(latency_s=30)
    try:
        judge = build_judge(spec("slow", "builtin:Safety", base_url))
        started = time.monotonic()
        verdict = run_judge(judge, pass_trace, timeout_s=0.75)
        elapsed = time.monotonic() - started
        assert verdict.error_kind == "timeout" and verdict.retryable
        assert elapsed < 0.75 + 0.5
    finally:
        stop()


def test_unreachable_endpoint_is_a_connection_error(pass_trace) -> None:
    base_url, stop = run_in_thread()
    stop()  # nothing listens on that port any more
    judge = build_judge(spec("gone", "builtin:Safety", base_url))
    verdict = run_judge(judge, pass_trace, timeout_s=5)
    assert verdict.error_kind == "connection" and verdict.retryable
    assert verdict.latency_s < 2


def test_run_judge_requires_a_positive_timeout(fake, pass_trace) -> None:
    judge = build_judge(spec("t", "builtin:Safety", fake[0]))
    with pytest.raises(ValueError):
        run_judge(judge, pass_trace, timeout_s=0)


def test_concurrent_calls_overlap(pass_trace, fail_trace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    base_url, stop = run_in_thread(latency_s=0.3)
    try:
        judges = [build_judge(spec(f"c{i}", "builtin:Safety", base_url)) for i in range(8)]
        traces = [pass_trace if i % 2 == 0 else fail_trace for i in range(8)]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            verdicts = list(pool.map(
                lambda jt: run_judge(jt[0], jt[1], timeout_s=10), zip(judges, traces, strict=True)
            ))
        elapsed = time.monotonic() - started
        assert [v.passed for v in verdicts] == [True, False] * 4
        assert elapsed < 8 * 0.3  # the calls ran side by side, not one after another
    finally:
        stop()


def test_policy_judge_errors_name_file_line_and_key_path(tmp_path) -> None:
    """A bad judge option in a policy file is reported like any policy error."""
    from samplers import load_policy
    from trace_tui.core.errors import ConfigError
    from trace_tui.judging import policy_judge_specs

    f = tmp_path / "policy.toml"
    f.write_text(
        '[[judge]]\nname = "ok"\nscorer = "builtin:Safety"\nmodel = "openai:/gpt-4o-mini"\n\n'
        '[[judge]]\nname = "bad"\nscorer = "builtin:Safety"\nmodel = "gpt-4o-mini"\n\n'
        '[[policy]]\nname = "all"\ntype = "always"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        policy_judge_specs(load_policy(f))
    assert str(info.value) == (
        f"{f}:9: judge[1].model: expected an MLflow model URI like 'openai:/gpt-4o-mini', "
        "got 'gpt-4o-mini' (judge 'bad')"
    )
    f.write_text(f.read_text().replace('"gpt-4o-mini"', '"openai:/gpt-4o-mini"'))
    assert [s.name for s in policy_judge_specs(load_policy(f))] == ["ok", "bad"]
