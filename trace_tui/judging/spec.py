"""Judge declarations: validate one without importing mlflow.


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
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from trace_tui.core.errors import ConfigError

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
COMPLETIONS_SUFFIX = "/chat/completions"
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MODEL_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):/(.+)$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JudgeConfigError(ConfigError, ValueError):
    """A judge declaration is invalid; ``str(exc)`` names the judge and the key (one line)."""

    def __init__(self, judge: str, key: str, problem: str) -> None:
        self.judge = judge
        self.key = key
        self.problem = " ".join(str(problem).split())
        super().__init__(f"judge {judge!r}: {key}: {self.problem}")



def is_loopback_url(url: str | None) -> bool:
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
    base = url.removesuffix(COMPLETIONS_SUFFIX)
    if not urlsplit(base).hostname:
        raise JudgeConfigError(judge, "base_url", f"no base left in {url!r}")
    return base, base + COMPLETIONS_SUFFIX


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
        return self.base_url + COMPLETIONS_SUFFIX if self.base_url else None

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
