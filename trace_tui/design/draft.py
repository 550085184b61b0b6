"""The designer's choices (`Draft`) and their TOML: a new file, or an edit of an existing one
that keeps its comments and order (tomlkit), with the version bumped when content changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import tomlkit
from tomlkit.items import AoT, Table

from samplers import Policy, PolicyError, StratifiedRule, parse_policy

from .judges import DEFAULT_MODEL, price_of, template

BudgetKind = Literal["traces", "tokens", "usd"]
BUDGET_KEYS: dict[str, str] = {"traces": "max_traces", "tokens": "max_tokens", "usd": "max_usd"}
MAIN = "main"


@dataclass(frozen=True)
class JudgeChoice:
    """A judge picked from the menu (judges.MENU) with its model and endpoint."""

    template: str
    name: str = ""
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key_env: str | None = None  # the NAME of the variable holding the key, never the key
    usd_per_1k: float | None = None  # None: the model's price in judges.MODEL_PRICES

    def table(self) -> dict[str, Any]:
        t = template(self.template)
        out: dict[str, Any] = {"name": self.name or t.name, "scorer": t.scorer,
                               "model": self.model}
        if self.base_url:
            out["base_url"] = self.base_url
        if self.api_key_env:
            out["api_key_env"] = self.api_key_env
        out.update(t.options)
        out["usd_per_1k_tokens"] = self.price
        return out

    @property
    def price(self) -> float:
        """$ per 1k judge tokens: the one set here, else the model's (0 for an unknown one)."""
        return self.usd_per_1k if self.usd_per_1k is not None else price_of(self.model)

    @property
    def judge_name(self) -> str:
        return self.name or template(self.template).name


@dataclass(frozen=True)
class ExtraRule:
    """A keyless rule before the main one: drop / always / probabilistic, with conditions."""

    name: str
    type: Literal["drop", "always", "probabilistic"]
    conditions: tuple[tuple[str, str, Any], ...] = ()  # (field, op, value)
    rate: float | None = None
    match: Literal["all", "any"] = "all"

    def table(self, judges: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.conditions:
            out["conditions"] = [
                {"field": f, "op": op} | ({} if v is None else {"value": v})
                for f, op, v in self.conditions
            ]
            if self.match == "any":
                out["match"] = "any"
        if self.type == "probabilistic":
            out["rate"] = self.rate if self.rate is not None else 0.05
        if self.type != "drop" and judges:
            out["judges"] = judges
        return out


@dataclass(frozen=True)
class Draft:
    """Everything the designer lets one choose. `key_fields` empty: the main rule samples
    uniformly within the budget (proportional allocation over `status`)."""

    name: str = "policy"
    experiment: str | None = None
    window: str = "1h"
    budget_kind: BudgetKind = "traces"
    budget: float = 100
    key_fields: tuple[str, ...] = ()
    allocation: str = "neyman"
    min_per_stratum: int = 1
    min_rate: float = 0.0
    max_keys: int = 100
    rules: tuple[ExtraRule, ...] = ()
    judges: tuple[JudgeChoice, ...] = field(default_factory=lambda: (JudgeChoice("relevance"),))
    description: str = ""
    # An edited file's own judges: model, endpoint, key variable and price set on screen
    # (matched by name; their other keys, and the rules' `judges`, stay as written).
    judge_overrides: tuple[JudgeChoice, ...] = ()
    # An edited file's rules the designer wrote and then removed (R), deleted by name.
    removed_rules: tuple[str, ...] = ()

    def with_(self, **changes: Any) -> Draft:
        return replace(self, **changes)

    # ------------------------------------------------------------------ tables

    def budget_table(self) -> dict[str, Any]:
        value: Any = float(self.budget) if self.budget_kind == "usd" else int(self.budget)
        return {"window": self.window, BUDGET_KEYS[self.budget_kind]: value}

    def main_table(self) -> dict[str, Any]:
        judges = [j.judge_name for j in self.judges]
        out: dict[str, Any] = {"name": MAIN, "type": "stratified"}
        if not self.key_fields:
            # A uniform sample that still follows the budget: one rate for every stratum.
            out |= {"key_fields": ["status"], "allocation": "proportional",
                    "min_per_stratum": 0, "min_rate": self.min_rate}
        else:
            out |= {"key_fields": list(self.key_fields), "allocation": self.allocation,
                    "min_per_stratum": self.min_per_stratum, "min_rate": self.min_rate,
                    "max_keys": self.max_keys}
        if judges:
            out["judges"] = judges
        return out

    def to_toml(self) -> str:
        """A new policy file."""
        doc = tomlkit.document()
        doc.add(tomlkit.comment("Sampling policy written by trace-tui's designer "
                                "(docs/designer.md); edit freely, comments are kept."))
        doc.add("name", self.name)
        doc.add("version", "1")
        if self.description:
            doc.add("description", self.description)
        if self.experiment:
            doc.add("source", _table({"experiment_name": self.experiment}))
        doc.add("budget", _table(self.budget_table()))
        if self.judges:
            doc.add("judge", _aot(j.table() for j in self.judges))
        judges = [j.judge_name for j in self.judges]
        doc.add("policy", _aot([*(r.table(judges) for r in self.rules), self.main_table()]))
        return tomlkit.dumps(doc)

    def apply_to(self, text: str) -> str:
        """`text` with the designer's keys set to this draft, everything else (comments,
        order, other rules and keys) kept; the version is bumped if the policy changed."""
        doc = tomlkit.parse(text)
        budget = doc.get("budget")
        if not isinstance(budget, Table):
            budget = tomlkit.table()
            doc["budget"] = budget
        # Only the designer's limit is set: other limits in the file stay (all of them apply,
        # and the preview, computed on this text, shows it).
        for k, v in self.budget_table().items():
            if budget.get(k) != v:
                budget[k] = v
        judges = doc.get("judge")
        known = {str(t.get("name")) for t in judges} if isinstance(judges, AoT) else set()
        for j in self.judges:
            if j.judge_name not in known:
                if not isinstance(judges, AoT):
                    judges = tomlkit.aot()
                    doc["judge"] = judges
                judges.append(_table(j.table()))
        if isinstance(judges, AoT):
            for o in self.judge_overrides:
                target = next((t for t in judges if t.get("name") == o.name), None)
                if target is not None:
                    _override(target, o)
        rules = doc.get("policy")
        main = self.main_table()
        if isinstance(rules, AoT):
            target = next((t for t in rules if t.get("name") == MAIN), None)
            if target is None:
                target = next((t for t in reversed(rules) if t.get("type") == "stratified"),
                              None)
            if target is None:
                rules.append(_table(main))
            else:
                main["name"] = target.get("name", MAIN)
                if target.get("type") != "stratified" and "rate" in target:
                    del target["rate"]  # a probabilistic rule becomes the stratified one
                for k in ("key_fields", "allocation", "min_per_stratum", "min_rate", "max_keys"):
                    if k in target and k not in main:
                        del target[k]
                for k, v in main.items():
                    if k == "key_fields":
                        if not _same_keys(target.get(k), v):  # else: keep it as written
                            target[k] = _merged_keys(target.get(k), v)
                        continue
                    if target.get(k) != v:
                        target[k] = v
        else:
            doc["policy"] = _aot([main])
        self._apply_rules(cast(AoT, doc["policy"]), main["name"])
        return bump_if_changed(text, tomlkit.dumps(doc))

    def _apply_rules(self, rules: AoT, main: str) -> None:
        """The designer's extra rules in an edited file: each written (by name) just before
        the main rule, or set in place when the file has it (from an earlier save); the
        ones removed with R deleted. The file's other rules stay as written."""
        judges = [j.judge_name for j in self.judges]
        for name in self.removed_rules:
            at = next((i for i, t in enumerate(rules) if t.get("name") == name), None)
            if at is not None and name not in {r.name for r in self.rules}:
                del rules[at]
        for rule in self.rules:
            values = rule.table(judges)
            target = next((t for t in rules if t.get("name") == rule.name), None)
            if target is None:
                at = next((i for i, t in enumerate(rules) if t.get("name") == main),
                          len(rules))
                table = _table(values)
                table.add(tomlkit.nl())
                rules.insert(at, table)
                continue
            for k in [k for k in target if k not in values]:
                del target[k]
            for k, v in values.items():
                if target.get(k) != v:
                    target[k] = _value(v)

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_policy(cls, policy: Policy) -> Draft:
        """The designer's view of an existing policy (its main stratified rule)."""
        b = policy.budget
        kind: BudgetKind = "traces"
        amount: float = b.max_traces or 100
        if b.max_traces is None and b.max_tokens is not None:
            kind, amount = "tokens", b.max_tokens
        elif b.max_traces is None and b.max_usd is not None:
            kind, amount = "usd", b.max_usd
        main = next((r for r in policy.rules if r.name == MAIN), None)
        if not isinstance(main, StratifiedRule):
            main = next((r for r in reversed(policy.rules) if isinstance(r, StratifiedRule)),
                        None)
        # judges=(): an edit keeps the file's judges and the rule's `judges` as written
        draft = cls(name=policy.name, experiment=policy.source.experiment_name,
                    window=str(b.window), budget_kind=kind, budget=amount, judges=(),
                    description=policy.description)
        if isinstance(main, StratifiedRule):
            draft = draft.with_(
                key_fields=tuple(_key_spec(k) for k in main.key_fields),
                allocation=main.allocation, min_per_stratum=main.min_per_stratum,
                min_rate=main.min_rate, max_keys=main.max_keys)
        return draft


def _override(target: Table, judge: JudgeChoice) -> None:
    """Set a declared judge's model, endpoint, key variable and price to `judge`'s (only
    the keys that differ, so an unchanged choice leaves the file as it was)."""
    wanted: dict[str, Any] = {"model": judge.model, "base_url": judge.base_url,
                              "api_key_env": judge.api_key_env,
                              "usd_per_1k_tokens": judge.price}
    for k, v in wanted.items():
        if v is None:
            if k in target:
                del target[k]
        elif target.get(k) != v:
            target[k] = v


def declared_judge(decl: Any) -> JudgeChoice:
    """A file's `[[judge]]` as the designer shows it (`template`: the scorer; its price
    left unset when it is the model's listed one)."""
    options = decl.options
    model = str(options.get("model", DEFAULT_MODEL))
    usd = None if decl.usd_per_1k_tokens == price_of(model) else decl.usd_per_1k_tokens
    return JudgeChoice(decl.scorer, decl.name, model=model, base_url=options.get("base_url"),
                       api_key_env=options.get("api_key_env"), usd_per_1k=usd)


def _same_keys(old: Any, new: list[str]) -> bool:
    from samplers.strata import parse_key_field

    try:
        a = [parse_key_field(x.unwrap() if hasattr(x, "unwrap") else x) for x in old or []]
        b = [parse_key_field(x) for x in new]
    except (ValueError, TypeError):
        return False
    return [(k.field, k.buckets) for k in a] == [(k.field, k.buckets) for k in b]


def _merged_keys(old: Any, new: list[str]) -> Any:
    """`new` key fields, each keeping the file's entry for the same field: as written when
    its buckets are the same, its label (so the stratum names) when only they changed."""
    from samplers.strata import parse_key_field

    olds = []
    for x in old or []:
        raw = x.unwrap() if hasattr(x, "unwrap") else x
        try:
            olds.append((parse_key_field(raw), raw))
        except (ValueError, TypeError):
            continue
    out = tomlkit.array()
    for spec in new:
        key = parse_key_field(spec)
        found = next(((k, raw) for k, raw in olds if k.field == key.field), None)
        if found is None:
            out.append(spec)
        elif isinstance(found[1], dict):
            entry = {k: v for k, v in found[1].items() if k != "buckets"}
            if key.buckets:
                entry["buckets"] = [int(b) if b.is_integer() else b for b in key.buckets]
            inline = tomlkit.inline_table()
            inline.update(entry)
            out.append(inline)
        else:
            out.append(found[1] if found[0].buckets == key.buckets else spec)
    return out.multiline(len(out) > 2)


def _key_spec(k: Any) -> str:
    if k.buckets:
        return f"bucket({k.field}, [{', '.join(f'{b:g}' for b in k.buckets)}])"
    return str(k.field)


def _table(values: dict[str, Any]) -> Table:
    t = tomlkit.table()
    for k, v in values.items():
        t.add(k, _value(v))
    return t


def _value(v: Any) -> Any:
    """A list of tables (a rule's conditions) as one array of inline tables, as the docs
    write them, rather than `[[policy.conditions]]` sections."""
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        out = tomlkit.array()
        for x in v:
            inline = tomlkit.inline_table()
            inline.update(x)
            out.append(inline)
        return out
    return v


def _aot(tables: Any) -> AoT:
    aot = tomlkit.aot()
    for t in tables:
        aot.append(_table(t))
    return aot


def next_version(version: Any) -> Any:
    """1 -> 2, "3" -> "4", "1.4" -> "1.5", "beta" -> "beta.1"."""
    if isinstance(version, bool):
        return "2"
    if isinstance(version, int):
        return version + 1
    text = str(version)
    m = re.match(r"^(.*?)(\d+)$", text)
    if m:
        return f"{m.group(1)}{int(m.group(2)) + 1}"
    return f"{text}.1"


def bump_if_changed(old: str, new: str) -> str:
    """`new` with its `version` bumped past `old`'s when the policies differ (other than in
    version and comments). An unparsable old text counts as changed."""
    try:
        before = _content(old)
    except (PolicyError, tomlkit.exceptions.ParseError):
        before = None
    doc = tomlkit.parse(new)
    after = _content(new)
    if before == after:
        return new
    old_version = tomlkit.parse(old).get("version", "1") if before is not None else None
    if old_version is not None and doc.get("version", "1") == old_version:
        current = doc.get("version", "1")
        doc["version"] = next_version(current.unwrap() if hasattr(current, "unwrap")
                                      else current)
    return tomlkit.dumps(doc)


def _content(text: str) -> Any:
    raw = tomlkit.parse(text).unwrap()
    raw.pop("version", None)
    return raw


def check(text: str, source: str = "<designer>") -> Policy:
    """Parse with the sampler's schema (PolicyError on a problem)."""
    return parse_policy(text, source)
