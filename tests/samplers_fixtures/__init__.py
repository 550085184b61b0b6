"""Helpers shared by the tests/test_samplers_*.py files (no trace_tui, no MLflow)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from samplers import Policy, TraceRecord, parse_policy
from samplers.conditions import Condition, conditions_expr
from samplers.randomness import hashed_randomness, id_randomness
from samplers.strata import KeyField, key_expr, key_renderer

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR  # an hour boundary


def trace_id(rng: random.Random) -> str:
    return f"tr-{rng.getrandbits(128):032x}"


def record(
    rng: random.Random | None = None,
    *,
    trace_id_: str | None = None,
    ts: int = T0,
    status: str = "OK",
    duration_ms: float = 500.0,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
    total_tokens: int = 0,
    **kw: object,
) -> TraceRecord:
    tid = trace_id_ or trace_id(rng or random.Random())
    return TraceRecord(
        trace_id=tid,
        timestamp_ms=ts,
        status=status,
        duration_ms=duration_ms,
        tags=dict(tags or {}),
        metadata=dict(metadata or {}),
        total_tokens=total_tokens,
        **kw,  # type: ignore[arg-type]
    )


def stream(
    strata: Mapping[str, int],
    windows: int,
    *,
    seed: int = 0,
    window_ms: int = HOUR,
    start: int = T0,
    tag: str = "s",
) -> list[TraceRecord]:
    """`strata[name]` records per window with tag `tag`=name, spread evenly, time-sorted."""
    rng = random.Random(seed)
    out = []
    for w in range(windows):
        for name, n in strata.items():
            for _ in range(n):
                ts = start + w * window_ms + rng.randrange(window_ms)
                out.append(record(rng, ts=ts, tags={tag: name}, total_tokens=rng.randrange(1000)))
    out.sort(key=lambda r: r.timestamp_ms)
    return out


def stratified_policy(
    *,
    allocation: str = "neyman",
    max_traces: int | None = 100,
    extra_budget: str = "",
    extra_rule: str = "",
    judges: str = '[[judge]]\nname = "q"\nscorer = "builtin:Safety"\n',
    key_fields: str = '["tags.s"]',
    window: str = "1h",
    randomness: str = "",
) -> Policy:
    budget = f"max_traces = {max_traces}\n" if max_traces is not None else ""
    return parse_policy(
        f"""
name = "test"
{randomness}
[budget]
window = "{window}"
{budget}{extra_budget}

{judges}

[[policy]]
name = "main"
type = "stratified"
key_fields = {key_fields}
allocation = "{allocation}"
{extra_rule}
"""
    )


# Reference implementations of what the sampler's generated code inlines: the tests check the
# compiled paths against these.


def reference_randomness(source: str = "auto", salt: str = "") -> Callable[[str], int]:
    """R(trace_id): id bits for tr-<hex> ids, a hash otherwise; `hash` or a salt force hashing."""
    if source == "hash" or salt:
        return lambda tid: hashed_randomness(tid, salt)

    def from_id(tid: str) -> int:
        r = id_randomness(tid)
        return hashed_randomness(tid) if r is None else r

    return from_id


def compile_conditions(conditions: Sequence[Condition], match: str = "all") -> Callable | None:
    """Predicate for a rule's conditions; None when there are none (always true)."""
    ns: dict[str, Any] = {}
    expr = conditions_expr(conditions, match, ns)
    return None if expr is None else eval(f"lambda r: bool({expr})", ns)


def compile_key(fields: Sequence[KeyField]) -> tuple[Callable[[TraceRecord], tuple], Callable]:
    """(extract, render): the raw hashable key of a record, and its stable string."""
    ns: dict[str, Any] = {}
    return eval(f"lambda r: {key_expr(fields, ns)}", ns), key_renderer(fields)
