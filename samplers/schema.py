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
import msgspec.inspect as mi
from msgspec import Meta

from .parsing import doc, limits, literal_choices, type_name
from .rules import AlwaysDecl, DropDecl, ProbabilisticDecl, StratifiedDecl
from .rules.base import NAME_PATTERN

Pacing = Literal["even", "none"]
Interval = Literal["wilson_kish", "jeffreys", "auto", "jeffreys_mc"]
RandomnessSource = Literal["auto", "trace_id", "hash"]
INTERVALS: tuple[str, ...] = get_args(Interval)[:3]  # jeffreys_mc: an old name of jeffreys
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
    """Where each trace's random number comes from."""

    source: Annotated[
        RandomnessSource,
        doc("`hash`: sha256 of the id; `auto`/`trace_id`: the random low bits of a "
            "`tr-<32 hex>` id (other ids are hashed). A salt always hashes."),
    ] = "auto"
    salt: Annotated[str, doc("A salt makes decisions independent of another policy's.")] = ""


class Estimation(_Section, frozen=True):
    """How `estimate()` reports."""

    confidence: Annotated[float, Meta(ge=0.5, le=0.9999), doc("Interval confidence.")] = 0.95
    interval: Annotated[
        Interval,
        doc("Interval method (`jeffreys_mc` is read as `jeffreys`).",
            expected="one of " + ", ".join(INTERVALS)),
    ] = "auto"  # fmt: skip
    small_n: Annotated[
        int, Meta(ge=1), doc("Below this many judged traces a stratum counts as small.")
    ] = 20
    mc_draws: Annotated[
        int, Meta(ge=100),
        doc("Monte Carlo draws of the overall Jeffreys interval (per stratum: exact)."),
    ] = 4000  # fmt: skip
    seed: Annotated[int, doc("Seed of the Monte Carlo draws.")] = 0

    def __post_init__(self) -> None:
        if self.interval == "jeffreys_mc":
            msgspec.structs.force_setattr(self, "interval", "jeffreys")


class Review(_Section, frozen=True):
    """Which judged traces go to human review (samplers/review.py decides; off when both
    `fraction` and `count` are 0)."""

    fraction: Annotated[
        float, Meta(ge=0, le=1),
        doc("Share of each stratum's judged traces per window sent to review."),
    ] = 0.0  # fmt: skip
    count: Annotated[
        Annotated[int, Meta(ge=0)] | None,
        doc("Reviewed traces per stratum and window; with `fraction`, at most this many."),
    ] = None  # fmt: skip
    min_per_stratum: Annotated[
        int, Meta(ge=0),
        doc("At least this many per stratum and window (all of them when fewer were judged); "
            "2 give the corrected estimate a variance."),
    ] = 2  # fmt: skip
    salt: Annotated[
        str, Meta(min_length=1),
        doc("Salt of the review draw; must differ from `[randomness] salt` so the review "
            "sample is independent of the judged sample."),
    ] = "review"  # fmt: skip
    judges: Annotated[
        list[str], doc("Judges whose verdicts are reviewed; empty: all.")
    ] = msgspec.field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.fraction > 0 or bool(self.count)


class Budget(_Section, frozen=True):
    """Per-window judge budget; limits left out are unlimited."""

    window: Annotated[
        str | float,
        doc("Window length (at least 1 s). Windows start at multiples of it since the Unix "
            "epoch, in the trace's own timestamp.", expected=_DURATION_EXPECTED,
            kind="duration (`600`, `\"30s\"`, `\"10m\"`, `\"1h\"`)"),
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
    keep_windows: Annotated[
        int,
        Meta(ge=1),
        doc("Population counts older than this many windows are pruned when a new window "
            "starts (at least the forecast lookback is kept), so saved state stays bounded; "
            "estimates over older windows fall back to Horvitz-Thompson populations."),
    ] = 720  # fmt: skip
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
    randomness: Annotated[Randomness, doc("See `[randomness]`.")] = Randomness()
    budget: Annotated[Budget, doc("See `[budget]`.")] = Budget()
    estimation: Annotated[Estimation, doc("See `[estimation]`.")] = Estimation()
    review: Annotated[Review, doc("See `[review]`.")] = Review()
    judge: Annotated[
        list[JudgeSchema],
        doc("Judges, see `[[judge]]`.", message="expected an array of tables ([[judge]])"),
    ] = msgspec.field(default_factory=list)  # fmt: skip
    policy: Annotated[
        list[RuleDecls] | None,
        doc("The rules, in order (required).",
            message="expected an array of tables ([[policy]])"),
    ] = None  # fmt: skip


# --------------------------------------------------------------------------- docs


def key_table(
    struct: type[msgspec.Struct], *, skip: tuple[str, ...] = (), headers: bool = False
) -> str:
    """A Markdown table of a Struct's keys: type with limits, default and doc; `headers`
    names tables `[key]` and arrays of tables `[[key]]` (the top level of a file).

    docs/policy.md's key tables are these (tests/test_samplers_policy_docs.py checks it)."""
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    order = [n for k in reversed(struct.__mro__) for n in getattr(k, "__annotations__", {})]
    fields = sorted(info.fields, key=lambda f: order.index(f.name))
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in fields:
        if f.encode_name in skip:
            continue
        description, kind = _describe_type(f.type, literal_choices(struct, f.name))
        if f.required:
            default = "required"
        elif f.default_factory is not mi.NODEFAULT or f.default is None:
            default = "none"
        elif isinstance(f.default, msgspec.Struct):
            default = ""
        else:
            default = f"`{_toml(f.default)}`"
        key = f"`{f.encode_name}`"
        if headers and kind in ("table", "array of tables"):
            key = f"`[{f.encode_name}]`" if kind == "table" else f"`[[{f.encode_name}]]`"
        rows.append(f"| {key} | {kind} | {default} | {description} |")
    return "\n".join(rows)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _describe_type(t: mi.Type, choices: tuple[Any, ...]) -> tuple[str, str]:
    """(doc, 'type and limits') of a declared field type."""
    description = kind = ""
    while True:
        if isinstance(t, mi.Metadata):
            description = description or str((t.extra_json_schema or {}).get("description", ""))
            kind = kind or str((t.extra or {}).get("kind", ""))
            t = t.type
        elif isinstance(t, mi.UnionType) and any(isinstance(u, mi.NoneType) for u in t.types):
            rest = [u for u in t.types if not isinstance(u, mi.NoneType)]
            if len(rest) != 1:
                t = mi.UnionType(tuple(rest))
                break
            t = rest[0]
        else:
            break
    if kind:
        pass
    elif isinstance(t, mi.LiteralType):
        kind = " or ".join(f"`{v}`" for v in (choices or t.values))
    elif isinstance(t, mi.IntType | mi.FloatType):
        kind = f"{type_name(t)} {limits(t)}".strip()
    elif isinstance(t, mi.ListType):
        item = t.item_type
        while isinstance(item, mi.Metadata):
            item = item.type
        members = item.types if isinstance(item, mi.UnionType) else (item,)
        if all(isinstance(u, mi.StructType) for u in members):
            kind = "array of tables"
        else:
            kind = f"list of {type_name(item)}" if not isinstance(item, mi.AnyType) else "list"
    else:
        kind = type_name(t)
    return description.replace("|", "\\|"), kind
