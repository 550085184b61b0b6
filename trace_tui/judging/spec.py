"""Judge declarations: each option's type, doc and checks, validated without mlflow.

``JudgeSpec.from_decl(name, scorer, options)`` validates a declaration (the options are
declared once in :class:`JudgeOptions`, which msgspec checks and docs/policy.md lists) and
raises :class:`JudgeConfigError` (one line, naming the judge and the key). ``scorer`` is
``make_judge`` or ``builtin:<Class>``. The API key's value is read by ``build_judge`` from
the variable named by ``api_key_env`` and never printed.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from samplers.parsing import Ctx, doc, explain
from trace_tui.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from samplers import Policy

BUILTIN_SCORERS = (
    "RelevanceToQuery",
    "Safety",
    "Guidelines",
    "Correctness",
    "RetrievalGroundedness",
)
SCORER_KINDS = ("make_judge", *(f"builtin:{name}" for name in BUILTIN_SCORERS))
FeedbackValueType = Literal["bool", "float", "int", "str", "yes_no"]
TEMPLATE_VARIABLES = ("inputs", "outputs", "expectations", "conversation", "trace")
COMPLETIONS_SUFFIX = "/chat/completions"
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MODEL_URI = r"^([A-Za-z][A-Za-z0-9_-]*):/(.+)$"
_NON_BLANK = "a non-empty string"
Text = Annotated[str, msgspec.Meta(pattern=r"\S")]  # not blank


class JudgeOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The options of a `[[judge]]` that trace_tui reads (samplers keeps them verbatim)."""

    model: Annotated[
        str,
        msgspec.Meta(pattern=_MODEL_URI),
        doc("MLflow model URI of the judge model, e.g. `openai:/gpt-4o-mini` (required).",
            expected="an MLflow model URI like 'openai:/gpt-4o-mini'"),
    ]  # fmt: skip
    base_url: Annotated[
        Text | None,
        doc("An OpenAI-compatible `/v1` base or the full `/v1/chat/completions` URL "
            "(built-in scorers: `openai:/` models only).", expected="an http(s) URL"),
    ] = None  # fmt: skip
    api_key_env: Annotated[
        Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None,
        doc("The NAME of the environment variable holding the API key (`openai:/` models; "
            "default `OPENAI_API_KEY`; a loopback `base_url` needs none).",
            message="must be the NAME of an environment variable (letters, digits, _), "
            "not the key itself"),
    ] = None  # fmt: skip
    instructions: Annotated[
        Text | None,
        doc("make_judge: the prompt, with at least one of {{ inputs }}, {{ outputs }}, "
            "{{ expectations }}, {{ conversation }}, {{ trace }} (required).",
            expected=_NON_BLANK),
    ] = None  # fmt: skip
    feedback_value_type: Annotated[
        FeedbackValueType | None, doc("make_judge: the verdict's type; default `yes_no`.")
    ] = None
    guidelines: Annotated[
        Text | Annotated[list[Text], msgspec.Meta(min_length=1)] | None,
        doc("builtin:Guidelines: a guideline or a list of them (required).",
            expected="a non-empty string or list of strings"),
    ] = None  # fmt: skip
    expected_response: Annotated[
        Text | None,
        doc("builtin:Correctness or make_judge ({{ expectations }}): the expected answer.",
            expected=_NON_BLANK),
    ] = None  # fmt: skip
    pass_threshold: Annotated[
        float | None,
        doc("make_judge with `feedback_value_type` float or int: the lowest passing score.",
            expected="a finite number"),
    ] = None  # fmt: skip
    inference_params: Annotated[
        dict[str, Any] | None, doc("Passed to the judge model, e.g. `{ temperature = 0 }`.")
    ] = None
    description: Annotated[Text | None, doc("Shown with the judge.", expected=_NON_BLANK)] = None


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
        try:
            o = msgspec.convert(dict(options), JudgeOptions, strict=True)
        except msgspec.ValidationError as exc:
            parts, problem = explain(dict(options), JudgeOptions, str(exc))
            raise JudgeConfigError(name, str(parts[0]) if parts else "options", problem) from None
        if not isinstance(scorer, str) or scorer.strip() not in SCORER_KINDS:
            raise JudgeConfigError(
                name, "scorer", f"unknown scorer {scorer!r} (one of: {', '.join(SCORER_KINDS)})"
            )
        scorer = scorer.strip()
        builtin = scorer.split(":", 1)[1] if scorer.startswith("builtin:") else None
        provider = o.model.split(":/", 1)[0]

        def only_for(key: str, allowed: bool, what: str) -> None:
            if getattr(o, key) is not None and not allowed:
                raise JudgeConfigError(name, key, f"only applies to {what}, not {scorer}")

        base_url = None
        if o.base_url is not None:
            base_url, _ = _normalise_base_url(name, o.base_url)
            if provider != "openai" and builtin is not None:
                raise JudgeConfigError(
                    name, "base_url",
                    f"built-in scorers can only be pointed at an OpenAI-compatible endpoint "
                    f"(model 'openai:/...'), not {provider!r}",
                )
        if o.api_key_env is not None and provider != "openai":
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

        instructions = o.instructions.strip() if o.instructions is not None else None
        feedback_value_type = None
        if builtin is None:
            if instructions is None:
                raise JudgeConfigError(name, "instructions", "is required")
            _check_template(name, instructions)
            feedback_value_type = o.feedback_value_type or "yes_no"

        guidelines = None
        if builtin == "Guidelines":
            if o.guidelines is None:
                raise JudgeConfigError(
                    name, "guidelines", "is required: a non-empty string or list of strings"
                )
            items = [o.guidelines] if isinstance(o.guidelines, str) else o.guidelines
            guidelines = tuple(g.strip() for g in items)

        pass_threshold = o.pass_threshold
        if pass_threshold is not None:
            if not math.isfinite(pass_threshold):
                raise JudgeConfigError(name, "pass_threshold", "must be finite")
            if feedback_value_type not in ("float", "int"):
                raise JudgeConfigError(
                    name, "pass_threshold",
                    "only applies to make_judge with feedback_value_type float or int",
                )

        return cls(
            name=name,
            scorer=scorer,
            model=o.model.strip(),
            base_url=base_url,
            api_key_env=o.api_key_env,
            instructions=instructions,
            feedback_value_type=feedback_value_type,
            guidelines=guidelines,
            expected_response=_strip(o.expected_response),
            pass_threshold=pass_threshold,
            inference_params=o.inference_params,
            description=_strip(o.description),
        )


def _strip(text: str | None) -> str | None:
    return None if text is None else text.strip()


def _check_template(name: str, instructions: str) -> None:
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


def policy_judge_specs(policy: Policy) -> tuple[JudgeSpec, ...]:
    """A policy's judges validated; an error names the file, line and key path as a
    PolicyError does: ``policy.toml:12: judge[1].model: expected ..., got ...``."""
    specs = []
    for i, decl in enumerate(policy.judges):
        try:
            specs.append(JudgeSpec.from_decl(decl.name, decl.scorer, dict(decl.options)))
        except JudgeConfigError as exc:
            try:
                text = Path(policy.path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                text = ""
            where = Ctx(policy.path, text).fail(f"judge[{i}].{exc.key}", exc.problem)
            raise ConfigError(f"{where} (judge {decl.name!r})") from None
    return tuple(specs)
