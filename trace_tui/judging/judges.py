"""Build real MLflow judges from a declaration and run one on one trace with a bounded time.

This module imports fast: ``mlflow`` (several seconds to import) is only imported inside the
functions that need it (:func:`build_judge`, :func:`run_judge`, :func:`trace_from_rest_json`).

Declarations
    ``JudgeSpec.from_decl(name, scorer, options)`` validates a declaration without importing
    mlflow and raises :class:`JudgeConfigError` (one line, naming the judge and the key).
    ``scorer`` is ``make_judge`` or ``builtin:<Class>`` (RelevanceToQuery, Safety, Guidelines,
    Correctness, RetrievalGroundedness). ``options`` keys: ``model`` (required MLflow model URI,
    ``openai:/gpt-4o-mini``), ``base_url`` (an OpenAI ``/v1`` base or the full
    ``/v1/chat/completions`` URL, normalised to both forms), ``api_key_env`` (the *name* of an
    env var; the value is read by :func:`build_judge` and never printed), ``instructions`` and
    ``feedback_value_type`` (make_judge), ``guidelines`` (Guidelines), ``expected_response``
    (Correctness or a ``{{ expectations }}`` judge), ``pass_threshold`` (numeric judges),
    ``inference_params`` and ``description``.

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
    ``ContextVar``, and two hooks installed once into ``mlflow.genai.judges.adapters.
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

    :func:`run_judge` additionally runs the judge in a daemon thread and stops waiting at
    ``timeout_s`` (+0.25 s grace), so it returns within the timeout even if something outside
    the HTTP path blocks. Errors come back in ``JudgeVerdict.error`` with ``error_kind`` and
    ``retryable`` for the caller's retry policy.

Traces from REST JSON
    :func:`trace_from_rest_json` turns the JSON of ``GET /api/3.0/mlflow/traces/get`` (or one
    ``batchGet`` item) into an ``mlflow.entities.Trace`` without a network round trip:
    ``google.protobuf.json_format.ParseDict`` into ``mlflow.protos.service_pb2.Trace`` (the
    REST JSON *is* that proto's JSON form: base64 span ids, AnyValue attribute trees, RFC 3339
    times), then ``Trace.from_proto`` (``TraceInfo.from_proto`` + ``Span.from_otel_proto``).
    MLflow-native dicts (``Trace.to_dict()``: ``{"info", "data": {"spans"}}``) go through
    ``Trace.from_dict``.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import ipaddress
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trace_tui.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Trace

__all__ = [
    "BUILTIN_SCORERS",
    "FEEDBACK_VALUE_TYPES",
    "JudgeConfigError",
    "JudgeDeadlineExceeded",
    "JudgeSpec",
    "JudgeVerdict",
    "arun_judge",
    "bounded_judge_calls",
    "build_judge",
    "judge_spec_of",
    "run_judge",
    "trace_from_rest_json",
]

BUILTIN_SCORERS = (
    "RelevanceToQuery",
    "Safety",
    "Guidelines",
    "Correctness",
    "RetrievalGroundedness",
)
SCORER_KINDS = ("make_judge", *(f"builtin:{name}" for name in BUILTIN_SCORERS))
FEEDBACK_VALUE_TYPES = ("bool", "float", "int", "str", "yes_no")
OPTION_KEYS = (
    "model",
    "base_url",
    "api_key_env",
    "instructions",
    "feedback_value_type",
    "guidelines",
    "expected_response",
    "pass_threshold",
    "inference_params",
    "description",
)
TEMPLATE_VARIABLES = ("inputs", "outputs", "expectations", "conversation", "trace")
LOCAL_PLACEHOLDER_KEY = "trace-tui-local-placeholder"  # sent only to loopback endpoints
_COMPLETIONS_SUFFIX = "/chat/completions"
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MODEL_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):/(.+)$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOIN_GRACE_S = 0.25
_RUNTIME_ATTR = "_trace_tui_runtime"
_PASS_STRINGS = {"yes", "true", "pass", "passed"}
_FAIL_STRINGS = {"no", "false", "fail", "failed"}


class JudgeConfigError(ConfigError, ValueError):
    """A judge declaration is invalid; ``str(exc)`` names the judge and the key (one line)."""

    def __init__(self, judge: str, key: str, problem: str) -> None:
        self.judge = judge
        self.key = key
        self.problem = " ".join(str(problem).split())
        super().__init__(f"judge {judge!r}: {key}: {self.problem}")


class JudgeDeadlineExceeded(TimeoutError):
    """Raised inside a judge call when its deadline leaves no time for another attempt."""


# --------------------------------------------------------------------------- declarations


def _is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normalise_base_url(judge: str, raw: Any) -> tuple[str, str]:
    """``(api_base, completions_url)`` from a ``/v1`` base or a full completions URL."""
    if not isinstance(raw, str) or not raw.strip():
        raise JudgeConfigError(judge, "base_url", "must be a non-empty URL string")
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeConfigError(
            judge, "base_url", f"must be an http(s) URL with a host, got {url!r}"
        )
    if parts.query or parts.fragment:
        raise JudgeConfigError(judge, "base_url", "must not carry a query string or fragment")
    url = url.rstrip("/")
    base = url.removesuffix(_COMPLETIONS_SUFFIX)
    if not urlsplit(base).hostname:
        raise JudgeConfigError(judge, "base_url", f"no base left in {url!r}")
    return base, base + _COMPLETIONS_SUFFIX


@dataclass(frozen=True)
class JudgeSpec:
    """A validated judge declaration. Holds the *name* of the key's env var, never the key."""

    name: str
    scorer: str
    model: str
    base_url: str | None = None  # normalised OpenAI-style base, e.g. http://127.0.0.1:5099/v1
    api_key_env: str | None = None
    instructions: str | None = None
    feedback_value_type: str | None = None  # make_judge only; defaults to "yes_no"
    guidelines: tuple[str, ...] | None = None
    expected_response: str | None = None
    pass_threshold: float | None = None
    inference_params: Mapping[str, Any] | None = field(default=None, compare=False)
    description: str | None = None

    @property
    def provider(self) -> str:
        return self.model.split(":/", 1)[0]

    @property
    def builtin(self) -> str | None:
        """The built-in scorer class name, or None for make_judge."""
        return self.scorer.split(":", 1)[1] if self.scorer.startswith("builtin:") else None

    @property
    def completions_url(self) -> str | None:
        """The full endpoint URL (what ``make_judge(base_url=...)`` wants)."""
        return self.base_url + _COMPLETIONS_SUFFIX if self.base_url else None

    @property
    def template_variables(self) -> tuple[str, ...]:
        if not self.instructions:
            return ()
        found = dict.fromkeys(_TEMPLATE_RE.findall(self.instructions))
        return tuple(found)

    @property
    def trace_aware(self) -> bool:
        """True for judges that inspect the whole trace through tool calls (costly in tokens)."""
        return "trace" in self.template_variables or self.builtin == "RetrievalGroundedness"

    @classmethod
    def from_decl(cls, name: str, scorer: str, options: Mapping[str, Any] | None) -> JudgeSpec:
        """Validate a declaration; raises :class:`JudgeConfigError` naming the judge and key."""
        if not isinstance(name, str) or not name.strip():
            raise JudgeConfigError(str(name), "name", "must be a non-empty string")
        name = name.strip()
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise JudgeConfigError(name, "options", "must be a table/dict of options")
        unknown = sorted(str(k) for k in options if k not in OPTION_KEYS)
        if unknown:
            raise JudgeConfigError(
                name, unknown[0], f"unknown option (known: {', '.join(OPTION_KEYS)})"
            )
        if not isinstance(scorer, str) or scorer.strip() not in SCORER_KINDS:
            raise JudgeConfigError(
                name, "scorer", f"unknown scorer {scorer!r} (one of: {', '.join(SCORER_KINDS)})"
            )
        scorer = scorer.strip()
        builtin = scorer.split(":", 1)[1] if scorer.startswith("builtin:") else None

        def opt_str(key: str, *, required: bool = False) -> str | None:
            value = options.get(key)
            if value is None:
                if required:
                    raise JudgeConfigError(name, key, "is required")
                return None
            if not isinstance(value, str) or not value.strip():
                raise JudgeConfigError(name, key, "must be a non-empty string")
            return value.strip()

        def only_for(key: str, allowed: bool, what: str) -> None:
            if options.get(key) is not None and not allowed:
                raise JudgeConfigError(name, key, f"only applies to {what}, not {scorer}")

        model = opt_str("model", required=True)
        assert model is not None
        m = _MODEL_URI_RE.match(model)
        if not m:
            raise JudgeConfigError(
                name, "model", f"must be an MLflow model URI like 'openai:/gpt-4o-mini', got "
                f"{model!r}"
            )
        provider = m.group(1)

        base_url = None
        if options.get("base_url") is not None:
            base_url, _ = _normalise_base_url(name, options["base_url"])
            if provider != "openai" and builtin is not None:
                raise JudgeConfigError(
                    name, "base_url",
                    f"built-in scorers can only be pointed at an OpenAI-compatible endpoint "
                    f"(model 'openai:/...'), not {provider!r}",
                )

        api_key_env = opt_str("api_key_env")
        if api_key_env is not None:
            if not _ENV_NAME_RE.match(api_key_env):
                raise JudgeConfigError(
                    name, "api_key_env",
                    "must be the NAME of an environment variable (letters, digits, _), "
                    "not the key itself",
                )
            if provider != "openai":
                raise JudgeConfigError(
                    name, "api_key_env",
                    f"is only supported for 'openai:/' models; the {provider!r} provider reads "
                    f"its own environment variable",
                )

        only_for("instructions", builtin is None, "make_judge")
        only_for("feedback_value_type", builtin is None, "make_judge")
        only_for("guidelines", builtin == "Guidelines", "builtin:Guidelines")
        only_for(
            "expected_response",
            builtin == "Correctness" or builtin is None,
            "builtin:Correctness or make_judge",
        )

        instructions = opt_str("instructions", required=builtin is None)
        feedback_value_type = None
        if builtin is None:
            assert instructions is not None
            found = _TEMPLATE_RE.findall(instructions)
            bad = sorted({v for v in found if v not in TEMPLATE_VARIABLES})
            if bad:
                raise JudgeConfigError(
                    name, "instructions",
                    f"unsupported template variable {{{{ {bad[0]} }}}} (MLflow allows: "
                    f"{', '.join(TEMPLATE_VARIABLES)})",
                )
            if not found:
                raise JudgeConfigError(
                    name, "instructions",
                    "must reference at least one of {{ inputs }}, {{ outputs }}, "
                    "{{ expectations }}, {{ conversation }}, {{ trace }}",
                )
            fvt = options.get("feedback_value_type", "yes_no")
            if fvt not in FEEDBACK_VALUE_TYPES:
                raise JudgeConfigError(
                    name, "feedback_value_type",
                    f"must be one of {', '.join(FEEDBACK_VALUE_TYPES)}, got {fvt!r}",
                )
            feedback_value_type = fvt

        guidelines = None
        if builtin == "Guidelines":
            raw = options.get("guidelines")
            items = [raw] if isinstance(raw, str) else raw
            if (
                not isinstance(items, list | tuple)
                or not items
                or not all(isinstance(g, str) and g.strip() for g in items)
            ):
                raise JudgeConfigError(
                    name, "guidelines", "is required: a non-empty string or list of strings"
                )
            guidelines = tuple(g.strip() for g in items)

        expected_response = opt_str("expected_response")

        pass_threshold = options.get("pass_threshold")
        if pass_threshold is not None:
            if isinstance(pass_threshold, bool) or not isinstance(pass_threshold, int | float):
                raise JudgeConfigError(name, "pass_threshold", "must be a number")
            if not math.isfinite(pass_threshold):
                raise JudgeConfigError(name, "pass_threshold", "must be finite")
            if feedback_value_type not in ("float", "int"):
                raise JudgeConfigError(
                    name, "pass_threshold",
                    "only applies to make_judge with feedback_value_type float or int",
                )
            pass_threshold = float(pass_threshold)

        inference_params = options.get("inference_params")
        if inference_params is not None:
            if not isinstance(inference_params, Mapping) or not all(
                isinstance(k, str) for k in inference_params
            ):
                raise JudgeConfigError(name, "inference_params", "must be a table/dict")
            inference_params = dict(inference_params)

        return cls(
            name=name,
            scorer=scorer,
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            instructions=instructions,
            feedback_value_type=feedback_value_type,
            guidelines=guidelines,
            expected_response=expected_response,
            pass_threshold=pass_threshold,
            inference_params=inference_params,
            description=opt_str("description"),
        )


# --------------------------------------------------------------------------- runtime state


class _JudgeRuntime:
    """What a built judge needs at call time. The key is kept out of every repr."""

    __slots__ = ("_api_key", "api_base", "spec")

    def __init__(self, spec: JudgeSpec, api_key: str | None, api_base: str | None) -> None:
        self.spec = spec
        self._api_key = api_key
        self.api_base = api_base

    @property
    def api_key(self) -> str | None:
        return self._api_key

    def redact(self, text: str) -> str:
        if self._api_key and len(self._api_key) >= 4:
            return text.replace(self._api_key, "***")
        return text

    def __repr__(self) -> str:
        return (
            f"_JudgeRuntime(judge={self.spec.name!r}, api_base={self.api_base!r}, "
            f"api_key_env={self.spec.api_key_env!r}, api_key=<redacted>)"
        )


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


def _install_mlflow_hooks() -> None:
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
                    f"mlflow version is not supported by trace_tui.judges"
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


def _openai_provider(model: str, policy: _CallPolicy) -> Any:
    """MLflow's OpenAI provider for ``model``, with the judge's own key and base URL."""
    from mlflow.gateway.config import EndpointConfig
    from mlflow.gateway.providers.openai import OpenAIConfig, OpenAIProvider

    api_key = policy.api_key or os.environ.get("OPENAI_API_KEY")
    if not api_key:
        from mlflow.exceptions import MlflowException

        raise MlflowException.invalid_parameter_value(
            "no API key for the openai provider (set OPENAI_API_KEY or the judge's api_key_env)"
        )
    api_base = policy.api_base or os.environ.get("OPENAI_API_BASE") or os.environ.get(
        "OPENAI_BASE_URL"
    )
    config = OpenAIConfig(openai_api_key=api_key, openai_api_base=api_base)
    return OpenAIProvider(
        EndpointConfig(
            name="openai",
            endpoint_type="llm/v1/chat",
            model={"provider": "openai", "name": model, "config": config.model_dump()},
        )
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
            resp = requests.post(
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
    runtime = getattr(judge, _RUNTIME_ATTR, None) if judge is not None else None
    if not isinstance(runtime, _JudgeRuntime):
        runtime = None
    _install_mlflow_hooks()
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


# --------------------------------------------------------------------------- building


def _resolve_api_key(spec: JudgeSpec) -> tuple[str | None, str | None]:
    """``(api_key, api_base)`` for an openai judge; the key is read from the env right now."""
    if spec.provider != "openai":
        return None, None
    env_name = spec.api_key_env or "OPENAI_API_KEY"
    effective_base = (
        spec.base_url or os.environ.get("OPENAI_API_BASE") or os.environ.get("OPENAI_BASE_URL")
    )
    key = os.environ.get(env_name) or None
    if key is None:
        if _is_loopback_url(effective_base):
            key = LOCAL_PLACEHOLDER_KEY
        else:
            where = effective_base or "the default OpenAI endpoint"
            raise JudgeConfigError(
                spec.name, "api_key_env",
                f"environment variable {env_name} is not set (needed for {where}; a placeholder "
                f"is only used for a 127.0.0.1 base_url)",
            )
    return key, spec.base_url


def _feedback_type(name: str) -> Any:
    from typing import Literal

    return {
        "bool": bool,
        "float": float,
        "int": int,
        "str": str,
        "yes_no": Literal["yes", "no"],
    }[name]


def build_judge(spec: JudgeSpec) -> Any:
    """Build the MLflow scorer for ``spec`` (a ``make_judge`` Judge or a built-in scorer).

    Reads the API key from ``spec.api_key_env`` (default ``OPENAI_API_KEY``) now; raises
    :class:`JudgeConfigError` if it is unset and the endpoint is not on loopback. The key is
    attached to the returned object out of its repr and serialisation, and is only used by
    :func:`run_judge` / :func:`bounded_judge_calls`. Called directly (``judge(trace=...)``) the
    scorer behaves like a plain MLflow scorer (process-wide ``OPENAI_*`` env, MLflow retries).
    """
    api_key, api_base = _resolve_api_key(spec)
    # MLflow looks the judge model up in a model catalog it fetches from github.com on the first
    # call per provider (3 retries, 5 s timeout each) inside the judge call, unbounded by our
    # deadline: ~7 s offline, up to ~30 s behind a black-holing firewall. "" = bundled catalog.
    os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
    from mlflow.exceptions import MlflowException

    inference_params = dict(spec.inference_params) if spec.inference_params else None
    try:
        if spec.builtin is None:
            from mlflow.genai.judges import make_judge

            assert spec.instructions is not None and spec.feedback_value_type is not None
            judge = make_judge(
                name=spec.name,
                instructions=spec.instructions,
                model=spec.model,
                description=spec.description,
                feedback_value_type=_feedback_type(spec.feedback_value_type),
                inference_params=inference_params,
                base_url=spec.completions_url,
            )
        else:
            from mlflow.genai import scorers

            cls = getattr(scorers, spec.builtin, None)
            if cls is None:
                raise JudgeConfigError(
                    spec.name, "scorer",
                    f"{spec.scorer} is not available in the installed mlflow",
                )
            kwargs: dict[str, Any] = {"name": spec.name, "model": spec.model}
            if spec.guidelines is not None:
                kwargs["guidelines"] = list(spec.guidelines)
            if inference_params:
                kwargs["inference_params"] = inference_params
            if spec.description:
                kwargs["description"] = spec.description
            judge = cls(**kwargs)
    except MlflowException as e:
        key = "instructions" if spec.builtin is None else "scorer"
        msg = e.message if hasattr(e, "message") else str(e)
        raise JudgeConfigError(spec.name, key, msg) from None
    except (TypeError, ValueError) as e:
        if isinstance(e, JudgeConfigError):
            raise
        raise JudgeConfigError(spec.name, "options", str(e)) from None
    object.__setattr__(judge, _RUNTIME_ATTR, _JudgeRuntime(spec, api_key, api_base))
    return judge


def judge_spec_of(judge: Any) -> JudgeSpec | None:
    """The spec a judge was built from by :func:`build_judge`, else None."""
    runtime = getattr(judge, _RUNTIME_ATTR, None)
    return runtime.spec if isinstance(runtime, _JudgeRuntime) else None


# --------------------------------------------------------------------------- running


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
        low = value.strip().lower()
        if low in _PASS_STRINGS:
            return True
        if low in _FAIL_STRINGS:
            return False
    elif value_type == "yes_no" and isinstance(value, bool):
        return "yes" if value else "no"
    elif value_type in ("float", "int") and isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
            return int(number) if value_type == "int" and number.is_integer() else number
    return value


def _passed(value: Any, threshold: float | None) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _PASS_STRINGS:
            return True
        if low in _FAIL_STRINGS:
            return False
        return None
    if isinstance(value, int | float) and threshold is not None:
        return float(value) >= threshold
    return None


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
            passes.append(_passed(values[-1], threshold))
            continue
        err = getattr(fb, "error", None)
        if err is not None:
            code = getattr(err, "error_code", None) or "ERROR"
            message = getattr(err, "error_message", None) or str(err)
            errors.append(f"{code}: {message}")
        else:
            values.append(_normalise_value(fb.value, value_type))
            passes.append(_passed(values[-1], threshold))
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
    runtime = getattr(judge, _RUNTIME_ATTR, None)
    if not isinstance(runtime, _JudgeRuntime):
        runtime = None
    spec = runtime.spec if runtime else None
    name = spec.name if spec else str(getattr(judge, "name", type(judge).__name__))
    redact = runtime.redact if runtime else (lambda text: text)
    kwargs: dict[str, Any] = {"trace": trace}
    if spec and spec.expected_response is not None:
        kwargs["expectations"] = {"expected_response": spec.expected_response}

    _install_mlflow_hooks()
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


# --------------------------------------------------------------------------- REST JSON -> Trace


def trace_from_rest_json(payload: Mapping[str, Any]) -> Trace:
    """An ``mlflow.entities.Trace`` from MLflow REST JSON, without a network round trip.

    Accepts ``{"trace": {"trace_info": ..., "spans": [...]}}`` (``traces/get``), a ``batchGet``
    item ``{"trace_info": ..., "spans": [...]}`` (OTel-proto JSON spans; int64 as numbers or
    strings), or MLflow-native ``{"info": ..., "data": {"spans": [...]}}`` (``Trace.to_dict()``).
    Raises ``ValueError`` naming the problem for anything else.
    """
    if not isinstance(payload, Mapping):
        raise ValueError("trace JSON must be an object")
    if "trace" in payload and isinstance(payload["trace"], Mapping):
        payload = payload["trace"]
    from mlflow.entities import Trace

    if "info" in payload and "data" in payload:
        return Trace.from_dict(dict(payload))
    if "trace_info" not in payload:
        raise ValueError("trace JSON has no 'trace_info' (expected a traces/get or batchGet item)")
    spans = payload.get("spans") or []
    if not isinstance(spans, list):
        raise ValueError("trace JSON 'spans' must be a list")
    from google.protobuf.json_format import ParseDict, ParseError
    from mlflow.protos.service_pb2 import Trace as ProtoTrace

    native = [s for s in spans if isinstance(s, Mapping) and isinstance(s.get("attributes"), dict)]
    try:
        if native and len(native) == len(spans):
            # trace_info from the proto JSON, spans in MLflow-native form (get-trace-artifact).
            from mlflow.entities import Span, TraceData, TraceInfo

            proto = ParseDict(
                {"trace_info": payload["trace_info"]}, ProtoTrace(), ignore_unknown_fields=True
            )
            return Trace(
                info=TraceInfo.from_proto(proto.trace_info),
                data=TraceData(spans=[Span.from_dict(dict(s)) for s in spans]),
            )
        proto = ParseDict(
            {"trace_info": payload["trace_info"], "spans": spans},
            ProtoTrace(),
            ignore_unknown_fields=True,
        )
    except ParseError as e:
        raise ValueError(f"trace JSON does not match MLflow's Trace proto: {e}") from None
    return Trace.from_proto(proto)
