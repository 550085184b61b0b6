"""Demo traffic: a simulated GenAI application (RAG and tool-using agents) that logs traces.

One request is first *planned* (shape, latencies, tokens, models, errors; seeded RNG), then
emitted in one of two ways:

- **live**: executed with the real MLflow tracing SDK (``mlflow.start_span``), in threads, at a
  chosen rate. This is the path a real application takes. ``import mlflow`` happens here only.
- **bulk**: the same plans sent as OTLP/JSON batches to the server's ``/v1/traces`` endpoint,
  the ingest path the SDK itself uses (``log_spans``). The SDK's async exporter drops traces
  when a producer outruns it (see docs/architecture.md), bulk delivers every trace.

Run: ``python -m trace_tui.demo.traffic --tracking-uri URI [--rate 2] [--bulk N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trace_tui.core.retry import Backoff
from trace_tui.server.lifeline import exit_with_parent

ROUTES = ("search", "support", "checkout", "billing")
VERSIONS = ("1.4.0", "1.5.0")
TIERS = ("free", "free", "free", "pro", "pro", "enterprise")
MODELS = (("gpt-4o-mini", "openai"), ("gpt-4o", "openai"),
          ("claude-haiku-4-5", "anthropic"))
QUESTIONS = (
    "How do I reset my password?", "What is the refund policy for annual plans?",
    "Why was my card declined?", "Compare the pro and enterprise tiers.",
    "Where is my order #{n}?", "Summarise my last three invoices.",
    "Can I change the shipping address after checkout?", "Explain the API rate limits.",
)
ERRORS = (("TimeoutError", "upstream LLM timed out after 30s"),
          ("RateLimitError", "429 Too Many Requests from provider"),
          ("ValueError", "tool returned malformed JSON"))


@dataclass
class Step:
    """One planned span."""

    name: str
    span_type: str
    offset_ms: float
    duration_ms: float
    inputs: Any = None
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[Step] = field(default_factory=list)
    error: tuple[str, str] | None = None


@dataclass
class RequestPlan:
    """One planned trace: a root step plus trace-level tags, session and user."""

    root: Step
    tags: dict[str, str]
    session: str
    user: str


def _lat(rng: random.Random, median_ms: float, sigma: float = 0.6) -> float:
    """Long-tailed latency (log-normal)."""
    return median_ms * rng.lognormvariate(0.0, sigma)


def _llm(rng: random.Random, name: str, offset: float, prompt: str, *,
         model: tuple[str, str] | None = None, big: bool = False) -> Step:
    model_name, provider = model or rng.choice(MODELS)
    inp = int(rng.lognormvariate(6.0 if big else 5.2, 0.5))
    out = int(rng.lognormvariate(4.8, 0.6))
    answer = f"Answer drafted by {model_name} ({out} tokens)."
    return Step(name, "CHAT_MODEL", offset, _lat(rng, 450 + out * 4, 0.5),
                inputs={"messages": [{"role": "user", "content": prompt}]},
                outputs={"choices": [{"message": {"role": "assistant", "content": answer}}]},
                attributes={"mlflow.llm.model": model_name, "mlflow.llm.provider": provider,
                            "mlflow.chat.tokenUsage": {"input_tokens": inp, "output_tokens": out,
                                                       "total_tokens": inp + out}})


def _sequence(parent: Step, steps: list[Step], gap_ms: float = 2.0) -> None:
    """Lay children end to end inside the parent and stretch the parent to cover them."""
    t = parent.offset_ms + gap_ms
    for step in steps:
        shift = t - step.offset_ms
        _shift(step, shift)
        t = step.offset_ms + step.duration_ms + gap_ms
    parent.children.extend(steps)
    parent.duration_ms = max(parent.duration_ms, t - parent.offset_ms)


def _shift(step: Step, delta: float) -> None:
    step.offset_ms += delta
    for child in step.children:
        _shift(child, delta)


def plan_request(rng: random.Random, n: int) -> RequestPlan:
    """Plan request ``n``: a RAG agent or a tool-using support agent, ~5% failing."""
    route = rng.choice(ROUTES)
    question = rng.choice(QUESTIONS).format(n=10_000 + n)
    tags = {"route": route, "app.version": rng.choice(VERSIONS),
            "customer_tier": rng.choice(TIERS), "env": "demo"}
    fail = rng.random() < 0.05
    if route in ("search", "billing"):
        root = Step("rag_agent", "AGENT", 0.0, 5.0, inputs={"question": question})
        docs = [f"kb://{route}/{rng.randint(1, 400)}" for _ in range(rng.randint(3, 8))]
        steps = [
            Step("embed_query", "EMBEDDING", 0, _lat(rng, 25), inputs={"text": question},
                 outputs={"dims": 1536}),
            Step("vector_search", "RETRIEVER", 0, _lat(rng, 120), inputs={"query": question},
                 outputs={"documents": docs}),
            Step("rerank", "RERANKER", 0, _lat(rng, 60), inputs={"documents": docs},
                 outputs={"documents": docs[:3]}),
            _llm(rng, "chat_completion", 0, question, big=True),
        ]
        if rng.random() < 0.3:  # a router LLM reporting cumulative usage over a nested call
            router = _llm(rng, "llm_router", 0, question, model=MODELS[0])
            inner = _llm(rng, "chat_completion", 0, question, model=MODELS[0])
            router.children.clear()
            _sequence(router, [inner])
            steps.append(router)
        steps.append(Step("format_answer", "PARSER", 0, _lat(rng, 8),
                          outputs={"format": "markdown"}))
    else:
        root = Step("support_agent", "AGENT", 0.0, 5.0, inputs={"question": question})
        tool = rng.choice(("lookup_order", "refund_calculator", "crm_search"))
        steps = [
            _llm(rng, "plan_next_step", 0, question),
            Step(tool, "TOOL", 0, _lat(rng, 180, 0.9), inputs={"query": question},
                 outputs={"result": "ok", "rows": rng.randint(0, 5)}),
            Step("memory_write", "MEMORY", 0, _lat(rng, 15), inputs={"turn": n}),
            _llm(rng, "final_answer", 0, question),
        ]
    _sequence(root, steps)
    answer = {"answer": f"[{route}] {question} -> resolved"}
    root.outputs = answer
    if fail:
        victim = rng.choice(steps)
        victim.error = rng.choice(ERRORS)
        root.error = victim.error
        root.outputs = None
    return RequestPlan(root=root, tags=tags, session=f"sess-{rng.randint(1, 60)}",
                       user=f"user-{rng.randint(1, 25)}")


# --------------------------------------------------------------------------- live (SDK)


def run_live_plan(mlflow: Any, plan: RequestPlan, time_scale: float) -> None:
    """Execute one plan with the MLflow tracing SDK, sleeping through the planned latency."""

    def run(step: Step, is_root: bool) -> None:
        with mlflow.start_span(name=step.name, span_type=step.span_type) as span:
            if step.inputs is not None:
                span.set_inputs(step.inputs)
            if step.attributes:
                span.set_attributes(step.attributes)
            if is_root:
                mlflow.update_current_trace(
                    tags=plan.tags,
                    metadata={"mlflow.trace.session": plan.session,
                              "mlflow.trace.user": plan.user})
            cursor = step.offset_ms
            for child in step.children:
                time.sleep(max(0.0, child.offset_ms - cursor) * time_scale / 1000)
                run(child, False)
                cursor = child.offset_ms + child.duration_ms
            remaining = step.offset_ms + step.duration_ms - cursor
            time.sleep(max(0.0, remaining) * time_scale / 1000)
            if step.error is not None and step is not plan.root:
                raise _demo_error(step.error)
            if step.outputs is not None:
                span.set_outputs(step.outputs)

    try:
        run(plan.root, True)
    except Exception as exc:
        if not getattr(exc, "_demo", False):
            raise


def _demo_error(error: tuple[str, str]) -> Exception:
    kind, message = error
    exc_type = {"TimeoutError": TimeoutError, "ValueError": ValueError}.get(kind)
    exc: Exception = exc_type(message) if exc_type else RuntimeError(f"{kind}: {message}")
    exc._demo = True  # type: ignore[attr-defined]
    return exc


def run_live(tracking_uri: str, experiment: str, rate: float, *, seed: int = 7,
             time_scale: float = 0.3, max_traces: int | None = None,
             stop: threading.Event | None = None) -> int:
    """Log traces at ``rate`` per second with the SDK until stopped; returns the count."""
    import os

    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", "100000")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    rng = random.Random(seed)
    stop = stop or threading.Event()
    threads: list[threading.Thread] = []
    n = 0
    next_at = time.monotonic()
    while not stop.is_set() and (max_traces is None or n < max_traces):
        plan = plan_request(rng, n)
        thread = threading.Thread(target=run_live_plan, args=(mlflow, plan, time_scale),
                                  daemon=True)
        thread.start()
        threads.append(thread)
        threads = [t for t in threads if t.is_alive()]
        n += 1
        next_at += rng.expovariate(rate)
        stop.wait(max(0.0, next_at - time.monotonic()))
    for thread in threads:
        thread.join(timeout=30)
    mlflow.flush_trace_async_logging()
    return n


# --------------------------------------------------------------------------- bulk (OTLP)


def any_value(value: Any) -> dict[str, Any]:
    """Python value -> OTLP/JSON AnyValue (structured values stay structured)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": any_value(v)}
                                           for k, v in value.items()]}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def plan_to_otlp_spans(plan: RequestPlan, trace_id_hex: str, start_ns: int,
                       rng: random.Random, *, include_root: bool = True) -> list[dict[str, Any]]:
    """OTLP/JSON spans for one plan (hex ids; the server converts them)."""
    spans: list[dict[str, Any]] = []

    def emit(step: Step, parent: str | None) -> None:
        span_id = f"{rng.getrandbits(64):016x}"
        attrs: dict[str, Any] = {"mlflow.spanType": step.span_type, **step.attributes}
        if step.inputs is not None:
            attrs["mlflow.spanInputs"] = step.inputs
        if step.outputs is not None:
            attrs["mlflow.spanOutputs"] = step.outputs
        if parent is None:
            attrs["mlflow.traceTag.mlflow.traceName"] = step.name
            attrs.update({f"mlflow.traceTag.{k}": v for k, v in plan.tags.items()})
            attrs["session.id"] = plan.session
            attrs["user.id"] = plan.user
        begin = start_ns + int(step.offset_ms * 1e6)
        span: dict[str, Any] = {
            "traceId": trace_id_hex, "spanId": span_id, "name": step.name, "kind": 1,
            "startTimeUnixNano": str(begin),
            "endTimeUnixNano": str(begin + int(step.duration_ms * 1e6)),
            "attributes": [{"key": k, "value": any_value(v)} for k, v in attrs.items()],
            "status": {"code": 2 if step.error else 1},
        }
        if parent:
            span["parentSpanId"] = parent
        if step.error:
            span["status"]["message"] = f"{step.error[0]}: {step.error[1]}"
            if step.error is not None:
                span["events"] = [{"timeUnixNano": str(begin + int(step.duration_ms * 1e6)),
                                   "name": "exception", "attributes": [
                                       {"key": "exception.type",
                                        "value": {"stringValue": step.error[0]}},
                                       {"key": "exception.message",
                                        "value": {"stringValue": step.error[1]}}]}]
        if parent is not None or include_root:
            spans.append(span)
        for child in step.children:
            emit(child, span_id)

    emit(plan.root, None)
    return spans


def otlp_body(spans: list[dict[str, Any]]) -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "demo-genai-app"}}]},
        "scopeSpans": [{"scope": {"name": "trace_tui.demo"}, "spans": spans}]}]}).encode()


OTLP_BACKOFF = Backoff(first_s=0.5, max_s=8.0, jitter=0.25)


def post_otlp(tracking_uri: str, experiment_id: str, spans: list[dict[str, Any]],
              timeout_s: float = 60.0, attempts: int = 5) -> None:
    """POST one OTLP/JSON batch; a busy server (429/5xx, SQLite locked) is retried with
    backoff. The server logs a batch in one transaction, so a retry cannot half-apply."""
    body = otlp_body(spans)
    for attempt in range(attempts):
        req = urllib.request.Request(
            tracking_uri.rstrip("/") + "/v1/traces", data=body, method="POST",
            headers={"Content-Type": "application/json",
                     "x-mlflow-experiment-id": experiment_id})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                resp.read()
            return
        except urllib.error.HTTPError as exc:
            if (exc.code != 429 and exc.code < 500) or attempt == attempts - 1:
                raise
        except urllib.error.URLError:
            if attempt == attempts - 1:
                raise
        time.sleep(OTLP_BACKOFF.delay(attempt))


def bulk_plans(count: int, *, seed: int = 11, start_ms: int | None = None,
               spacing_ms: float = 50.0) -> Iterator[tuple[str, int, RequestPlan, random.Random]]:
    """(trace id hex, start ns, plan, rng) for ``count`` requests spaced in time."""
    rng = random.Random(seed)
    t0 = start_ms if start_ms is not None else int(time.time() * 1000) - int(count * spacing_ms)
    for n in range(count):
        # Random ids, as OTel SDKs make them: a seed fixes the plans, never the ids, so two
        # seedings of one server can never write into each other's traces.
        trace_hex = uuid.uuid4().hex
        yield trace_hex, int((t0 + n * spacing_ms) * 1e6), plan_request(rng, n), rng


def seed_bulk(tracking_uri: str, experiment_id: str, count: int, *, seed: int = 11,
              batch: int = 100, start_ms: int | None = None, spacing_ms: float = 50.0,
              workers: int = 4) -> list[str]:
    """Deliver ``count`` demo traces through OTLP; returns their ``tr-`` ids."""
    from concurrent.futures import ThreadPoolExecutor

    batches: list[list[dict[str, Any]]] = [[]]
    ids: list[str] = []
    per = 0
    for trace_hex, start_ns, plan, rng in bulk_plans(count, seed=seed, start_ms=start_ms,
                                                     spacing_ms=spacing_ms):
        batches[-1].extend(plan_to_otlp_spans(plan, trace_hex, start_ns, rng))
        ids.append("tr-" + trace_hex)
        per += 1
        if per == batch:
            batches.append([])
            per = 0
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda b: post_otlp(tracking_uri, experiment_id, b),
                      [b for b in batches if b]))
    return ids


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """Experiment id for ``name``, created when missing (plain REST, no mlflow import).
    An unreachable or failing server is a one-line MlflowUnavailableError / MlflowApiError."""
    from urllib.parse import urlencode

    from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
    from trace_tui.core.uri import redact_uri

    base = tracking_uri.rstrip("/")
    try:
        try:
            query = urlencode({"experiment_name": name})
            url = f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                return str(json.load(resp)["experiment"]["experiment_id"])
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        req = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/create",
                                     data=json.dumps({"name": name}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.load(resp)["experiment_id"])
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise MlflowUnavailableError(f"MLflow server at {redact_uri(base)} is unavailable "
                                         f"(HTTP {exc.code})") from None
        raise MlflowApiError(f"HTTP_{exc.code}", f"creating experiment {name!r}: {exc.reason}",
                             exc.code, "experiments/create") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        raise MlflowUnavailableError(f"MLflow server at {redact_uri(base)} is unreachable or "
                                     f"not an MLflow server ({type(exc).__name__})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trace_tui.demo.traffic",
                                     description="Log simulated GenAI traces to MLflow.")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="trace-tui-demo")
    parser.add_argument("--rate", type=float, default=2.0, help="live traces per second")
    parser.add_argument("--time-scale", type=float, default=0.3,
                        help="multiply planned latencies by this in live mode")
    parser.add_argument("--bulk", type=int, default=0, help="seed N traces via OTLP and exit")
    parser.add_argument("--count", type=int, default=None,
                        help="live mode: stop after N traces (default: run until stopped)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    exit_with_parent()
    if args.bulk:
        exp = ensure_experiment(args.tracking_uri, args.experiment)
        ids = seed_bulk(args.tracking_uri, exp, args.bulk, seed=args.seed)
        print(json.dumps({"experiment_id": exp, "traces": len(ids)}))
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        run_live(args.tracking_uri, args.experiment, args.rate, seed=args.seed,
                 time_scale=args.time_scale, max_traces=args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
