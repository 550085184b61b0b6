"""The policy file's schema: every key's type, default, limits and doc, declared once.

msgspec validates a policy file against these Structs (samplers/parsing.py turns its errors
into one-line messages) and docs/policy.md's key tables are generated from them
(tests/test_samplers_policy_docs.py). The rule types declare their own keys in
samplers/rules/. `Budget`, `Randomness` and `Estimation` are used as parsed; the other
sections become the objects of samplers/policy.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta

from .parsing import doc
from .rules import AlwaysDecl, DropDecl, ProbabilisticDecl, StratifiedDecl
from .rules.base import NAME_PATTERN

Pacing = Literal["even", "none"]
Interval = Literal["wilson_kish", "jeffreys", "auto"]
RandomnessSource = Literal["auto", "trace_id", "hash"]
PACINGS: tuple[str, ...] = get_args(Pacing)
INTERVALS: tuple[str, ...] = get_args(Interval)
TRACE_AWARE_TOKENS = 6_000  # ~5,800 prompt tokens (tool-calling over the trace) + the verdict
PLAIN_JUDGE_TOKENS = 300  # ~210 prompt tokens (inputs/outputs) + the verdict
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_EXPECTED = "a duration like 600, '30s', '10m' or '1h'"


def parse_duration(value: Any) -> float:
    """Seconds from 600, 600.0, '600', '10m', '1h', '250ms'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"expected {_DURATION_EXPECTED}, got {value!r}")


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class SourceDecl(msgspec.Struct, frozen=True, kw_only=True):
    """What trace_tui reads. Every other key is kept in `Policy.source.options`."""

    experiment_ids: Annotated[
        list[str | int], doc("Experiments to read.", expected="a list of ids")
    ] = msgspec.field(default_factory=list)
    experiment_id: Annotated[
        str | int | None, doc("One experiment (instead of the list).", expected="an id")
    ] = None
    experiment_name: Annotated[str | None, doc("An experiment by name.")] = None
    filter_string: Annotated[
        str | None,
        doc("An MLflow `search_traces` filter: AND only, single-quoted values."),
    ] = None


class Randomness(_Section, frozen=True):
    """Where each trace's random number comes from (see *Randomness*)."""

    source: Annotated[RandomnessSource, doc("`auto`, `trace_id` or `hash`.")] = "auto"
    salt: Annotated[str, doc("A salt makes decisions independent of another policy's.")] = ""


class Estimation(_Section, frozen=True):
    """How `estimate()` reports (see *Estimates*)."""

    confidence: Annotated[float, Meta(ge=0.5, le=0.9999), doc("Interval confidence.")] = 0.95
    interval: Annotated[
        Interval | Literal["jeffreys_mc"],
        doc("Interval method (`jeffreys_mc` is read as `jeffreys`).",
            expected="one of " + ", ".join(INTERVALS)),
    ] = "auto"  # fmt: skip
    small_n: Annotated[
        int, Meta(ge=1), doc("Below this many judged traces a stratum counts as small.")
    ] = 20
    mc_draws: Annotated[int, Meta(ge=100), doc("Monte Carlo draws of the Jeffreys interval.")] = (
        4000
    )
    seed: Annotated[int, doc("Seed of the Monte Carlo draws.")] = 0

    def __post_init__(self) -> None:
        if self.interval == "jeffreys_mc":
            msgspec.structs.force_setattr(self, "interval", "jeffreys")


class Budget(_Section, frozen=True):
    """Per-window judge budget; limits left out are unlimited."""

    window: Annotated[
        str | float,
        doc("Window length (at least 1 s). Windows start at multiples of it since the Unix "
            "epoch, in the trace's own timestamp.", expected=_DURATION_EXPECTED),
    ] = "1h"  # fmt: skip
    max_traces: Annotated[
        Annotated[int, Meta(ge=1)] | None, doc("Traces selected per window.")
    ] = None
    max_tokens: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        doc("Estimated judge tokens per window: the sum over selected traces of each of "
            "their judges' `est_tokens + trace_token_factor x total_tokens`."),
    ] = None  # fmt: skip
    max_usd: Annotated[
        Annotated[float, Meta(gt=0)] | None,
        doc("Estimated judge dollars per window (tokens / 1000 x `usd_per_1k_tokens`). "
            "Needs at least one priced judge."),
    ] = None  # fmt: skip
    pacing: Annotated[
        Pacing,
        doc("`even`: within a window, spend never gets ahead of "
            "`budget x min(1, elapsed fraction + burst)`. `none`: only the window total is "
            "capped."),
    ] = "even"  # fmt: skip
    burst: Annotated[
        float, Meta(ge=0, le=1), doc("Share of the window budget available at its start.")
    ] = 0.25
    headroom: Annotated[
        float,
        Meta(ge=0, le=0.9),
        doc("Rates are planned for `(1 - headroom)` of each limit, so the random variation "
            "of a Bernoulli sample rarely reaches the hard cap."),
    ] = 0.1  # fmt: skip
    replicas: Annotated[
        int,
        Meta(ge=1),
        doc("Samplers that share the budget; each caps its own spend at `limit / replicas`."),
    ] = 1

    @property
    def window_s(self) -> float:
        return parse_duration(self.window)

    @property
    def window_ms(self) -> int:
        return round(self.window_s * 1000)

    @property
    def limited(self) -> bool:
        return any(x is not None for x in (self.max_traces, self.max_tokens, self.max_usd))


class JudgeSchema(msgspec.Struct, frozen=True, kw_only=True):
    """A judge. Every other key is kept verbatim in `JudgeDecl.options` for trace_tui
    (`model`, `base_url`, `instructions`, ...: see the judge options below)."""

    name: Annotated[
        str,
        Meta(pattern=NAME_PATTERN),
        doc("Unique; used in rules' `judges`, `Decision.judges` and estimates.",
            expected="a name like 'relevance'"),
    ]  # fmt: skip
    scorer: Annotated[
        str | None,
        doc("`builtin:RelevanceToQuery`, `builtin:Safety`, `builtin:Guidelines`, "
            "`builtin:Correctness`, `builtin:RetrievalGroundedness` or `make_judge` "
            "(alias `kind`); trace_tui validates it.",
            expected="a scorer such as 'builtin:Safety' or 'make_judge'"),
    ] = None  # fmt: skip
    kind: Annotated[str | None, doc("Alias of `scorer`.")] = None
    est_tokens: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        doc(f"Judge tokens per trace; default {PLAIN_JUDGE_TOKENS}, or {TRACE_AWARE_TOKENS} "
            "for a trace-aware judge (its `instructions` contain `{{ trace }}`: it reads the "
            "trace through tool calls)."),
    ] = None  # fmt: skip
    usd_per_1k_tokens: Annotated[
        float, Meta(ge=0), doc("Price, for `max_usd` and for cost reports.")
    ] = 0.0
    sample_fraction: Annotated[
        float,
        Meta(gt=0, le=1),
        doc("The judge runs on a nested fraction of the traces a rule selects: "
            "π_judge = π x fraction."),
    ] = 1.0  # fmt: skip
    trace_token_factor: Annotated[
        float, Meta(ge=0), doc("Extra judge tokens per token of the judged trace.")
    ] = 0.0


RuleDecls = DropDecl | AlwaysDecl | ProbabilisticDecl | StratifiedDecl


class PolicyFile(_Section, frozen=True):
    """A policy file's top level."""

    name: Annotated[str, doc("Policy name, part of `version_tag`.")] = "policy"
    version: Annotated[
        str | int | float,
        doc("Your version label; `Policy.fingerprint` changes on any edit anyway.",
            expected="a string or number"),
    ] = "1"  # fmt: skip
    description: Annotated[str, doc("Free text.")] = ""
    source: Annotated[SourceDecl, doc("What trace_tui reads.")] = SourceDecl()
    randomness: Annotated[Randomness, doc("See *Randomness*.")] = Randomness()
    budget: Annotated[Budget, doc("See `[budget]`.")] = Budget()
    estimation: Annotated[Estimation, doc("See *Estimates*.")] = Estimation()
    judge: Annotated[
        list[JudgeSchema],
        doc("Judges, see `[[judge]]`.", message="expected an array of tables ([[judge]])"),
    ] = msgspec.field(default_factory=list)  # fmt: skip
    policy: Annotated[
        list[RuleDecls] | None,
        doc("The rules, in order (required).",
            message="expected an array of tables ([[policy]])"),
    ] = None  # fmt: skip


SECTIONS: dict[str, type[msgspec.Struct]] = {
    "": PolicyFile, "[source]": SourceDecl, "[randomness]": Randomness, "[budget]": Budget,
    "[estimation]": Estimation, "[[judge]]": JudgeSchema,
}  # fmt: skip
"""The tables of a policy file by header (the rules' are in samplers.rules.RULE_TYPES)."""
