"""The designer's typed edits, each a small form: the budget (amount, unit, window); a
judge's model, endpoint and API key variable; a rule's type, conditions (the policy file's
own syntax), match and rate; a numeric field's bucket boundaries. `enter` checks the form
(trace_tui.design.edits, the policy schema): a problem stays on the form as one line, a
valid edit closes it with the new draft."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select

from trace_tui.design.draft import BUDGET_KEYS, Draft, declared_judge
from trace_tui.design.edits import (
    ENV_NAME,
    RULE_TYPES,
    EditError,
    conditions_text,
    edit_budget,
    edit_declared_judge,
    edit_judge,
    edit_rule,
    key_env_problem,
    parse_boundaries,
)
from trace_tui.design.judges import price_of, template
from trace_tui.design.profile import FieldProfile
from trace_tui.tui.widgets.safe import SafeLabel, SafeStatic

if TYPE_CHECKING:
    from samplers.policy import JudgeDecl


@dataclass(frozen=True)
class FormField:
    """One input of a form; `choices`: a drop-down instead of free text."""

    id: str
    label: str
    value: str = ""
    placeholder: str = ""
    choices: tuple[str, ...] = ()


class EditForm(ModalScreen[Draft | None]):
    """A title, labelled inputs, a hint line and an error line; `enter` in an input applies
    `apply(values)` (a new Draft, or EditError shown inline), `esc` cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="designer.edit_cancel"),
    ]

    DEFAULT_CSS = """
    EditForm { align: center middle; }
    EditForm > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 100%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    EditForm SafeLabel { margin-top: 1; color: $text-muted; }
    EditForm Input, EditForm Select { background: $boost; }
    EditForm #edit-hint { height: auto; margin-top: 1; color: $text-muted; }
    EditForm #edit-error { height: 1; color: $error; }
    """

    def __init__(self, title: str, fields: list[FormField],
                 apply: Callable[[dict[str, str]], Draft],
                 hint: Callable[[dict[str, str]], str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.apply = apply
        self.hint = hint
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SafeLabel(f"{self.title_text}  (enter: apply, esc: cancel)")
            for f in self.fields:
                yield SafeLabel(f.label)
                if f.choices:
                    yield Select([(c, c) for c in f.choices], value=f.value,
                                 allow_blank=False, id=f.id, compact=True)
                else:
                    yield Input(f.value, placeholder=f.placeholder, id=f.id, compact=True)
            yield SafeStatic("", id="edit-hint")
            yield SafeStatic("", id="edit-error", multiline=False)

    def on_mount(self) -> None:
        self._show_hint()
        first = next((f for f in self.fields if not f.choices), None)
        if first is not None:
            self.query_one(f"#{first.id}", Input).focus()

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.fields:
            if f.choices:
                out[f.id] = str(self.query_one(f"#{f.id}", Select).value)
            else:
                out[f.id] = self.query_one(f"#{f.id}", Input).value
        return out

    def _show_hint(self) -> None:
        if self.hint is not None:
            self.query_one("#edit-hint", SafeStatic).update(self.hint(self.values()))

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._show_hint()

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            draft = self.apply(self.values())
        except EditError as exc:
            self.error = str(exc)
            self.query_one("#edit-error", SafeStatic).update(self.error)
            return
        self.dismiss(draft)

    def action_cancel(self) -> None:
        self.dismiss(None)


def judge_hint(scorer: str, trace_aware: bool, est_tokens: int
               ) -> Callable[[dict[str, str]], str]:
    """Price and tokens for the model typed, and whether the key variable is set (its
    value is never read out)."""

    def hint(values: dict[str, str]) -> str:
        model = values.get("judge-model", "").strip() or "the default model"
        price = values.get("judge-price", "").strip()
        listed = price_of(values.get("judge-model", "").strip())
        cost = (f"${price} per 1k tokens (yours)" if price else
                f"${listed:g} per 1k tokens ({'listed' if listed else 'unknown model: $0'}"
                " for " + model + ")")
        env = values.get("judge-key-env", "").strip()
        if not env:
            key = "key: the provider's own variable (openai: OPENAI_API_KEY)"
        elif ENV_NAME.match(env) and key_env_problem(env) is None:
            key = f"key variable {env}: {'set' if os.environ.get(env) else 'NOT set'} here"
        else:
            key = "key variable: must be a NAME (letters, digits, _), not the key"
        kind = "trace-aware" if trace_aware else "outputs-based"
        return f"{scorer} ({kind}, ~{est_tokens:,} tokens a trace) · {cost}\n{key}"

    return hint


def judge_form(draft: Draft, index: int, decls: tuple[JudgeDecl, ...] = ()) -> EditForm:
    """The model, endpoint (base_url), API key variable and price of the draft's judge
    `index`, or (the draft has none: an edited file) of the file's judge `decls[index]`."""
    if draft.judges:
        j = draft.judges[index]
        t = template(j.template)
        hint = judge_hint(t.scorer, t.trace_aware, t.est_tokens)
    else:
        decl = decls[index]
        j = next((o for o in draft.judge_overrides if o.name == decl.name),
                 declared_judge(decl))
        hint = judge_hint(decl.scorer, decl.trace_aware, decl.est_tokens)
    price = "" if j.usd_per_1k is None else f"{j.usd_per_1k:g}"
    fields = [
        FormField("judge-model", "model (MLflow model URI)", j.model, "openai:/gpt-4o-mini"),
        FormField("judge-base-url", "endpoint (base_url; blank: the provider's)",
                  j.base_url or "", "http://localhost:8000/v1"),
        FormField("judge-key-env", "API key variable: its NAME, never the key",
                  j.api_key_env or "", "OPENAI_API_KEY"),
        FormField("judge-price", "$ per 1k judge tokens (blank: the model's price)",
                  price, "0.00018"),
    ]

    def apply(v: dict[str, str]) -> Draft:
        values = {"model": v["judge-model"], "base_url": v["judge-base-url"],
                  "key_env": v["judge-key-env"], "price": v["judge-price"]}
        if draft.judges:
            return edit_judge(draft, index, **values)
        return edit_declared_judge(draft, decls[index], **values)

    return EditForm(f"Judge {j.judge_name}", fields, apply, hint)


def rule_form(draft: Draft, new: bool, reserved: frozenset[str] = frozenset()) -> EditForm:
    """The last rule before the main one (`new`, or no rule yet: another one): its type,
    conditions as the file writes them, match, and the probabilistic rule's rate."""
    index = None if new or not draft.rules else len(draft.rules) - 1
    rule = draft.rules[index] if index is not None else None
    rate = rule.rate if rule is not None and rule.rate is not None else 0.05
    fields = [
        FormField("rule-type", "type", rule.type if rule else "probabilistic",
                  choices=RULE_TYPES),
        FormField("rule-conditions", "conditions, as in the file (blank: every trace)",
                  conditions_text(rule.conditions) if rule else "",
                  '{ field = "status", op = "=", value = "ERROR" }, ...'),
        FormField("rule-match", "match: all (AND) or any (OR)", rule.match if rule else "all",
                  choices=("all", "any")),
        FormField("rule-rate", "rate (probabilistic only: 0.05 or 5%)", f"{rate:g}", "0.05"),
    ]

    def apply(v: dict[str, str]) -> Draft:
        return edit_rule(draft, index, kind=v["rule-type"], conditions=v["rule-conditions"],
                         match=v["rule-match"], rate=v["rule-rate"], reserved=reserved)

    title = f"Rule {rule.name}" if rule else "New rule (before the main one)"
    return EditForm(title, fields, apply)


def bucket_form(draft: Draft, f: FieldProfile) -> EditForm:
    """Numeric field `f`'s bucket boundaries (as chosen, else its quartiles); applying
    makes it a key field."""
    keys = list(draft.key_fields)
    at = next((i for i, k in enumerate(keys) if k.startswith(f"bucket({f.path},")), None)
    current = keys[at] if at is not None else f.key_field
    edges = current[current.index("[") + 1:current.rindex("]")]
    quartiles = ", ".join(f"{b:g}" for b in f.boundaries)

    def apply(v: dict[str, str]) -> Draft:
        spec = parse_boundaries(f.path, v["bucket-edges"])
        new = [*keys]
        if at is None:
            new.append(spec)
        else:
            new[at] = spec
        return draft.with_(key_fields=tuple(new))

    return EditForm(f"Buckets of {f.path}", [FormField(
        "bucket-edges", f"boundaries, ascending (quartiles: {quartiles or 'none'})", edges,
        "1000, 5000")], apply)


def budget_form(draft: Draft) -> EditForm:
    """The budget: an amount of traces, judge tokens or dollars per window."""
    amount = f"{draft.budget:g}" if draft.budget_kind == "usd" else f"{int(draft.budget)}"
    fields = [
        FormField("budget-amount", "amount per window", amount, "100"),
        FormField("budget-kind", "unit", draft.budget_kind, choices=tuple(BUDGET_KEYS)),
        FormField("budget-window", "window (e.g. 10m, 1h, 1d)", draft.window, "1h"),
    ]

    def apply(v: dict[str, str]) -> Draft:
        return edit_budget(draft, amount=v["budget-amount"], kind=v["budget-kind"],
                           window=v["budget-window"])

    return EditForm("Budget", fields, apply)
