"""Sampling policy: the parsed policy and its TOML loader (one-line `PolicyError`s).

The keys, defaults and limits are declared in samplers/schema.py and samplers/rules/; this
module decodes a file against them and runs the checks that span several keys.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .parsing import Ctx, PolicyError, decode
from .rules import RULE_TYPES, Rule, StratifiedRule
from .schema import (
    PLAIN_JUDGE_TOKENS,
    TRACE_AWARE_TOKENS,
    Budget,
    Estimation,
    JudgeSchema,
    PolicyFile,
    Randomness,
    Review,
    SourceDecl,
)

__all__ = [
    "PLAIN_JUDGE_TOKENS",
    "TRACE_AWARE_TOKENS",
    "Budget",
    "Estimation",
    "JudgeDecl",
    "Policy",
    "PolicyError",
    "Randomness",
    "Review",
    "Source",
    "load_policy",
    "parse_policy",
]

_TRACE_VAR = re.compile(r"\{\{\s*trace\s*\}\}")
_FROZEN_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Source:
    """Where traces come from; `filter_string` is an MLflow search_traces prefilter (AND only)."""

    experiment_ids: tuple[str, ...] = ()
    experiment_name: str | None = None
    filter_string: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: _FROZEN_EMPTY)


@dataclass(frozen=True, kw_only=True)
class JudgeDecl:
    """A judge declared in the policy; `options` keeps every other key verbatim for trace_tui."""

    name: str
    scorer: str
    est_tokens: int
    usd_per_1k_tokens: float
    sample_fraction: float
    trace_token_factor: float
    trace_aware: bool
    options: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return self.scorer

    def tokens_for(self, trace_tokens: float) -> float:
        """Estimated judge tokens for one trace with `trace_tokens` total tokens."""
        return self.est_tokens + self.trace_token_factor * trace_tokens

    def usd_for(self, trace_tokens: float) -> float:
        return self.tokens_for(trace_tokens) / 1000.0 * self.usd_per_1k_tokens


@dataclass(frozen=True)
class Policy:
    """A parsed policy; `fingerprint` changes whenever the content does."""

    name: str
    version: str
    rules: tuple[Rule, ...]
    judges: tuple[JudgeDecl, ...] = ()
    budget: Budget = field(default_factory=Budget)
    source: Source = field(default_factory=Source)
    randomness: Randomness = field(default_factory=Randomness)
    estimation: Estimation = field(default_factory=Estimation)
    review: Review = field(default_factory=Review)
    description: str = ""
    fingerprint: str = ""
    path: str = "<string>"

    @property
    def version_tag(self) -> str:
        """`name@version#fingerprint` (first 8 hex); store it with every decision."""
        return f"{self.name}@{self.version}#{self.fingerprint[:8]}"

    def judge(self, name: str) -> JudgeDecl:
        for j in self.judges:
            if j.name == name:
                return j
        raise KeyError(name)

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


def _strip_quoted(text: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Parse policy TOML text; raise PolicyError naming `source`, the key/line and the problem."""
    ctx = Ctx(source, text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"{source}:{m.group(1)}" if m else source
        raise PolicyError(f"{where}: invalid TOML: {msg}") from None
    return policy_from_data(ctx, raw)


def policy_from_data(ctx: Ctx, raw: dict[str, Any]) -> Policy:
    """The policy in ``raw`` (parsed TOML); ``ctx`` locates errors in the file's text."""
    source = ctx.source
    decl = decode(ctx, "", raw, PolicyFile)

    judges = _judges(ctx, decl.judge, raw.get("judge", []))
    judge_names = tuple(j.name for j in judges)
    budget = decl.budget
    try:
        window_s = budget.window_s
    except ValueError as exc:
        raise ctx.fail("budget.window", str(exc)) from None
    if window_s < 1.0:
        raise ctx.fail("budget.window", f"expected a window of at least 1s, got {budget.window!r}")
    src = _source(ctx, decl.source, raw.get("source", {}))

    if not decl.policy:
        raise ctx.fail("policy", "expected at least one [[policy]] rule, got none")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, rule_decl in enumerate(decl.policy):
        path = f"policy[{i}]"
        cls = RULE_TYPES[str(rule_decl.__struct_config__.tag)]
        rule = cls.from_decl(ctx, path, rule_decl, judge_names, budget)
        if rule.name in seen:
            raise ctx.fail(f"{path}.name", f"expected a unique rule name, got {rule.name!r} twice")
        seen.add(rule.name)
        rules.append(rule)

    shares = sum(r.budget_share or 0.0 for r in rules if isinstance(r, StratifiedRule))
    if shares > 1.0 + 1e-9:
        raise ctx.fail("policy", f"expected budget_share values summing to <= 1, got {shares:g}")
    if budget.max_usd is not None and not any(j.usd_per_1k_tokens > 0 for j in judges):
        raise ctx.fail(
            "budget.max_usd", "expected at least one [[judge]] with usd_per_1k_tokens > 0"
        )

    review = decl.review
    if review.salt == decl.randomness.salt:
        raise ctx.fail("review.salt", f"expected a salt other than [randomness] salt "
                       f"{review.salt!r} (the review draw must be independent)")
    for i, j in enumerate(review.judges):
        if j not in judge_names:
            expected = ", ".join(judge_names) or "(no [[judge]] declared)"
            raise ctx.fail(f"review.judges[{i}]", f"expected one of {expected}, got {j!r}")

    canonical = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False)
    return Policy(
        name=decl.name,
        version=str(decl.version),
        rules=tuple(rules),
        judges=judges,
        budget=budget,
        source=src,
        randomness=decl.randomness,
        estimation=decl.estimation,
        review=review,
        description=decl.description,
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest()[:16],
        path=source,
    )


def load_policy(path: str | Path) -> Policy:
    """Read and parse a policy file; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read policy file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{p}: expected UTF-8 text: {exc.reason}") from None
    return parse_policy(text, source=str(p))


def _source(ctx: Ctx, decl: SourceDecl, raw: dict[str, Any]) -> Source:
    ids = decl.experiment_ids if decl.experiment_id is None else [decl.experiment_id]
    filt = decl.filter_string
    if filt is not None and re.search(r"\bOR\b", _strip_quoted(filt), flags=re.IGNORECASE):
        raise ctx.fail(
            "source.filter_string",
            f"expected an AND-only MLflow filter string (MLflow rejects OR), got {filt!r}",
        )
    known = set(SourceDecl.__struct_fields__)
    options = {k: v for k, v in raw.items() if k not in known}
    return Source(tuple(str(x) for x in ids), decl.experiment_name, filt, MappingProxyType(options))


_JUDGE_KEYS = frozenset(JudgeSchema.__struct_fields__)


def _judges(
    ctx: Ctx, decls: list[JudgeSchema], raw: list[dict[str, Any]]
) -> tuple[JudgeDecl, ...]:
    out: list[JudgeDecl] = []
    for i, (d, t) in enumerate(zip(decls, raw, strict=True)):
        path = f"judge[{i}]"
        if any(j.name == d.name for j in out):
            raise ctx.fail(f"{path}.name", f"expected a unique judge name, got {d.name!r} twice")
        scorer = d.scorer if "scorer" in t else d.kind
        if scorer is None or not scorer.strip():
            raise ctx.fail(
                f"{path}.scorer",
                f"expected a scorer such as 'builtin:Safety' or 'make_judge', got {scorer!r}",
            )
        options = {k: v for k, v in t.items() if k not in _JUDGE_KEYS}
        instructions = options.get("instructions")
        trace_aware = isinstance(instructions, str) and bool(_TRACE_VAR.search(instructions))
        default_tokens = TRACE_AWARE_TOKENS if trace_aware else PLAIN_JUDGE_TOKENS
        out.append(
            JudgeDecl(
                name=d.name,
                scorer=scorer,
                est_tokens=default_tokens if d.est_tokens is None else d.est_tokens,
                usd_per_1k_tokens=d.usd_per_1k_tokens,
                sample_fraction=d.sample_fraction,
                trace_token_factor=d.trace_token_factor,
                trace_aware=trace_aware,
                options=MappingProxyType(options),
            )
        )
    return tuple(out)

