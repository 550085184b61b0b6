"""A small OpenAI-compatible chat-completions server for offline tests and the demo.

It answers ``POST /v1/chat/completions`` the way MLflow 3.17 judges expect (verified with
``make_judge`` and the built-in scorers): ``choices[0].message.content`` is a JSON string
``{"result": ..., "rationale": "..."}`` and ``usage`` carries token counts.

Determinism
    The verdict is a pure function of the request's messages: a SHA-256 of the message
    contents gives a fraction ``h`` in [0, 1); the verdict passes when ``h < pass_rate``.
    Markers anywhere in the messages (including tool results, i.e. inside the trace a
    ``{{ trace }}`` judge inspects) override this:

    * ``[[judge:fail]]`` forces a failing verdict (wins over everything else),
    * ``[[judge:pass]]`` forces a passing verdict,
    * ``[[judge:p=0.25]]`` uses 0.25 instead of ``pass_rate`` for this request.

    So a test can seed a population whose per-stratum pass rates are known exactly
    (forced markers) or in expectation (rate markers).

Result shape
    ``response_format`` (json_schema) is honoured: an ``enum`` for ``result`` gives one of its
    members (yes/no-like members are mapped by meaning, otherwise first = pass, last = fail);
    ``boolean`` gives true/false; ``number`` gives a float in [0.5, 1) for pass and [0, 0.5) for
    fail; ``integer`` gives 1/0; a plain string (MLflow built-in scorers) gives "yes"/"no".

Tool loop
    When the request offers ``tools`` and carries no ``tool`` message yet, the first answer is a
    tool call (``get_root_span``, else ``list_spans``, else the first tool offered), so
    trace-aware judges exercise MLflow's tool-calling loop. Once tool results arrive, the verdict
    is returned.

Failures
    ``failure_rate`` makes that share of completion calls fail, deterministically: call ``n``
    (0-based) fails when ``floor((n + 1) * rate) > floor(n * rate)``; failures alternate between
    the statuses in ``failure_statuses`` (500 then 429 by default).

Other routes: ``GET /v1/models``, ``GET /health`` ("OK"), ``GET /stats`` (JSON counters) and
``POST /stats/reset``.

Usage::

    server = FakeJudgeServer(latency_s=0.0)
    base_url = await server.start()          # "http://127.0.0.1:<port>/v1"
    ...
    await server.stop()

    base_url, stop = run_in_thread(failure_rate=0.3)   # for sync callers
    stop()

    python -m trace_tui.demo.fake_judge --port 5099 --latency 0.2 --failure-rate 0.3

Over 500 lines on purpose: it runs as its own process (``python -m trace_tui.demo.fake_judge``)
and its protocol handling (chat, tool calls, markers, failures) is one small server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

DEFAULT_MODEL_ID = "fake-judge"
FORCE_FAIL_MARKER = "[[judge:fail]]"
FORCE_PASS_MARKER = "[[judge:pass]]"
_RATE_MARKER = re.compile(r"\[\[judge:p=([0-9]*\.?[0-9]+)\]\]")
_COUNTED_ON_ARRIVAL = frozenset({"/v1/chat/completions", "/chat/completions"})
_PREFERRED_TOOLS = ("get_root_span", "list_spans")
_PASS_WORDS = {"yes", "pass", "passed", "true", "correct", "good", "safe", "relevant"}
_FAIL_WORDS = {"no", "fail", "failed", "false", "incorrect", "bad", "unsafe", "irrelevant"}


# --------------------------------------------------------------------------- pure helpers


def message_text(messages: Sequence[Any]) -> str:
    """Concatenated text of all message contents (str or OpenAI content-part lists)."""
    parts: list[str] = []
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                parts.append(f"{fn.get('name', '')}({fn.get('arguments', '')})")
    return "\n".join(parts)


def content_fraction(text: str) -> float:
    """Deterministic fraction in [0, 1) derived from ``text``."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(text: str, pass_rate: float) -> tuple[bool, str]:
    """Return ``(passed, reason)`` for a prompt text; see the module docstring."""
    if FORCE_FAIL_MARKER in text:
        return False, f"marker {FORCE_FAIL_MARKER}"
    if FORCE_PASS_MARKER in text:
        return True, f"marker {FORCE_PASS_MARKER}"
    rate = pass_rate
    if m := _RATE_MARKER.search(text):
        rate = min(1.0, max(0.0, float(m.group(1))))
    h = content_fraction(text)
    return h < rate, f"hash {h:.3f} vs pass rate {rate:.2f}"


def _result_schema(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    result = props.get("result") if isinstance(props, dict) else None
    if not isinstance(result, dict):
        return None
    # pydantic may emit {"anyOf": [...]} or {"$ref": ...}; take the first concrete branch.
    if "anyOf" in result and isinstance(result["anyOf"], list):
        concrete = [b for b in result["anyOf"] if isinstance(b, dict) and b.get("type") != "null"]
        if concrete:
            return concrete[0]
    if "$ref" in result and isinstance(schema.get("$defs"), dict):
        ref = str(result["$ref"]).rsplit("/", 1)[-1]
        target = schema["$defs"].get(ref)
        if isinstance(target, dict):
            return target
    return result


def _pick_enum(options: list[Any], passed: bool) -> Any:
    words = _PASS_WORDS if passed else _FAIL_WORDS
    for opt in options:
        if str(opt).strip().lower() in words:
            return opt
    return options[0] if passed else options[-1]


def result_value(response_format: Any, passed: bool, fraction: float) -> Any:
    """The ``result`` value for a verdict, shaped by the request's ``response_format``."""
    schema = _result_schema(response_format)
    if schema is None:
        return "yes" if passed else "no"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _pick_enum(schema["enum"], passed)
    if "const" in schema:
        return schema["const"]
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if typ == "boolean":
        return passed
    if typ == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and hi is not None:
            return int(hi) if passed else int(lo)
        return 1 if passed else 0
    if typ == "number":
        value = 0.5 + fraction / 2 if passed else fraction / 2
        return round(value, 4)
    return "yes" if passed else "no"


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


# --------------------------------------------------------------------------- the server


class FakeJudgeServer:
    """In-process aiohttp server; ``await start()`` returns the ``/v1`` base URL."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        failure_rate: float = 0.0,
        pass_rate: float = 0.5,
        failure_statuses: Sequence[int] = (500, 429),
        model_id: str = DEFAULT_MODEL_ID,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within [0, 1], got {failure_rate}")
        if not 0.0 <= pass_rate <= 1.0:
            raise ValueError(f"pass_rate must be within [0, 1], got {pass_rate}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        if not failure_statuses:
            raise ValueError("failure_statuses must not be empty")
        self.latency_s = latency_s
        self.failure_rate = failure_rate
        self.pass_rate = pass_rate
        self.failure_statuses = tuple(int(s) for s in failure_statuses)
        self.model_id = model_id
        self.last_authorization: str | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"
        self.reset_stats()

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening (port 0 = any free port) and return the ``/v1`` base URL."""
        if self._runner is not None:
            raise RuntimeError("FakeJudgeServer already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/stats/reset", self._reset)
        # handler_cancellation: a client that gives up (timeout) cancels its sleeping handler;
        # shutdown_timeout: stop() does not wait a minute for in-flight requests.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else port
        self._host = host
        self._runner = runner
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeJudgeServer not started")
        return self._port

    @property
    def root_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base (``OPENAI_API_BASE``): ``http://127.0.0.1:<port>/v1``."""
        return f"{self.root_url}/v1"

    @property
    def completions_url(self) -> str:
        """Full endpoint URL (what ``make_judge(base_url=...)`` wants)."""
        return f"{self.base_url}/chat/completions"

    # ---------------------------------------------------------------- stats

    def reset_stats(self) -> None:
        self._completion_calls = 0
        self._by_path: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._failures = 0
        self._tool_calls = 0
        self._verdicts: Counter[str] = Counter()
        self._prompt_tokens = 0
        self._completion_tokens = 0

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (also served as ``GET /stats``)."""
        return {
            "requests": sum(self._by_path.values()),
            "completions": self._completion_calls,
            "failures": self._failures,
            "tool_calls": self._tool_calls,
            "verdicts": dict(self._verdicts),
            "by_path": dict(self._by_path),
            "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": self._completion_tokens,
        }

    def _count(self, path: str, status: int) -> None:
        if path not in _COUNTED_ON_ARRIVAL:
            self._by_path[path] += 1
        self._by_status[status] += 1

    # ---------------------------------------------------------------- handlers

    async def _health(self, request: web.Request) -> web.Response:
        self._count(request.path, 200)
        return web.Response(text="OK")

    async def _models(self, request: web.Request) -> web.Response:
        self._count(request.path, 200)
        return web.json_response(
            {"object": "list",
             "data": [{"id": self.model_id, "object": "model", "created": 0,
                       "owned_by": "trace-tui"}]}
        )

    async def _stats(self, request: web.Request) -> web.Response:
        self._count(request.path, 200)
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_stats()  # not counted: the counters read zero afterwards
        return web.json_response({})

    def _should_fail(self, n: int) -> int | None:
        rate = self.failure_rate
        if rate <= 0:
            return None
        if math.floor((n + 1) * rate + 1e-9) > math.floor(n * rate + 1e-9):
            status = self.failure_statuses[self._failures % len(self.failure_statuses)]
            return status
        return None

    async def _chat_completions(self, request: web.Request) -> web.Response:
        n = self._completion_calls
        self._completion_calls += 1
        self._by_path[request.path] += 1  # counted on arrival, even if the client gives up
        # In-process only (never served by /stats): lets tests check which key a judge sent.
        self.last_authorization = request.headers.get("Authorization")
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if (status := self._should_fail(n)) is not None:
            self._failures += 1
            self._count(request.path, status)
            kind = "rate_limit_exceeded" if status == 429 else "server_error"
            headers = {"Retry-After": "1"} if status == 429 else None
            return web.json_response(
                {"error": {"message": f"fake judge: injected {status} on call {n}",
                           "type": kind, "code": kind}},
                status=status, headers=headers,
            )
        try:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("'messages' must be a list")
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            self._count(request.path, 400)
            return web.json_response(
                {"error": {"message": f"invalid request: {e}", "type": "invalid_request_error"}},
                status=400,
            )
        payload = self.answer(body)
        self._count(request.path, 200)
        return web.json_response(payload)

    # ---------------------------------------------------------------- the answer

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion for a request body (pure except for the stats counters)."""
        messages = body.get("messages") or []
        text = message_text(messages)
        tools = body.get("tools") or []
        prompt_chars = len(text) + (len(json.dumps(tools)) if tools else 0)
        has_tool_result = any(isinstance(m, dict) and m.get("role") == "tool" for m in messages)
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        message: dict[str, Any]
        if tools and not has_tool_result:
            names = [
                (t.get("function") or {}).get("name")
                for t in tools if isinstance(t, dict)
            ]
            names = [nm for nm in names if nm]
            tool = next((nm for nm in _PREFERRED_TOOLS if nm in names), names[0] if names else "")
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{
                    "id": f"call_{digest[:16]}",
                    "type": "function",
                    "function": {"name": tool, "arguments": "{}"},
                }],
            }
            finish = "tool_calls"
            completion_text = json.dumps(message["tool_calls"])
            self._tool_calls += 1
        else:
            passed, reason = decide(text, self.pass_rate)
            value = result_value(body.get("response_format"), passed, content_fraction(text))
            verdict = "pass" if passed else "fail"
            rationale = f"fake judge: {verdict} ({reason})."
            completion_text = json.dumps({"result": value, "rationale": rationale})
            message = {"role": "assistant", "content": completion_text}
            finish = "stop"
            self._verdicts[verdict] += 1
        prompt_tokens = max(1, math.ceil(prompt_chars / 4))
        completion_tokens = _tokens(completion_text)
        self._prompt_tokens += prompt_tokens
        self._completion_tokens += completion_tokens
        return {
            "id": f"chatcmpl-{digest[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model_id,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


# --------------------------------------------------------------------------- sync runner


def run_in_thread(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> tuple[str, Callable[[], None]]:
    """Run a :class:`FakeJudgeServer` on its own event loop in a daemon thread.

    Returns ``(base_url, stop)``; ``base_url`` is the ``/v1`` base. ``stop()`` is idempotent and
    waits for the thread to finish. ``options`` go to :class:`FakeJudgeServer`.
    """
    server = FakeJudgeServer(**options)  # validate in the caller's thread
    loop = asyncio.new_event_loop()
    started = threading.Event()
    outcome: dict[str, Any] = {}

    def _run() -> None:
        asyncio.set_event_loop(loop)
        try:
            outcome["url"] = loop.run_until_complete(server.start(host, port))
        except BaseException as e:
            outcome["error"] = e
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.close()

    thread = threading.Thread(target=_run, name="fake-judge", daemon=True)
    thread.start()
    started.wait()
    if "error" in outcome:
        thread.join()
        raise outcome["error"]

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    stop.server = server  # type: ignore[attr-defined]  # for stats() in sync tests
    return outcome["url"], stop


# --------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m trace_tui.demo.fake_judge",
        description="Offline OpenAI-compatible judge endpoint for trace-tui tests and demos.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5099)
    p.add_argument("--latency", type=float, default=0.0, help="seconds per completion call")
    p.add_argument("--failure-rate", type=float, default=0.0,
                   help="share of completion calls answered 500/429 (deterministic)")
    p.add_argument("--pass-rate", type=float, default=0.5,
                   help="share of passing verdicts for unmarked content")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = FakeJudgeServer(latency_s=args.latency, failure_rate=args.failure_rate,
                             pass_rate=args.pass_rate)
    base_url = await server.start(args.host, args.port)
    print(f"fake judge listening: OPENAI_API_BASE={base_url} "
          f"(make_judge base_url={server.completions_url}); stats at {server.root_url}/stats",
          flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
            loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    from trace_tui.server.lifeline import exit_with_parent

    args = _parse_args(argv)
    exit_with_parent()
    try:
        FakeJudgeServer(latency_s=args.latency, failure_rate=args.failure_rate,
                        pass_rate=args.pass_rate)
    except ValueError as e:
        print(f"fake_judge: {e}")
        return 2
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
