"""Sampling policy: dataclasses and the TOML loader (one-line `PolicyError`s)."""

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

from .conditions import Condition, compile_condition, normalize_op
from .fields import parse_field
from .parsing import Ctx, PolicyError, check_keys, get_value, table_of
from .randomness import RANDOMNESS_SOURCES
from .rules import RULE_TYPES, Rule, StratifiedRule

PACINGS = ("even", "none")
INTERVALS = ("wilson_kish", "jeffreys", "auto")
TRACE_AWARE_TOKENS = 6_000  # ~5,800 prompt tokens (tool-calling over the trace) + the verdict
PLAIN_JUDGE_TOKENS = 300  # ~210 prompt tokens (inputs/outputs) + the verdict
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+-]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRACE_VAR = re.compile(r"\{\{\s*trace\s*\}\}")
_FROZEN_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Source:
    """Where traces come from; `filter_string` is an MLflow search_traces prefilter (AND only)."""

    experiment_ids: tuple[str, ...] = ()
    experiment_name: str | None = None
    filter_string: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: _FROZEN_EMPTY)


@dataclass(frozen=True)
class Budget:
    """Per-window judge budget; None limits are unlimited."""

    window_s: float = 3600.0
    max_traces: int | None = None
    max_tokens: int | None = None
    max_usd: float | None = None
    pacing: str = "even"
    burst: float = 0.25
    headroom: float = 0.1
    replicas: int = 1

    @property
    def window_ms(self) -> int:
        return round(self.window_s * 1000)

    @property
    def limited(self) -> bool:
        return any(x is not None for x in (self.max_traces, self.max_tokens, self.max_usd))


@dataclass(frozen=True)
class Randomness:
    source: str = "auto"
    salt: str = ""


@dataclass(frozen=True)
class Estimation:
    confidence: float = 0.95
    interval: str = "auto"
    small_n: int = 20
    mc_draws: int = 4000
    seed: int = 0


@dataclass(frozen=True)
class JudgeDecl:
    """A judge declared in the policy; `options` keeps every other key verbatim for trace_tui."""

    name: str
    scorer: str
    est_tokens: int
    usd_per_1k_tokens: float = 0.0
    sample_fraction: float = 1.0
    trace_token_factor: float = 0.0
    trace_aware: bool = False
    options: Mapping[str, Any] = field(default_factory=lambda: _FROZEN_EMPTY)

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


def parse_duration(value: Any) -> float:
    """Seconds from 600, 600.0, '600', '10m', '1h', '250ms'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration like 600, '30s', '10m' or '1h', got {value!r}")
    return seconds


def _strip_quoted(text: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)


_TOP = ("name", "version", "description", "source", "randomness", "budget", "estimation")
_TOP_ARRAYS = ("judge", "policy")


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
    check_keys(ctx, "", raw, _TOP + _TOP_ARRAYS)

    name = get_value(ctx, raw, "", "name", "str", "policy")
    version_raw = raw.get("version", "1")
    if isinstance(version_raw, bool) or not isinstance(version_raw, (str, int, float)):
        raise ctx.fail("version", f"expected a string or number, got {version_raw!r}")
    description = get_value(ctx, raw, "", "description", "str", "")

    judges = _parse_judges(ctx, raw.get("judge", []))
    judge_names = tuple(j.name for j in judges)
    budget = _parse_budget(ctx, raw.get("budget", {}))
    src = _parse_source(ctx, raw.get("source", {}))
    randomness = _parse_randomness(ctx, raw.get("randomness", {}))
    estimation = _parse_estimation(ctx, raw.get("estimation", {}))

    rules_raw = raw.get("policy")
    if rules_raw is None:
        raise ctx.fail("policy", "expected at least one [[policy]] rule, got none")
    if not isinstance(rules_raw, list) or not all(isinstance(r, dict) for r in rules_raw):
        raise ctx.fail("policy", "expected an array of tables ([[policy]])")
    if not rules_raw:
        raise ctx.fail("policy", "expected at least one [[policy]] rule, got none")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, rr in enumerate(rules_raw):
        rule = _parse_rule(ctx, f"policy[{i}]", rr, judge_names, budget)
        if rule.name in seen:
            raise ctx.fail(
                f"policy[{i}].name", f"expected a unique rule name, got {rule.name!r} twice"
            )
        seen.add(rule.name)
        rules.append(rule)

    shares = sum(r.budget_share or 0.0 for r in rules if isinstance(r, StratifiedRule))
    if shares > 1.0 + 1e-9:
        raise ctx.fail("policy", f"expected budget_share values summing to <= 1, got {shares:g}")
    if budget.max_usd is not None and not any(j.usd_per_1k_tokens > 0 for j in judges):
        raise ctx.fail(
            "budget.max_usd", "expected at least one [[judge]] with usd_per_1k_tokens > 0"
        )

    canonical = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False)
    return Policy(
        name=name,
        version=str(version_raw),
        rules=tuple(rules),
        judges=judges,
        budget=budget,
        source=src,
        randomness=randomness,
        estimation=estimation,
        description=description,
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


# --------------------------------------------------------------------------- sections


def _parse_budget(ctx: Ctx, value: Any) -> Budget:
    t = table_of(ctx, "budget", value)
    check_keys(
        ctx,
        "budget",
        t,
        (
            "window",
            "max_traces",
            "max_tokens",
            "max_usd",
            "pacing",
            "burst",
            "headroom",
            "replicas",
        ),
    )
    window_s = 3600.0
    if "window" in t:
        try:
            window_s = parse_duration(t["window"])
        except ValueError as exc:
            raise ctx.fail("budget.window", str(exc)) from None
        if window_s < 1.0:
            raise ctx.fail(
                "budget.window", f"expected a window of at least 1s, got {t['window']!r}"
            )
    return Budget(
        window_s=window_s,
        max_traces=get_value(ctx, t, "budget", "max_traces", "int", None, lo=1),
        max_tokens=get_value(ctx, t, "budget", "max_tokens", "int", None, lo=1),
        max_usd=get_value(ctx, t, "budget", "max_usd", "float", None, lo=0, lo_open=True),
        pacing=get_value(ctx, t, "budget", "pacing", "str", "even", choices=PACINGS),
        burst=get_value(ctx, t, "budget", "burst", "float", 0.25, lo=0, hi=1),
        headroom=get_value(ctx, t, "budget", "headroom", "float", 0.1, lo=0, hi=0.9),
        replicas=get_value(ctx, t, "budget", "replicas", "int", 1, lo=1),
    )


def _parse_source(ctx: Ctx, value: Any) -> Source:
    t = table_of(ctx, "source", value)
    ids_raw = t.get("experiment_ids", [])
    if "experiment_id" in t:
        ids_raw = [t["experiment_id"]]
    if not isinstance(ids_raw, list) or not all(
        isinstance(x, (str, int)) and not isinstance(x, bool) for x in ids_raw
    ):
        raise ctx.fail("source.experiment_ids", f"expected a list of ids, got {ids_raw!r}")
    name = get_value(ctx, t, "source", "experiment_name", "str", None)
    filt = get_value(ctx, t, "source", "filter_string", "str", None)
    if filt is not None and re.search(r"\bOR\b", _strip_quoted(filt), flags=re.IGNORECASE):
        raise ctx.fail(
            "source.filter_string",
            f"expected an AND-only MLflow filter string (MLflow rejects OR), got {filt!r}",
        )
    known = {"experiment_ids", "experiment_id", "experiment_name", "filter_string"}
    options = {k: v for k, v in t.items() if k not in known}
    return Source(tuple(str(x) for x in ids_raw), name, filt, MappingProxyType(options))


def _parse_randomness(ctx: Ctx, value: Any) -> Randomness:
    t = table_of(ctx, "randomness", value)
    check_keys(ctx, "randomness", t, ("source", "salt"))
    return Randomness(
        source=get_value(ctx, t, "randomness", "source", "str", "auto", choices=RANDOMNESS_SOURCES),
        salt=get_value(ctx, t, "randomness", "salt", "str", ""),
    )


def _parse_estimation(ctx: Ctx, value: Any) -> Estimation:
    t = table_of(ctx, "estimation", value)
    check_keys(ctx, "estimation", t, ("confidence", "interval", "small_n", "mc_draws", "seed"))
    interval = t.get("interval", "auto")
    if interval == "jeffreys_mc":
        interval = "jeffreys"
    if interval not in INTERVALS:
        raise ctx.fail(
            "estimation.interval", f"expected one of {', '.join(INTERVALS)}, got {interval!r}"
        )
    return Estimation(
        confidence=get_value(ctx, t, "estimation", "confidence", "float", 0.95, lo=0.5, hi=0.9999),
        interval=interval,
        small_n=get_value(ctx, t, "estimation", "small_n", "int", 20, lo=1),
        mc_draws=get_value(ctx, t, "estimation", "mc_draws", "int", 4000, lo=100),
        seed=get_value(ctx, t, "estimation", "seed", "int", 0),
    )


_JUDGE_KNOWN = (
    "name",
    "scorer",
    "kind",
    "est_tokens",
    "usd_per_1k_tokens",
    "sample_fraction",
    "trace_token_factor",
)


def _parse_judges(ctx: Ctx, value: Any) -> tuple[JudgeDecl, ...]:
    if not isinstance(value, list) or not all(isinstance(j, dict) for j in value):
        raise ctx.fail("judge", "expected an array of tables ([[judge]])")
    out: list[JudgeDecl] = []
    for i, t in enumerate(value):
        path = f"judge[{i}]"
        name = t.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ctx.fail(f"{path}.name", f"expected a name like 'relevance', got {name!r}")
        if any(j.name == name for j in out):
            raise ctx.fail(f"{path}.name", f"expected a unique judge name, got {name!r} twice")
        scorer = t.get("scorer", t.get("kind"))
        if not isinstance(scorer, str) or not scorer.strip():
            raise ctx.fail(
                f"{path}.scorer",
                f"expected a scorer such as 'builtin:Safety' or 'make_judge', got {scorer!r}",
            )
        options = {k: v for k, v in t.items() if k not in _JUDGE_KNOWN}
        instructions = options.get("instructions")
        trace_aware = isinstance(instructions, str) and bool(_TRACE_VAR.search(instructions))
        default_tokens = TRACE_AWARE_TOKENS if trace_aware else PLAIN_JUDGE_TOKENS
        out.append(
            JudgeDecl(
                name=name,
                scorer=scorer,
                est_tokens=get_value(ctx, t, path, "est_tokens", "int", default_tokens, lo=1),
                usd_per_1k_tokens=get_value(ctx, t, path, "usd_per_1k_tokens", "float", 0.0, lo=0),
                sample_fraction=get_value(
                    ctx, t, path, "sample_fraction", "float", 1.0, lo=0, lo_open=True, hi=1
                ),
                trace_token_factor=get_value(
                    ctx, t, path, "trace_token_factor", "float", 0.0, lo=0
                ),
                trace_aware=trace_aware,
                options=MappingProxyType(options),
            )
        )
    return tuple(out)


_RULE_COMMON = ("name", "type", "conditions", "match", "judges")


def _parse_rule(
    ctx: Ctx, path: str, t: dict[str, Any], judge_names: tuple[str, ...], budget: Budget
) -> Rule:
    name = t.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ctx.fail(
            f"{path}.name", f"expected a rule name of letters, digits, '_.:@+-', got {name!r}"
        )
    cls = RULE_TYPES.get(t.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise ctx.fail(
            f"{path}.type", f"expected one of {', '.join(RULE_TYPES)}, got {t.get('type')!r}"
        )
    allowed = _RULE_COMMON + cls.option_keys
    for key in t:
        if key not in allowed:
            other = [k for k, c in RULE_TYPES.items() if key in c.option_keys]
            hint = f"only valid for type {' or '.join(other)}" if other else "unknown key"
            raise ctx.fail(f"{path}.{key}", f"{hint}; expected one of {', '.join(allowed)}")

    match = get_value(ctx, t, path, "match", "str", "all", choices=("all", "any"))
    conditions = _parse_conditions(ctx, f"{path}.conditions", t.get("conditions", []))
    judges = judge_names
    if "judges" in t:
        if not cls.guarded:
            raise ctx.fail(f"{path}.judges", f"expected no judges on a {cls.type} rule")
        js = t["judges"]
        if not isinstance(js, list) or not all(isinstance(j, str) for j in js):
            raise ctx.fail(f"{path}.judges", f"expected a list of judge names, got {js!r}")
        for j in js:
            if j not in judge_names:
                expected = ", ".join(judge_names) or "(no [[judge]] declared)"
                raise ctx.fail(f"{path}.judges", f"expected one of {expected}, got {j!r}")
        judges = tuple(dict.fromkeys(js))
    if not cls.guarded:
        judges = ()
    options = cls.parse_options(ctx, path, t, budget)
    return cls(name=name, conditions=conditions, match=match, judges=judges, **options)


def _parse_conditions(ctx: Ctx, path: str, value: Any) -> tuple[Condition, ...]:
    if not isinstance(value, list):
        raise ctx.fail(path, f"expected a list of {{ field, op, value }} tables, got {value!r}")
    out = []
    for i, c in enumerate(value):
        cpath = f"{path}[{i}]"
        if not isinstance(c, dict):
            raise ctx.fail(cpath, f"expected a {{ field, op, value }} table, got {c!r}")
        check_keys(ctx, cpath, c, ("field", "op", "value"))
        if "field" not in c:
            raise ctx.fail(f"{cpath}.field", "expected a field path, got nothing")
        try:
            parse_field(c["field"])
        except ValueError as exc:
            raise ctx.fail(f"{cpath}.field", str(exc)) from None
        try:
            op = normalize_op(c.get("op", "="))
        except ValueError as exc:
            raise ctx.fail(f"{cpath}.op", str(exc)) from None
        cond = Condition(field=c["field"], op=op, value=c.get("value"))
        try:
            compile_condition(cond)
        except ValueError as exc:
            raise ctx.fail(f"{cpath}.value", str(exc)) from None
        out.append(cond)
    return tuple(out)
