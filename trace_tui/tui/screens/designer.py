"""The policy designer: pick key fields from the data's profile, set budget, allocation,
floors and judges, and watch rates, cost and the expected precision update; save a policy
`sample` reads as is, or edit it in $EDITOR (errors come back inline with file:line).

Over 500 lines on purpose: one screen whose every key edits the same draft and restarts the
same preview generation; the typed edits' forms are in designer_edits, their checks and the
judge menu's moves in trace_tui.design.edits (headless)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer
from textual.worker import get_current_worker

from samplers import MISSING
from trace_tui.core.text import safe_text
from trace_tui.design.draft import Draft, JudgeChoice
from trace_tui.design.edits import EditError, add_judge, cycle_judge, remove_judge, rule_name
from trace_tui.design.judges import MENU
from trace_tui.tui.widgets.safe import SafeStatic

if TYPE_CHECKING:
    from samplers.policy import JudgeDecl
    from trace_tui.design.preview import Preview
    from trace_tui.design.window import DesignWindow
    from trace_tui.design.worker import PreviewProcess
    from trace_tui.tui.app import TraceExplorerApp

ALLOCATIONS = ("neyman", "proportional", "equal", "cost_optimal")
BUDGET_KINDS = ("traces", "tokens", "usd")
BUDGET_STEP = 1.25
FIELD_COLUMNS = ("key", "field", "values", "largest", "spread")
PREVIEW_COLUMNS = ("stratum", "pop/w", "rate", "sample/w", "tokens/w", "$/w", "pass")


class DesignerScreen(Screen[None]):
    """Draft -> TOML -> the sampler's own parser and planner, recomputed in a thread."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="designer.back"),
        Binding("space", "toggle_field", "Key field", id="designer.toggle"),
        Binding("b", "budget(1)", "Budget+", id="designer.budget_up"),
        Binding("B", "budget(-1)", "Budget-", show=False, id="designer.budget_down"),
        Binding("k", "budget_kind", "Unit", id="designer.budget_kind"),
        Binding("w", "budget_form", "Budget/window", show=False, id="designer.budget_form"),
        Binding("a", "allocation", "Allocation", id="designer.allocation"),
        Binding("m", "min_per_stratum(1)", "Min+", show=False, id="designer.min_up"),
        Binding("M", "min_per_stratum(-1)", "Min-", show=False, id="designer.min_down"),
        Binding("f", "floor(1)", "Floor+", show=False, id="designer.floor_up"),
        Binding("F", "floor(-1)", "Floor-", show=False, id="designer.floor_down"),
        Binding("j", "judge", "Judge", id="designer.judge"),
        Binding("J", "judge_settings", "Judge model/key", id="designer.judge_settings"),
        Binding("plus", "add_judge", "Add judge", show=False, id="designer.judge_add"),
        Binding("minus", "remove_judge", "Remove judge", show=False,
                id="designer.judge_remove"),
        Binding("n", "next_judge", "Next judge", show=False, id="designer.judge_next"),
        Binding("p", "prior(1)", "Prior+", show=False, id="designer.prior_up"),
        Binding("P", "prior(-1)", "Prior-", show=False, id="designer.prior_down"),
        Binding("d", "rule('drop')", "Drop rule", show=False, id="designer.rule_drop"),
        Binding("A", "rule('always')", "Always rule", show=False, id="designer.rule_always"),
        Binding("o", "rule('probabilistic')", "5% rule", show=False,
                id="designer.rule_probabilistic"),
        Binding("R", "remove_rule", "Remove rule", show=False, id="designer.rule_remove"),
        Binding("c", "edit_rule(False)", "Rule conditions", id="designer.rule_edit"),
        Binding("C", "edit_rule(True)", "New rule", show=False, id="designer.rule_new"),
        Binding("u", "buckets", "Buckets", show=False, id="designer.buckets"),
        Binding("t", "test_judge", "Test judge", id="designer.test_judge"),
        Binding("ctrl+s", "save", "Save", id="designer.save"),
        Binding("E", "edit", "$EDITOR", id="designer.edit"),
    ]

    DEFAULT_CSS = """
    DesignerScreen #designer-title { height: 1; background: $boost; padding: 0 1; }
    DesignerScreen #fields { height: 7; }
    DesignerScreen #designer-choices { height: auto; max-height: 5; padding: 0 1; }
    DesignerScreen #preview { height: 1fr; }
    DesignerScreen #designer-totals { height: 2; padding: 0 1; }
    DesignerScreen #designer-test { height: auto; max-height: 3; padding: 0 1; }
    DesignerScreen #designer-error { height: auto; max-height: 3; color: $error; padding: 0 1; }
    """

    def __init__(self, out: Path, *, window: DesignWindow | None = None,
                 experiment_ids: list[str] | None = None, since_s: float = 86_400,
                 experiment: str | None = None,
                 judge: JudgeChoice | None = None) -> None:
        super().__init__()
        self.out = out
        self.window = window
        self.experiment_ids = experiment_ids
        self.since_s = since_s
        self.prior = 0.9
        self.judge_index = 0  # the judge j, J, -, t act on (n: the next one)
        self.draft = Draft(name=out.stem or "policy", experiment=experiment,
                           judges=(judge or JudgeChoice("relevance"),))
        self.base_text: str | None = None  # the file as opened (edits keep its comments)
        self.error = ""
        self.result: Preview | None = None
        self.last_verdict: Any = None
        self.text = ""  # the TOML the preview was computed from (what Save writes)
        self._generation = 0
        self._shown = 0  # the generation on screen
        self._process: PreviewProcess | None = None
        self.file_judges: tuple[JudgeDecl, ...] = ()  # an edited file's [[judge]]s
        self.file_rules: frozenset[str] = frozenset()  # and its rule names
        self._load_existing()

    @property
    def computing(self) -> bool:
        """A preview of the latest choices is still being computed."""
        return self._shown != self._generation

    @property
    def tapp(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def _load_existing(self) -> None:
        from samplers import PolicyError, parse_policy

        if not self.out.exists():
            return
        try:
            self.base_text = self.out.read_text(encoding="utf-8")
            policy = parse_policy(self.base_text, str(self.out))
        except (OSError, UnicodeDecodeError, PolicyError) as exc:
            self.error = str(exc)
            self.base_text = None
            return
        # judges=(): the file's judges and the rule's `judges` stay as written (j replaces
        # them); J sets a file judge's model, endpoint and key variable (judge_overrides)
        self.draft = Draft.from_policy(policy)
        self.file_judges = policy.judges
        self.file_rules = frozenset(r.name for r in policy.rules)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SafeStatic("", id="designer-title", multiline=False)
            yield DataTable(id="fields", cursor_type="row", zebra_stripes=True)
            yield SafeStatic("", id="designer-choices")
            yield DataTable(id="preview", cursor_type="row", zebra_stripes=True)
            yield SafeStatic("", id="designer-totals")
            yield SafeStatic("", id="designer-test")
            yield SafeStatic(self.error, id="designer-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#fields", DataTable).add_columns(*FIELD_COLUMNS)
        self.query_one("#preview", DataTable).add_columns(*PREVIEW_COLUMNS)
        self._show_title()
        if self.window is None:
            self.load_window()
        else:
            self._window_ready()

    # ------------------------------------------------------------------ data

    @work(exclusive=True, group="designer-load")
    async def load_window(self) -> None:
        from trace_tui.core.client import MlflowClient
        from trace_tui.core.errors import TraceTuiError
        from trace_tui.design.source import fetch_window

        self.query_one("#designer-totals", SafeStatic).update("reading recent traces ...")
        try:
            ids = self.experiment_ids
            if not ids:
                exp = self.tapp.experiment
                if exp is None:
                    exp = await self.tapp.client.resolve_experiment(self.draft.experiment)
                ids = [exp.experiment_id]
                if self.draft.experiment is None:
                    self.draft = self.draft.with_(experiment=exp.name)
            client = cast(MlflowClient, self.tapp.client)
            self.window = await fetch_window(client, ids, self.since_s)
        except TraceTuiError as exc:
            self._set_error(str(exc))
            return
        self._window_ready()

    def on_unmount(self) -> None:
        if self._process is not None:
            self._process.close()

    def _window_ready(self) -> None:
        from trace_tui.design.worker import PreviewProcess

        assert self.window is not None
        if self._process is not None:
            self._process.close()
        self._process = PreviewProcess(self.window)
        self._show_fields()
        self._show_title()
        self.query_one("#fields", DataTable).focus()
        self.recompute()

    # ------------------------------------------------------------------ preview

    def recompute(self) -> None:
        """Start a preview of the current draft; a newer one makes older results stale."""
        if self.window is None:
            return
        self._generation += 1
        self._show_choices()
        self.query_one("#designer-totals", SafeStatic).update("computing ...")
        self._compute(self._generation, self.draft, self.prior, self.base_text)

    @work(thread=True, exclusive=False, group="designer-preview")
    def _compute(self, generation: int, draft: Draft, prior: float, base: str | None) -> None:
        """In a thread that waits on the preview process (see trace_tui.design.worker)."""
        if generation != self._generation or self._process is None:
            return  # a newer choice was made before this one started: skip it
        text = draft.apply_to(base) if base is not None else draft.to_toml()
        result, error = self._process.compute(text, str(self.out), prior)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._computed, generation, text, result, error)

    def _computed(self, generation: int, text: str, result: Preview | None, error: str) -> None:
        if generation != self._generation:
            return  # a newer choice is being computed
        self.text, self.result, self._shown = text, result, generation
        self._set_error(error)
        self._show_preview()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.app.pop_screen()

    def _change(self, **changes: Any) -> None:
        self.draft = self.draft.with_(**changes)
        self.recompute()

    def action_toggle_field(self) -> None:
        table = self.query_one("#fields", DataTable)
        if self.window is None or not table.row_count:
            return
        f = self.window.profile.fields[table.cursor_row]
        keys = list(self.draft.key_fields)
        current = next((k for k in keys if k == f.key_field or k == f.path
                        or k.startswith(f"bucket({f.path},")), None)
        if current is None:
            keys.append(f.key_field)
        else:
            keys.remove(current)
        self._change(key_fields=tuple(keys))
        self._show_fields()

    def action_budget(self, direction: int) -> None:
        amount = self.draft.budget * (BUDGET_STEP if direction > 0 else 1 / BUDGET_STEP)
        if self.draft.budget_kind != "usd":
            amount = max(1, round(amount))
        self._change(budget=amount)

    def action_budget_form(self) -> None:
        """A form for the budget's amount, unit and window."""
        from trace_tui.tui.screens.designer_edits import budget_form

        self.app.push_screen(budget_form(self.draft), self._edited)

    def action_budget_kind(self) -> None:
        i = (BUDGET_KINDS.index(self.draft.budget_kind) + 1) % len(BUDGET_KINDS)
        defaults = {"traces": 100, "tokens": 100_000, "usd": 1.0}
        kind = BUDGET_KINDS[i]
        self._change(budget_kind=kind, budget=defaults[kind])

    def action_allocation(self) -> None:
        current = self.draft.allocation
        i = (ALLOCATIONS.index(current) + 1) % len(ALLOCATIONS) if current in ALLOCATIONS else 0
        self._change(allocation=ALLOCATIONS[i])

    def action_min_per_stratum(self, step: int) -> None:
        self._change(min_per_stratum=max(0, self.draft.min_per_stratum + step))

    def action_floor(self, step: int) -> None:
        floor = round(min(1.0, max(0.0, self.draft.min_rate + 0.005 * step)), 4)
        self._change(min_rate=floor)

    def action_prior(self, step: int) -> None:
        self.prior = round(min(0.99, max(0.01, self.prior + 0.05 * step)), 2)
        self.recompute()

    def action_judge(self) -> None:
        """The selected judge: the next menu entry no other judge uses."""
        self._judges(cycle_judge)

    def action_add_judge(self) -> None:
        self._judges(add_judge)

    def action_remove_judge(self) -> None:
        self._judges(remove_judge)

    def _judges(self, edit: Any) -> None:
        try:
            draft, self.judge_index = edit(self.draft, self.judge_index)
        except EditError as exc:
            self.notify(str(exc), severity="warning")
            return
        self._change(judges=draft.judges)

    def _judge_count(self) -> int:
        return len(self.draft.judges) or len(self.file_judges)

    def action_next_judge(self) -> None:
        if self._judge_count():
            self.judge_index = (self.judge_index + 1) % self._judge_count()
            self._show_choices()

    def action_judge_settings(self) -> None:
        """A form for the selected judge's model, endpoint, key variable and price."""
        from trace_tui.tui.screens.designer_edits import judge_form

        if not self._judge_count():
            self.notify("no judge yet (j picks one from the menu)", severity="warning")
            return
        self.judge_index = min(self.judge_index, self._judge_count() - 1)
        self.app.push_screen(judge_form(self.draft, self.judge_index, self.file_judges),
                             self._edited)

    def action_edit_rule(self, new: bool) -> None:
        """A form for the last rule before the main one (new: another rule)."""
        from trace_tui.tui.screens.designer_edits import rule_form

        self.app.push_screen(rule_form(self.draft, new, self.file_rules), self._edited)

    def action_buckets(self) -> None:
        """A form for the selected numeric field's bucket boundaries (it becomes a key)."""
        from trace_tui.tui.screens.designer_edits import bucket_form

        table = self.query_one("#fields", DataTable)
        if self.window is None or not table.row_count:
            return
        f = self.window.profile.fields[table.cursor_row]
        if not f.numeric:
            self.notify(f"{f.path} is not numeric: its values are the strata",
                        severity="warning")
            return
        self.app.push_screen(bucket_form(self.draft, f), self._edited)

    def _edited(self, draft: Draft | None) -> None:
        if draft is not None:
            self.draft = draft
            self._show_fields()
            self.recompute()

    def action_rule(self, kind: str) -> None:
        """A rule before the main one, on the selected field: `field = value` (pressed
        again: the field's next value, then off); numeric fields: `>=` its top quartile."""
        from trace_tui.design.draft import ExtraRule

        table = self.query_one("#fields", DataTable)
        if self.window is None or not table.row_count:
            return
        f = self.window.profile.fields[table.cursor_row]
        if f.numeric:
            choices: list[tuple[str, Any]] = [(">=", f.boundaries[-1])] if f.boundaries else []
        else:
            choices = [("=", v.value) for v in f.values if v.value != MISSING][:20]
        rules = list(self.draft.rules)
        at = next((i for i, r in enumerate(rules)
                   if r.type == kind and r.conditions and r.conditions[0][0] == f.path), None)
        nxt = 0
        if at is not None:
            current = rules.pop(at).conditions[0][1:]
            nxt = next((i + 1 for i, c in enumerate(choices) if c == current), len(choices))
        if nxt < len(choices):
            op, value = choices[nxt]
            name = rule_name(self.draft.with_(rules=tuple(rules)), kind, self.file_rules)
            rule = ExtraRule(name, cast(Any, kind), ((f.path, op, value),),
                             0.05 if kind == "probabilistic" else None)
            rules.insert(at if at is not None else len(rules), rule)
        self._change(rules=tuple(rules))

    def action_remove_rule(self) -> None:
        if self.draft.rules:  # an edited file loses it too, if an earlier save wrote it
            self._change(rules=self.draft.rules[:-1],
                         removed_rules=(*self.draft.removed_rules, self.draft.rules[-1].name))

    def action_test_judge(self) -> None:
        """The selected judge (n) on one trace of the selected stratum."""
        from samplers import parse_policy

        if self.result is None or self.window is None or not self.result.rows:
            self.notify("nothing to test yet", severity="warning")
            return
        judges = [j.name for j in parse_policy(self.text).judges]
        i = min(self.judge_index, max(self._judge_count(), 1) - 1)
        judge = (self.draft.judges[i].judge_name if self.draft.judges
                 else judges[i] if i < len(judges) else "")
        if not judge:
            self.notify("the draft has no judge (j picks one)", severity="warning")
            return
        table = self.query_one("#preview", DataTable)
        row = self.result.rows[min(table.cursor_row, len(self.result.rows) - 1)]
        self.test_judge(row.stratum, judge, self.text)

    @work(exclusive=True, group="designer-judge")
    async def test_judge(self, stratum: str, judge: str, text: str) -> None:
        from samplers import parse_policy
        from trace_tui.core.client import MlflowClient
        from trace_tui.core.errors import TraceTuiError
        from trace_tui.design.judge_trial import try_judge
        from trace_tui.design.preview import strata_of

        assert self.window is not None
        out = self.query_one("#designer-test", SafeStatic)
        groups = await asyncio.to_thread(strata_of, parse_policy(text), self.window.records)
        records = groups.get(stratum, ("", []))[1]
        if not records:
            out.update(f"no trace of {stratum} in the window")
            return
        trace_id = records[-1].trace_id
        out.update(f"judge {judge} on {trace_id} ...")
        try:
            v = await try_judge(cast(MlflowClient, self.tapp.client), text, judge,
                                      trace_id)
        except TraceTuiError as exc:
            out.update(f"judge {judge} on {trace_id}: {exc}")
            return
        self.last_verdict = v
        result = v.error or f"{v.value} ({'pass' if v.passed else 'fail'})"
        out.update(f"judge {judge} on {trace_id}: {result}. {v.rationale or ''}")

    def action_save(self) -> None:
        if not self.text or self.result is None:
            self.notify("nothing valid to save yet", severity="warning")
            return
        from trace_tui.design.lint import lint_text

        problems = lint_text(self.text, str(self.out))
        if problems:
            self._set_error("\n".join(problems))
            return
        self.out.write_text(self.text, encoding="utf-8")
        self.base_text = self.text
        from samplers import parse_policy

        version = parse_policy(self.text).version
        self.notify(f"saved {self.out} (version {version})")
        self._show_title()

    def action_edit(self) -> None:
        if not self.out.exists():
            self.action_save()
            if not self.out.exists():
                return
        self.edit_file()

    @work(exclusive=True, group="designer-edit")
    async def edit_file(self) -> None:
        from trace_tui.tui.editor import edit_in_editor

        problems = await edit_in_editor(self.app, self.out)
        if problems:
            self._set_error("\n".join(problems))
            return
        self._set_error("")
        self._load_existing()
        self._show_fields()
        self.recompute()

    # ------------------------------------------------------------------ rendering

    def _set_error(self, error: str) -> None:
        self.error = error
        self.query_one("#designer-error", SafeStatic).update(error)

    def _show_title(self) -> None:
        w = self.window
        data = (f"{w.total:,} traces, {w.profile.judged:,} judged" if w is not None
                else "loading")
        self.query_one("#designer-title", SafeStatic).update(
            f"Designer · {self.out} · {data} (space: key field, ctrl+s: save)")

    def _show_fields(self) -> None:
        table = self.query_one("#fields", DataTable)
        row = table.cursor_row
        table.clear()
        if self.window is None:
            return
        chosen = set(self.draft.key_fields)
        for f in self.window.profile.fields:
            on = f.key_field in chosen or f.path in chosen or any(
                k.startswith(f"bucket({f.path},") for k in chosen)
            top = f.values[0] if f.values else None
            card = f"{f.cardinality}{'+' if f.truncated else ''}"
            largest = f"{top.share:.0%} {top.value}" if top else ""
            spread = "-" if f.spread is None else f"{f.spread:.2f}"
            edges = next((k[k.index("["):] for k in chosen
                          if k.startswith(f"bucket({f.path},")), "(quartiles)")
            name = f"{f.path} {edges}" if f.numeric else f.path
            cells = ("[x]" if on else "[ ]", name[:32], card,
                     largest, spread)
            table.add_row(*(Text(safe_text(c, multiline=False)) for c in cells))
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def _show_choices(self) -> None:
        from trace_tui.core.uri import redact_uri
        from trace_tui.design.draft import declared_judge

        d = self.draft
        overrides = {o.name: o for o in d.judge_overrides}
        shown = d.judges or tuple(overrides.get(j.name, declared_judge(j))
                                  for j in self.file_judges)
        judge = " ".join(
            f"{'▸' if i == self.judge_index and len(shown) > 1 else ''}{j.judge_name} "
            f"({j.model}, ${j.price:g}/1k"
            f"{', ' + redact_uri(j.base_url) if j.base_url else ''}"
            f"{', key $' + j.api_key_env if j.api_key_env else ''})"
            for i, j in enumerate(shown)) or "none"
        amount = (f"${d.budget:.2f}" if d.budget_kind == "usd"
                  else f"{d.budget:,.0f} {d.budget_kind}")
        self.query_one("#designer-choices", SafeStatic).update(
            f"budget {amount}/{d.window} · {d.allocation} · min {d.min_per_stratum}/stratum · "
            f"floor {d.min_rate:.1%}{_rules_text(d)}\njudges: {judge}\nprior "
            f"{self.prior:.0%} · keys: {', '.join(d.key_fields) or 'none (uniform)'}")

    def _show_preview(self) -> None:
        table = self.query_one("#preview", DataTable)
        table.clear()
        r = self.result
        if r is None:
            self.query_one("#designer-totals", SafeStatic).update("")
            return
        for row in r.rows:
            cells = (row.stratum, f"{row.population:,.1f}", f"{row.rate:.1%}",
                     f"{row.expected_sample:.1f}", f"{row.judge_tokens:,.0f}",
                     f"{row.cost_usd:.4f}", f"{row.pass_rate:.0%}{'' if row.judged else '*'}")
            table.add_row(*(Text(safe_text(c, multiline=False)) for c in cells))
        self.query_one("#designer-totals", SafeStatic).update(
            f"per window: sample {r.expected_sample:.1f} · tokens {r.judge_tokens:,.0f} · "
            f"${r.cost_usd:.4f}   ±{_pct(r.half_width)} vs uniform ±"
            f"{_pct(r.uniform_half_width)} (95%, {r.judge or 'all judges'}, "
            f"{r.windows:g} window{'s' if r.windows != 1 else ''}{_prior_note(self.window)})")


def _rules_text(d: Draft) -> str:
    if not d.rules:
        return ""
    parts = []
    for r in d.rules:
        conds = f" {r.match} ".join(f"{f} {op}" + ("" if v is None else f" {v}")
                                   for f, op, v in r.conditions) or "every trace"
        rate = r.rate if r.rate is not None else 0.05
        parts.append(f"{r.type}{f' {rate:.0%}' if r.type == 'probabilistic' else ''} {conds}")
    return " · rules: " + "; ".join(parts)


def _prior_note(window: DesignWindow | None) -> str:
    return "" if window is not None and window.profile.judged else ", * prior"


def _pct(x: float) -> str:
    return "n/a" if x == float("inf") else f"{x:.1%}"


def open_designer(args: Any) -> int:
    """`trace-tui policy new`: the explorer app, opened on the designer."""
    from trace_tui.core.errors import ConfigError
    from trace_tui.core.uri import redact_uri
    from trace_tui.server.connect import connect
    from trace_tui.tui.app import ScreenHook, TraceExplorerApp
    from trace_tui.tui.screens.judging import judge_screen_hooks
    from trace_tui.tui.startup import settings_from_args

    settings, mouse = settings_from_args(args)  # `trace-tui --no-mouse policy new` too
    since_s = float(args.since)
    out = Path(args.out)

    class DesignerApp(TraceExplorerApp):
        def on_mount(self) -> None:
            super().on_mount()
            self.open_hook("designer")

    with connect(args.tracking_uri) as conn:
        from trace_tui.design.judges import DEFAULT_MODEL, template

        try:
            template(args.judge)
        except KeyError:
            raise ConfigError(f"--judge: expected one of {', '.join(t.name for t in MENU)}, "
                              f"got {args.judge!r}") from None
        judge = JudgeChoice(args.judge, model=args.judge_model or DEFAULT_MODEL,
                            base_url=args.judge_base_url, api_key_env=args.judge_key_env)
        hook = ScreenHook("designer", "ctrl+n", "Designer", lambda app: DesignerScreen(
            out, since_s=since_s, experiment=args.experiment, judge=judge))
        app = DesignerApp(conn.uri, experiment=args.experiment,
                          server_label=f"{redact_uri(conn.uri)} ({conn.source})",
                          settings=settings, mouse=mouse,
                          screen_hooks=[hook, *judge_screen_hooks(
                              out if out.exists() else None, args.experiment)])
        app.run(mouse=mouse)
        return int(app.return_code or 0)
