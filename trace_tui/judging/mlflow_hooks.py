"""Patches of MLflow internals that bound a judge call's retries and time.

MLflow's internal judge retries (mlflow 3.17.2, what we found in the installed source)
MLflow's internal judge retries (mlflow 3.17.2, what we found in the installed source)
    * ``make_judge`` judges and the built-in scorers all end in
      ``mlflow.genai.judges.utils.invocation_utils.invoke_judge_model(..., num_retries=10)``.
      No caller passes ``num_retries``; there is **no environment variable and no judge or
      scorer parameter** for it.
    * For ``openai:/``, ``anthropic:/`` ... URIs the adapter is
      ``adapters.gateway_adapter.GatewayAdapter``; its tool loop calls
      ``adapters.utils.send_chat_request(endpoint, headers, payload, num_retries)``, which makes
      ``1 + num_retries`` attempts on HTTP 429/500/502/503 (``MLFLOW_GATEWAY_CLIENT_QUERY_RETRY_
      CODES``), on ``requests`` timeouts and on connection errors, sleeping
      ``min(2 ** attempt, 30)`` s in between (1+2+4+8+16+30*5 = 181 s), then raises. 400 is not
      retried (except one retry without ``response_format`` on a structured-output error).
    * Each HTTP attempt uses ``timeout=MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS`` (env, default 300 s),
      so a hung endpoint can hold one attempt for 5 minutes, and 11 attempts for ~58 minutes.
    * The tool loop is capped by ``MLFLOW_JUDGE_MAX_ITERATIONS`` (env, default 30).
    * ``mlflow.genai.evaluate`` only switches off *429* retries (``eval_retry_context`` ->
      ``rest_utils.disable_429_retry`` / litellm), which ``send_chat_request`` does not consult.
    * ``Scorer.run()`` has its own ``timeout`` (daemon thread + join), but that only abandons the
      thread; MLflow's retries keep running in it.
    * Not a retry knob, but the same trap: the first judge call per provider looks the model up
      (context window, cost) in a catalog fetched from ``MLFLOW_MODEL_CATALOG_URI`` (github.com
      by default) with 3 retries and a 5 s timeout, inside the judge call. Offline that cost
      ~7 s here (DNS failure + backoff) and can reach ~30 s behind a dropping firewall.
      :func:`build_judge` therefore does ``os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI",
      "")`` (= use the catalog bundled with mlflow); set the variable yourself to override.

How we bound them
    :func:`bounded_judge_calls` (used by :func:`run_judge`) sets a per-call policy in a

How we bound them
    gateway_adapter`` consult it (they are pass-through when no policy is active, so MLflow
    behaves as usual elsewhere in the process):

    * ``send_chat_request`` is replaced by an equivalent loop that makes at most
      ``1 + min(num_retries, policy.max_retries)`` attempts (default ``max_retries=0``: the caller
      owns the retry policy), never sleeps past the deadline, and caps every HTTP timeout at the
      time left (``min(MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS, remaining)``). Errors keep MLflow's
      types (``ChatCompletionError`` with the status code, ``MlflowException``), so MLflow's own
      handling (context-window pruning, the response_format fallback) is unchanged.
    * ``_get_provider_instance`` builds the ``openai`` provider from the judge's own key and base
      URL instead of the process-wide ``OPENAI_API_KEY``/``OPENAI_API_BASE``. That is what lets a
      built-in scorer (which has no ``base_url`` parameter) talk to a per-judge endpoint, and
      lets judges with different keys run concurrently without touching ``os.environ``.

    * Every HTTP attempt goes through a pooled ``requests.Session`` (checked out for the
      attempt, returned after), where MLflow's ``requests.post`` opens a new TCP connection per
      model call: about a quarter of an evaluation worker's CPU at concurrency 32.
    * The ``openai`` provider built for a judge's key and base URL is cached per (model, key,
      base URL) instead of being validated again (pydantic) on every model call.

    :func:`run_judge` additionally runs the judge in a daemon thread and stops waiting at
    ``timeout_s`` (+0.25 s grace), so it returns within the timeout even if something outside
    the HTTP path blocks. Errors come back in ``JudgeVerdict.error`` with ``error_kind`` and
    ``retryable`` for the caller's retry policy.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trace_tui.judging.build import runtime_of


class JudgeDeadlineExceeded(TimeoutError):
    """Raised inside a judge call when its deadline leaves no time for another attempt."""


@dataclass(frozen=True)
class _CallPolicy:
    deadline: float | None  # time.monotonic() value
    max_retries: int
    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None

    def remaining(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()


_POLICY: contextvars.ContextVar[_CallPolicy | None] = contextvars.ContextVar(
    "trace_tui_judge_policy", default=None
)
_HOOK_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def install_mlflow_hooks() -> None:
    """Install the two pass-through hooks into MLflow's gateway judge adapter (idempotent)."""
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    with _HOOK_LOCK:
        if _HOOKS_INSTALLED:
            return
        from mlflow.genai.judges.adapters import gateway_adapter as ga

        for attr in ("send_chat_request", "_get_provider_instance"):
            if not callable(getattr(ga, attr, None)):
                raise RuntimeError(
                    f"mlflow.genai.judges.adapters.gateway_adapter.{attr} not found: this "
                    f"mlflow version is not supported by trace_tui.judging"
                )
        original_send = ga.send_chat_request
        original_provider = ga._get_provider_instance

        def send_chat_request(endpoint, headers, payload, num_retries):
            policy = _POLICY.get()
            if policy is None:
                return original_send(endpoint, headers, payload, num_retries)
            return _bounded_send_chat_request(policy, endpoint, headers, payload, num_retries)

        def get_provider_instance(provider, model, base_url=None):
            policy = _POLICY.get()
            if policy is None or provider != "openai" or not (policy.api_key or policy.api_base):
                return original_provider(provider, model, base_url=base_url)
            return _openai_provider(model, policy)

        send_chat_request.__wrapped__ = original_send  # type: ignore[attr-defined]
        get_provider_instance.__wrapped__ = original_provider  # type: ignore[attr-defined]
        ga.send_chat_request = send_chat_request
        ga._get_provider_instance = get_provider_instance
        _HOOKS_INSTALLED = True


_SESSIONS: collections.deque[Any] = collections.deque()  # idle sessions, last used on the right


@contextlib.contextmanager
def _session() -> Iterator[Any]:
    """A pooled ``requests.Session`` for one HTTP attempt (one per concurrent attempt, so no
    session is shared between threads; its kept-alive connections serve later calls). Last
    in, first out: the most recently used session, whose connection is still open, goes next.
    """
    try:
        session = _SESSIONS.pop()  # deque.pop/append are atomic: no lock needed
    except IndexError:
        import requests

        session = requests.Session()
    try:
        yield session
    finally:
        _SESSIONS.append(session)


def _openai_provider(model: str, policy: _CallPolicy) -> Any:
    """MLflow's OpenAI provider for ``model``, with the judge's own key and base URL."""
    api_key = policy.api_key or os.environ.get("OPENAI_API_KEY")
    api_base = policy.api_base or os.environ.get("OPENAI_API_BASE") or os.environ.get(
        "OPENAI_BASE_URL"
    )
    return _cached_openai_provider(model, api_key, api_base)


@functools.lru_cache(maxsize=64)
def _cached_openai_provider(model: str, api_key: str | None, api_base: str | None) -> Any:
    from mlflow.gateway.config import EndpointConfig
    from mlflow.gateway.providers.openai import OpenAIConfig, OpenAIProvider

    if not api_key:
        from mlflow.exceptions import MlflowException

        raise MlflowException.invalid_parameter_value(
            "no API key for the openai provider (set OPENAI_API_KEY or the judge's api_key_env)"
        )
    config = OpenAIConfig(openai_api_key=api_key, openai_api_base=api_base)
    return OpenAIProvider(
        EndpointConfig.model_validate({
            "name": "openai",
            "endpoint_type": "llm/v1/chat",
            "model": {"provider": "openai", "name": model, "config": config.model_dump()},
        })
    )


def _bounded_send_chat_request(
    policy: _CallPolicy,
    endpoint: str,
    headers: dict[str, str],
    payload: dict[str, Any],
    num_retries: int,
) -> dict[str, Any]:
    """MLflow's ``send_chat_request`` with a retry budget and a deadline (same error types)."""
    import requests
    from mlflow.environment_variables import MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS
    from mlflow.exceptions import MlflowException
    from mlflow.gateway.constants import MLFLOW_GATEWAY_CLIENT_QUERY_RETRY_CODES
    from mlflow.genai.judges.adapters.utils import (
        ChatCompletionError,
        _safe_parse_error,
        is_context_window_error,
    )
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

    retries = max(0, min(int(num_retries), policy.max_retries))
    route_timeout = float(MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS.get())
    attempt = 0
    while True:
        remaining = policy.remaining()
        if remaining <= 0:
            raise JudgeDeadlineExceeded(f"judge deadline reached before attempt {attempt + 1}")
        timeout = min(route_timeout, remaining)
        error: BaseException
        try:
            with _session() as session:
                resp = session.post(
                    url=endpoint,
                    headers={"Content-Type": "application/json", **headers},
                    json=payload,
                    timeout=timeout,
                )
        except requests.exceptions.Timeout as e:
            error = MlflowException(
                f"Request to {endpoint} timed out after {timeout:.1f}s", error_code=INTERNAL_ERROR
            )
            error.__cause__ = e
        except requests.exceptions.ConnectionError as e:
            error = MlflowException(
                f"Failed to connect to {endpoint}: {e}", error_code=INTERNAL_ERROR
            )
            error.__cause__ = e
        else:
            if resp.status_code == 400:
                body = _safe_parse_error(resp)
                raise ChatCompletionError(
                    status_code=400,
                    message=body,
                    is_context_window_error=is_context_window_error(body),
                )
            if resp.status_code in MLFLOW_GATEWAY_CLIENT_QUERY_RETRY_CODES:
                error = ChatCompletionError(
                    status_code=resp.status_code,
                    message=f"HTTP {resp.status_code}: {_safe_parse_error(resp)}",
                )
            elif resp.status_code >= 400:
                raise ChatCompletionError(
                    status_code=resp.status_code,
                    message=f"HTTP {resp.status_code}: {_safe_parse_error(resp)}",
                )
            else:
                return resp.json()
        delay = min(2.0**attempt, 30.0)
        if attempt >= retries or delay >= policy.remaining():
            raise error
        time.sleep(delay)
        attempt += 1


@contextlib.contextmanager
def bounded_judge_calls(
    judge: Any = None, *, max_retries: int = 0, timeout_s: float | None = None
) -> Iterator[None]:
    """Bound MLflow's internal judge-model retries for judge calls made in this context.

    ``max_retries`` caps MLflow's own retries (0 = one HTTP attempt per model call; MLflow's
    default is 10 with backoff up to 30 s); ``timeout_s`` sets one deadline for all attempts,
    backoff sleeps and each HTTP timeout. Pass a ``judge`` built by :func:`build_judge` to also
    route ``openai:/`` calls with that judge's key and base URL. The policy lives in a
    ContextVar, so it follows ``contextvars.copy_context()`` into worker threads (as
    ``mlflow.genai.evaluate`` and ``Scorer.run(timeout)`` do) but not into a bare
    ``threading.Thread``.
    """
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    runtime = runtime_of(judge)
    install_mlflow_hooks()
    deadline = None if timeout_s is None else time.monotonic() + float(timeout_s)
    token = _POLICY.set(
        _CallPolicy(
            deadline=deadline,
            max_retries=int(max_retries),
            api_key=runtime.api_key if runtime else None,
            api_base=runtime.api_base if runtime else None,
        )
    )
    try:
        yield
    finally:
        _POLICY.reset(token)
