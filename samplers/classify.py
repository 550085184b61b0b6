"""First-match rule classification, compiled to one generated function per policy.

The generated code inlines every rule's conditions and key extraction (expressions from
conditions.py / strata.py), so classifying a record costs one Python call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conditions import conditions_expr
from .policy import JudgeDecl, Policy
from .record import TraceRecord
from .rules import UNMATCHED, Rule, UnmatchedRule
from .strata import key_expr, key_renderer

__all__ = ["UNMATCHED", "CompiledRule", "compile_classifier", "compile_lookup", "compile_rules"]


class CompiledRule:
    """A rule plus what the sampler needs at decision time."""

    __slots__ = ("cache", "index", "judges", "render", "rule")

    def __init__(self, index: int, rule: Rule, judges: list[JudgeDecl]) -> None:
        self.index = index
        self.rule = rule
        self.judges = judges
        self.render = key_renderer(rule.key_fields) if rule.key_fields else None
        # raw key -> entry of the active window; the dict object never changes (generated code
        # holds its .get), the sampler refills it when the active window changes
        self.cache: dict = {}


def compile_rules(policy: Policy) -> tuple[list[CompiledRule], CompiledRule]:
    """The policy's rules, plus the `<unmatched>` pseudo-rule for records no rule matches."""
    judges = {j.name: j for j in policy.judges}
    rules = [CompiledRule(i, r, [judges[n] for n in r.judges]) for i, r in enumerate(policy.rules)]
    return rules, CompiledRule(len(rules), UnmatchedRule(), [])


def _generate(
    name: str,
    rules: list[CompiledRule],
    unmatched: CompiledRule,
    ns: dict[str, Any],
    ret: Callable[[int], str],
) -> Callable[[TraceRecord], Any]:
    """def name(r): first matching rule i -> k = <raw key>; <ret(i)>."""
    lines = [f"def {name}(r):"]
    for cr in (*rules, unmatched):
        i = cr.index
        ns[f"_cr{i}"] = cr
        ns[f"_get{i}"] = cr.cache.get
        if cr is unmatched:
            lines += ["    k = None", f"    {ret(i)}"]
            break
        cond = conditions_expr(cr.rule.conditions, cr.rule.match, ns)
        key = "None"
        if cr.rule.key_fields:
            key = key_expr(cr.rule.key_fields, ns, prefix=str(i))
        body = [f"k = {key}", ret(i)]
        if cond is None:  # a catch-all: later rules are unreachable
            lines += [f"    {line}" for line in body]
            break
        lines += [f"    if {cond}:"] + [f"        {line}" for line in body]
    exec("\n".join(lines), ns)  # source built only from validated fields and repr'd constants
    return ns[name]


def compile_classifier(
    rules: list[CompiledRule], unmatched: CompiledRule
) -> Callable[[TraceRecord], tuple[CompiledRule, Any]]:
    """`classify(record) -> (rule, raw key)`; raw key is None for keyless rules."""
    return _generate("_classify", rules, unmatched, {}, lambda i: f"return _cr{i}, k")


def compile_lookup(
    rules: list[CompiledRule], unmatched: CompiledRule, miss: Callable[[CompiledRule, Any], Any]
) -> Callable[[TraceRecord], Any]:
    """`lookup(record)`: classify, then return the rule's cached entry for the raw key,
    calling `miss(rule, key)` to create it (the sampler's hot path: one call)."""
    return _generate(
        "_lookup",
        rules,
        unmatched,
        {"_miss": miss},
        lambda i: f"return _get{i}(k) or _miss(_cr{i}, k)",
    )
