"""Run a built judge on one trace within a deadline and read its verdict.

:func:`run_judge` runs the judge in a daemon thread under :func:`bounded_judge_calls` and stops
waiting at ``timeout_s`` (+0.25 s grace). Errors come back in ``JudgeVerdict.error`` with
``error_kind`` and ``retryable`` for the caller's retry policy; mlflow is imported lazily.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from samplers.verdicts import PassRule
from samplers.verdicts import verdict as read_verdict
from trace_tui.judging.build import runtime_of
from trace_tui.judging.mlflow_hooks import (
    JudgeDeadlineExceeded,
    bounded_judge_calls,
    install_mlflow_hooks,
)
from trace_tui.judging.spec import JudgeSpec

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Trace

_JOIN_GRACE_S = 0.25


@dataclass
class JudgeVerdict:
    """The outcome of one judge call on one trace.

    ``value`` is the judge's result (bool, number, or a string such as ``"yes"``/``"no"``);
    ``passed`` maps it to pass/fail where that is meaningful (yes/no, bool, a number with a
    ``pass_threshold``), else None. On failure ``value`` is None and ``error`` is a one-line
    message; ``error_kind`` is one of ``timeout``, ``rate_limited``, ``server_error``,
    ``connection``, ``http_error``, ``bad_response``, ``config``, ``other``.
    """

    judge: str
    value: bool | float | int | str | None = None
    passed: bool | None = None
    rationale: str | None = None
    error: str | None = None
    error_kind: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        """Whether the error is transient (a retry may succeed)."""
        return self.error_kind in {"timeout", "rate_limited", "server_error", "connection"}


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _classify(exc: BaseException) -> str:
    import requests

    for e in _exception_chain(exc):
        status = getattr(e, "status_code", None)
        if type(e).__name__ == "ChatCompletionError" and isinstance(status, int):
            if status == 429:
                return "rate_limited"
            if status >= 500:
                return "server_error"
            return "http_error"
        if isinstance(e, JudgeDeadlineExceeded | requests.exceptions.Timeout | TimeoutError):
            return "timeout"
        if isinstance(e, requests.exceptions.ConnectionError):
            return "connection"
    text = str(exc)
    if "Failed to parse response" in text or isinstance(exc, KeyError | ValueError):
        return "bad_response"
    if "must be set" in text or "No suitable adapter" in text:
        return "config"
    return "other"


def _plain_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        value = value.value
    return value


def _normalise_value(value: Any, value_type: str | None) -> Any:
    value = _plain_value(value)
    if value_type == "bool" and isinstance(value, str):
        read = read_verdict(value)
        if read is not None:
            return read
    elif value_type == "yes_no" and isinstance(value, bool):
        return "yes" if value else "no"
    elif value_type in ("float", "int") and isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
            return int(number) if value_type == "int" and number.is_integer() else number
    return value


def _passed(value: Any, value_type: str | None, threshold: float | None) -> bool | None:
    return read_verdict(value, PassRule(value_type, threshold))  # the one verdict vocabulary


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None else int(float(value))
    except (TypeError, ValueError):
        return None


def _as_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _verdict_from_feedback(
    name: str, result: Any, spec: JudgeSpec | None, redact: Any, latency: float
) -> JudgeVerdict:
    feedbacks = result if isinstance(result, list) else [result]
    verdict = JudgeVerdict(judge=name, latency_s=latency)
    if not feedbacks:
        verdict.error = "the scorer returned no feedback (e.g. no retriever spans in the trace)"
        verdict.error_kind = "bad_response"
        return verdict
    value_type = spec.feedback_value_type if spec else None
    threshold = spec.pass_threshold if spec else None
    values, passes, rationales, errors = [], [], [], []
    tokens_in = tokens_out = cost = None
    for fb in feedbacks:
        if not hasattr(fb, "value"):  # a plain value from a custom scorer
            values.append(_normalise_value(fb, value_type))
            passes.append(_passed(values[-1], value_type, threshold))
            continue
        err = getattr(fb, "error", None)
        if err is not None:
            code = getattr(err, "error_code", None) or "ERROR"
            message = getattr(err, "error_message", None) or str(err)
            errors.append(f"{code}: {message}")
        else:
            values.append(_normalise_value(fb.value, value_type))
            passes.append(_passed(values[-1], value_type, threshold))
        if getattr(fb, "rationale", None):
            rationales.append(str(fb.rationale))
        meta = getattr(fb, "metadata", None) or {}
        if (t := _as_int(meta.get("mlflow.assessment.judgeInputTokens"))) is not None:
            tokens_in = (tokens_in or 0) + t
        if (t := _as_int(meta.get("mlflow.assessment.judgeOutputTokens"))) is not None:
            tokens_out = (tokens_out or 0) + t
        if (c := _as_float(meta.get("mlflow.assessment.judgeCost"))) is not None:
            cost = (cost or 0.0) + c
    verdict.input_tokens, verdict.output_tokens, verdict.cost_usd = tokens_in, tokens_out, cost
    verdict.rationale = redact("\n".join(rationales)) if rationales else None
    if errors:
        verdict.error = redact(_one_line("; ".join(errors)))
        low = verdict.error.lower()
        verdict.error_kind = (
            "rate_limited" if "rate" in low and "limit" in low
            else "timeout" if "timed out" in low or "timeout" in low
            else "other"
        )
        return verdict
    if len(values) == 1:
        verdict.value, verdict.passed = values[0], passes[0]
    else:  # several feedbacks (e.g. one per retriever span): pass only if all pass
        verdict.passed = None if any(p is None for p in passes) else all(passes)
        verdict.value = values[0] if len(set(map(repr, values))) == 1 else (
            ("yes" if verdict.passed else "no") if verdict.passed is not None else values[0]
        )
    return verdict


def run_judge(
    judge: Any,
    trace: Trace,
    *,
    timeout_s: float,
    max_internal_retries: int = 0,
) -> JudgeVerdict:
    """Run ``judge`` on ``trace`` and return within ~``timeout_s`` seconds; never raises for
    judge/endpoint failures (they come back as ``JudgeVerdict.error``).

    MLflow's own retries are capped at ``max_internal_retries`` (default 0: one HTTP attempt per
    model call, the caller owns retries) and everything runs against a deadline of
    ``timeout_s``. Blocking: call it from a worker thread (or use :func:`arun_judge`).
    """
    if not timeout_s or timeout_s <= 0:
        raise ValueError("timeout_s must be > 0")
    runtime = runtime_of(judge)
    spec = runtime.spec if runtime else None
    name = spec.name if spec else str(getattr(judge, "name", type(judge).__name__))
    redact = runtime.redact if runtime else (lambda text: text)
    kwargs: dict[str, Any] = {"trace": trace}
    if spec and spec.expected_response is not None:
        kwargs["expectations"] = {"expected_response": spec.expected_response}

    install_mlflow_hooks()
    started = time.monotonic()
    outcome: dict[str, Any] = {}

    def _target() -> None:
        try:
            with bounded_judge_calls(
                judge, max_retries=max_internal_retries, timeout_s=timeout_s
            ):
                outcome["result"] = judge(**kwargs)
        except BaseException as e:  # reported as an error verdict
            outcome["error"] = e

    thread = threading.Thread(target=_target, name=f"judge-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s + _JOIN_GRACE_S)
    latency = time.monotonic() - started
    if thread.is_alive():
        return JudgeVerdict(
            judge=name, error=f"judge timed out after {timeout_s:g}s", error_kind="timeout",
            latency_s=latency,
        )
    if "error" in outcome:
        exc = outcome["error"]
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return JudgeVerdict(
            judge=name,
            error=redact(_one_line(f"{type(exc).__name__}: {message}")),
            error_kind=_classify(exc),
            latency_s=latency,
        )
    return _verdict_from_feedback(name, outcome.get("result"), spec, redact, latency)


async def arun_judge(
    judge: Any, trace: Trace, *, timeout_s: float, max_internal_retries: int = 0
) -> JudgeVerdict:
    """:func:`run_judge` off the event loop (in the default executor)."""
    import asyncio

    return await asyncio.to_thread(
        run_judge, judge, trace, timeout_s=timeout_s, max_internal_retries=max_internal_retries
    )
