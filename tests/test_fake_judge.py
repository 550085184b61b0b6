"""The offline OpenAI-compatible judge endpoint (trace_tui.demo.fake_judge), over real HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

import aiohttp
import pytest

from trace_tui.demo.fake_judge import (
    FORCE_FAIL_MARKER,
    FORCE_PASS_MARKER,
    FakeJudgeServer,
    main,
    run_in_thread,
)

YES_NO = {
    "type": "json_schema",
    "json_schema": {
        "name": "ResponseFormat",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "result": {"type": "string", "enum": ["yes", "no"]},
                "rationale": {"type": "string"},
            },
            "required": ["result", "rationale"],
            "additionalProperties": False,
        },
    },
}
TOOLS = [
    {"type": "function", "function": {"name": "get_trace_info", "parameters": {}}},
    {"type": "function", "function": {"name": "list_spans", "parameters": {}}},
    {"type": "function", "function": {"name": "get_root_span", "parameters": {}}},
]


def schema_of(result: dict) -> dict:
    return {
        "type": "json_schema",
        "json_schema": {"name": "R", "schema": {"type": "object", "properties": {
            "result": result, "rationale": {"type": "string"}}}},
    }


def body(text: str, **extra) -> dict:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are an expert judge."},
            {"role": "user", "content": text},
        ],
        **extra,
    }


@pytest.fixture
async def judge():
    server = FakeJudgeServer()
    await server.start()
    async with aiohttp.ClientSession() as session:
        server.session = session
        yield server
    await server.stop()


async def post(server: FakeJudgeServer, payload: dict) -> tuple[int, dict]:
    async with server.session.post(server.completions_url, json=payload) as resp:
        return resp.status, await resp.json()


def verdict(payload: dict) -> dict:
    return json.loads(payload["choices"][0]["message"]["content"])


async def test_start_returns_loopback_v1_base(judge: FakeJudgeServer) -> None:
    assert judge.base_url.startswith("http://127.0.0.1:")
    assert judge.base_url.endswith("/v1")
    assert judge.port > 0
    assert judge.completions_url == judge.base_url + "/chat/completions"


async def test_same_request_same_answer(judge: FakeJudgeServer) -> None:
    outs = [verdict((await post(judge, body("answer: Paris", response_format=YES_NO)))[1])
            for _ in range(3)]
    assert outs[0] == outs[1] == outs[2]
    assert outs[0]["result"] in ("yes", "no")
    assert outs[0]["rationale"]


async def test_verdicts_vary_with_content(judge: FakeJudgeServer) -> None:
    results = Counter()
    for i in range(40):
        _, payload = await post(judge, body(f"answer #{i}", response_format=YES_NO))
        results[verdict(payload)["result"]] += 1
    assert results["yes"] > 0 and results["no"] > 0  # pass_rate 0.5 -> both occur


async def test_markers_force_the_verdict(judge: FakeJudgeServer) -> None:
    for i in range(10):
        _, ok = await post(judge, body(f"{i} {FORCE_PASS_MARKER}", response_format=YES_NO))
        _, bad = await post(judge, body(f"{i} {FORCE_FAIL_MARKER}", response_format=YES_NO))
        assert verdict(ok)["result"] == "yes"
        assert verdict(bad)["result"] == "no"
    _, both = await post(judge, body(f"{FORCE_PASS_MARKER} {FORCE_FAIL_MARKER}"))
    assert verdict(both)["result"] == "no"  # fail wins


async def test_rate_marker_sets_the_pass_share(judge: FakeJudgeServer) -> None:
    n = 400
    passes = 0
    for i in range(n):
        _, payload = await post(judge, body(f"item {i} [[judge:p=0.2]]", response_format=YES_NO))
        passes += verdict(payload)["result"] == "yes"
    assert 0.13 < passes / n < 0.27


async def test_pass_rate_bias() -> None:
    for rate, expected in ((0.0, "no"), (1.0, "yes")):
        server = FakeJudgeServer(pass_rate=rate)
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                server.session = session
                for i in range(10):
                    _, payload = await post(server, body(f"x{i}", response_format=YES_NO))
                    assert verdict(payload)["result"] == expected
        finally:
            await server.stop()


@pytest.mark.parametrize(
    ("result_schema", "pass_value", "fail_value"),
    [
        ({"type": "string", "enum": ["yes", "no"]}, "yes", "no"),
        ({"type": "string", "enum": ["no", "yes"]}, "yes", "no"),
        ({"type": "string", "enum": ["excellent", "ok", "poor"]}, "excellent", "poor"),
        ({"type": "boolean"}, True, False),
        ({"type": "integer"}, 1, 0),
        ({"type": "integer", "minimum": 1, "maximum": 5}, 5, 1),
        ({"type": "string"}, "yes", "no"),
        ({"anyOf": [{"type": "boolean"}, {"type": "null"}]}, True, False),
    ],
)
async def test_honours_response_format(
    judge: FakeJudgeServer, result_schema: dict, pass_value, fail_value
) -> None:
    rf = schema_of(result_schema)
    _, ok = await post(judge, body(f"good {FORCE_PASS_MARKER}", response_format=rf))
    _, bad = await post(judge, body(f"bad {FORCE_FAIL_MARKER}", response_format=rf))
    assert verdict(ok)["result"] == pass_value
    assert verdict(bad)["result"] == fail_value
    assert type(verdict(ok)["result"]) is type(pass_value)


async def test_number_results_split_at_one_half(judge: FakeJudgeServer) -> None:
    rf = schema_of({"type": "number"})
    for i in range(10):
        _, ok = await post(judge, body(f"{i} {FORCE_PASS_MARKER}", response_format=rf))
        _, bad = await post(judge, body(f"{i} {FORCE_FAIL_MARKER}", response_format=rf))
        assert 0.5 <= verdict(ok)["result"] < 1.0
        assert 0.0 <= verdict(bad)["result"] < 0.5


async def test_no_response_format_still_answers_json(judge: FakeJudgeServer) -> None:
    _, payload = await post(judge, body(f"plain {FORCE_PASS_MARKER}"))
    assert verdict(payload) == {"result": "yes", "rationale": verdict(payload)["rationale"]}


async def test_usage_tracks_prompt_size(judge: FakeJudgeServer) -> None:
    text = "x" * 4000
    _, payload = await post(judge, body(text, response_format=YES_NO))
    usage = payload["usage"]
    assert 990 <= usage["prompt_tokens"] <= 1020  # ~ chars / 4
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "gpt-4o-mini"
    assert payload["choices"][0]["finish_reason"] == "stop"


async def test_tool_call_first_then_verdict(judge: FakeJudgeServer) -> None:
    request = body(f"Use the tools to inspect the trace. {FORCE_FAIL_MARKER}",
                   tools=TOOLS, tool_choice="auto", response_format=YES_NO)
    _, first = await post(judge, request)
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"] == {"name": "get_root_span", "arguments": "{}"}
    assert first["usage"]["prompt_tokens"] > 0

    request["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "name": "get_root_span",
         "content": json.dumps({"span_id": "abc", "content": "{}"})},
    ]
    _, second = await post(judge, request)
    assert second["choices"][0]["finish_reason"] == "stop"
    assert verdict(second)["result"] == "no"
    assert judge.stats()["tool_calls"] == 1


async def test_tool_choice_falls_back_to_offered_tools(judge: FakeJudgeServer) -> None:
    only_list = [t for t in TOOLS if t["function"]["name"] == "list_spans"]
    _, payload = await post(judge, body("inspect", tools=only_list))
    assert payload["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "list_spans"
    other = [TOOLS[0]]
    _, payload = await post(judge, body("inspect", tools=other))
    assert payload["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_trace_info"
    )


async def test_marker_in_tool_result_decides(judge: FakeJudgeServer) -> None:
    request = body("Use the tools.", tools=TOOLS, response_format=YES_NO)
    request["messages"].append(
        {"role": "tool", "tool_call_id": "c1", "content": f"root span says {FORCE_PASS_MARKER}"}
    )
    _, payload = await post(judge, request)
    assert verdict(payload)["result"] == "yes"


async def test_failure_rate_share_of_5xx_and_429() -> None:
    server = FakeJudgeServer(failure_rate=0.3)
    await server.start()
    try:
        statuses = []
        async with aiohttp.ClientSession() as session:
            server.session = session
            for i in range(20):
                status, payload = await post(server, body(f"q{i}", response_format=YES_NO))
                statuses.append(status)
                if status != 200:
                    assert "error" in payload and payload["error"]["message"]
        failures = [s for s in statuses if s != 200]
        assert len(failures) == 6  # exactly 30 % of 20, spread deterministically
        assert set(failures) == {500, 429}
        assert statuses[:4] == [200, 200, 200, 500]
        stats = server.stats()
        assert stats["failures"] == 6
        assert stats["by_status"] == {"200": 14, "429": 3, "500": 3}
    finally:
        await server.stop()


async def test_failure_rate_one_fails_everything() -> None:
    server = FakeJudgeServer(failure_rate=1.0, failure_statuses=(503,))
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            server.session = session
            for i in range(5):
                status, _ = await post(server, body(f"q{i}"))
                assert status == 503
    finally:
        await server.stop()


async def test_models_health_and_stats(judge: FakeJudgeServer) -> None:
    s = judge.session
    async with s.get(judge.root_url + "/health") as resp:
        assert resp.status == 200 and await resp.text() == "OK"
    async with s.get(judge.base_url + "/models") as resp:
        models = await resp.json()
    assert models["object"] == "list" and models["data"][0]["id"] == "fake-judge"
    for i in range(3):
        await post(judge, body(f"q{i}", response_format=YES_NO))
    async with s.get(judge.root_url + "/stats") as resp:
        stats = await resp.json()
    assert stats["requests"] == 6  # health + models + 3 completions + this /stats
    assert stats["completions"] == 3
    assert stats["failures"] == 0
    assert stats["by_path"] == {
        "/health": 1, "/v1/models": 1, "/v1/chat/completions": 3, "/stats": 1,
    }
    assert sum(stats["verdicts"].values()) == 3
    assert stats["prompt_tokens"] > 0
    async with s.post(judge.root_url + "/stats/reset") as resp:
        assert resp.status == 200
    assert judge.stats()["requests"] == 0


async def test_bad_request_is_400(judge: FakeJudgeServer) -> None:
    async with judge.session.post(judge.completions_url, data=b"not json") as resp:
        assert resp.status == 400
    async with judge.session.post(judge.completions_url, json={"messages": "x"}) as resp:
        assert resp.status == 400


async def test_authorization_is_seen_in_process_only(judge: FakeJudgeServer) -> None:
    headers = {"Authorization": "Bearer sk-test-value"}
    async with judge.session.post(judge.completions_url, json=body("q"), headers=headers):
        pass
    assert judge.last_authorization == "Bearer sk-test-value"
    assert "sk-test-value" not in json.dumps(judge.stats())


def test_run_in_thread_for_sync_callers() -> None:
    base_url, stop = run_in_thread(pass_rate=1.0)
    try:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        req = urllib.request.Request(
            base_url + "/chat/completions",
            data=json.dumps(body("sync", response_format=YES_NO)).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert verdict(json.loads(resp.read()))["result"] == "yes"
        assert stop.server.stats()["completions"] == 1
    finally:
        stop()
    stop()  # idempotent


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        FakeJudgeServer(failure_rate=1.5)
    with pytest.raises(ValueError, match="pass_rate"):
        FakeJudgeServer(pass_rate=-0.1)
    with pytest.raises(ValueError, match="latency_s"):
        FakeJudgeServer(latency_s=-1)
    assert main(["--failure-rate", "2"]) == 2
