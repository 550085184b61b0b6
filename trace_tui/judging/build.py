"""Build a real MLflow judge (make_judge or a built-in scorer) from a :class:`JudgeSpec`.

The judge's API key is read from the environment when it is built and kept on the judge in a
:class:`JudgeRuntime`, out of every repr; :mod:`.mlflow_hooks` routes the judge's calls with it.
mlflow is imported inside :func:`build_judge` only.
"""

from __future__ import annotations

import os
from typing import Any

from trace_tui.judging.spec import JudgeConfigError, JudgeSpec, is_loopback_url

LOCAL_PLACEHOLDER_KEY = "trace-tui-local-placeholder"  # sent only to loopback endpoints
_RUNTIME_ATTR = "_trace_tui_runtime"


class JudgeRuntime:
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
            f"JudgeRuntime(judge={self.spec.name!r}, api_base={self.api_base!r}, "
            f"api_key_env={self.spec.api_key_env!r}, api_key=<redacted>)"
        )


def runtime_of(judge: Any) -> JudgeRuntime | None:
    """The runtime :func:`build_judge` attached to ``judge``, else None."""
    runtime = getattr(judge, _RUNTIME_ATTR, None) if judge is not None else None
    return runtime if isinstance(runtime, JudgeRuntime) else None


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
        if is_loopback_url(effective_base):
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
    object.__setattr__(judge, _RUNTIME_ATTR, JudgeRuntime(spec, api_key, api_base))
    _reuse_response_format(judge)
    return judge


def _reuse_response_format(judge: Any) -> None:
    """Build a ``make_judge`` judge's response-format model once, not on every call.

    mlflow 3.17's ``InstructionsJudge._create_response_format_model`` runs
    ``pydantic.create_model`` per call (about a fifth of a judge call's CPU in an evaluation
    worker), though the model depends only on the judge's fixed output fields (``result`` of
    its feedback type, ``rationale``). The judge keeps the first one it built. Judges without
    that method (built-in scorers, other mlflow versions) are left as they are.
    """
    make = getattr(type(judge), "_create_response_format_model", None)
    if not callable(make):
        return
    model = make(judge)
    object.__setattr__(judge, "_create_response_format_model", lambda: model)


def judge_spec_of(judge: Any) -> JudgeSpec | None:
    """The spec a judge was built from by :func:`build_judge`, else None."""
    runtime = runtime_of(judge)
    return runtime.spec if runtime else None
