"""Pilot tests of the policy designer: build a policy from demo data and check `sample
--dry-run` agrees with what the designer showed; edit a commented file; a bad $EDITOR edit
shows its error inline; a keypress answers while the preview is computing."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from textual import events
from textual.app import App
from textual.binding import Binding
from textual.widgets import DataTable, Input, Select

from samplers import parse_policy
from samplers.synthetic import synthetic_population
from tests.test_tui_pilot import make_app, type_text, wait_for
from trace_tui.core.client import MlflowClient
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.design import JudgeChoice, window_of
from trace_tui.evaluation.loop import JudgeLoop
from trace_tui.tui.screens.designer import DesignerScreen
from trace_tui.tui.screens.designer_edits import EditForm
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.screens.sampling import SamplingScreen

DEMO = Path(__file__).parents[1] / "trace_tui" / "demo" / "policy.toml"
SMALL = (80, 24)
MONTH_S = 30 * 86_400.0


class DesignerApp(App[None]):
    """The designer alone, on a given window (no server needed)."""

    def __init__(self, screen: DesignerScreen) -> None:
        super().__init__()
        self.designer = screen

    def on_mount(self) -> None:
        self.push_screen(self.designer)


def _previewed(screen: DesignerScreen) -> bool:
    return screen.result is not None and not screen.computing


async def _choose_field(pilot, screen: DesignerScreen, path: str) -> None:
    assert screen.window is not None
    paths = [f.path for f in screen.window.profile.fields]
    screen.query_one("#fields", DataTable).move_cursor(row=paths.index(path))
    await pilot.press("space")


async def test_design_from_scratch_matches_sample_dry_run(seeded, tmp_path: Path) -> None:
    out = tmp_path / "designed.toml"
    app = make_app(seeded.uri, seeded.experiment_name)
    for hook in judge_screen_hooks(None, seeded.experiment_name):
        app.register_screen_hook(hook)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        await pilot.press("s")
        assert isinstance(app.screen, SamplingScreen)
        app.screen.console.window_index = 3  # 7d
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, DesignerScreen)
        assert screen.out == Path("policy.toml")  # no policy open: a new file
        screen.out, screen.since_s = out, MONTH_S
        screen.load_window()
        await wait_for(pilot, lambda: screen.window is not None and _previewed(screen),
                       timeout=30, what="the window and its first preview")
        assert screen.window is not None and screen.window.total == len(seeded.trace_ids)
        await _choose_field(pilot, screen, "tags.route")
        await pilot.press("b", "a")  # budget x1.25, allocation: proportional
        await wait_for(pilot, lambda: _previewed(screen) and "route" in screen.text,
                       what="the preview of the choices")
        assert screen.draft.allocation == "proportional" and screen.draft.budget == 125
        totals = str(screen.query_one("#designer-totals").render())
        assert "vs uniform" in totals and "±" in totals
        shown = {r.stratum: r for r in screen.result.rows}
        await pilot.press("ctrl+s")
        await wait_for(pilot, out.exists, what="the saved file")

    policy = parse_policy(out.read_text(), str(out))
    assert policy.budget.max_traces == 125
    client = MlflowClient(seeded.uri)
    try:
        loop = await JudgeLoop.open(client, out, seeded.experiment_name)
        frame, _ = await loop.dry_run(MONTH_S)
    finally:
        await client.close()
    rows = frame.to_dict(orient="records")
    assert len(rows) == len(shown) >= 2
    for row in rows:
        r = shown[row["stratum"]]
        assert r.population == pytest.approx(row["population_per_window"])
        assert r.rate == pytest.approx(row["rate"])
        assert r.expected_sample == pytest.approx(row["expected_sample_per_window"])


async def test_editing_a_commented_policy_keeps_its_comments(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    shutil.copy(DEMO, path)
    pop = synthetic_population(3_000, routes=3, tiers=2, versions=1, seed=1)
    screen = DesignerScreen(path, window=window_of(pop.records))
    async with DesignerApp(screen).run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        await pilot.press("b")
        await wait_for(pilot, lambda: _previewed(screen) and "max_traces = 75" in screen.text,
                       what="the new budget previewed")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "max_traces = 75" in path.read_text(), what="saved")
    text = path.read_text()
    assert "# exploration floor" in text and "# Rules are tried in order" in text
    assert "max_tokens = 150_000   # the trace-aware judge costs" in text
    assert parse_policy(text).version == "2"


async def test_bad_edit_in_editor_shows_the_error_inline(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.toml"
    shutil.copy(DEMO, path)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('max_traces = 60', "
                      "'max_traces = \"sixty\"'))\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1)
                if t.startswith("max_traces"))
    pop = synthetic_population(2_000, routes=2, tiers=2, versions=1, seed=2)
    screen = DesignerScreen(path, window=window_of(pop.records))
    async with DesignerApp(screen).run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        await pilot.press("E")
        await wait_for(pilot, lambda: "budget.max_traces" in screen.error, what="the error")
        assert f"{path}:{line}:" in screen.error
        shown = str(screen.query_one("#designer-error").render())
        assert f"{path}:{line}:" in shown


async def test_a_keypress_answers_while_the_preview_computes() -> None:
    pop = synthetic_population(100_000, routes=10, tiers=4, versions=5, seed=3)
    window = window_of(pop.records, cap=len(pop.records))
    screen = DesignerScreen(Path("unused.toml"), window=window)
    app = DesignerApp(screen)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), timeout=60, what="first preview")
        table = screen.query_one("#fields", DataTable)

        async def key(name: str, done: Callable[[], bool]) -> float:
            # Pilot.press waits for the process to go idle, which a computing thread never
            # lets it: send the key as the terminal would and time until it is handled.
            start = time.perf_counter()
            event = events.Key(name, " " if name == "space" else None)
            event.set_sender(app)
            app._driver.send_message(event)
            while not done():
                assert time.perf_counter() - start < 5, f"key {name} never handled"
                await asyncio.sleep(0.001)
            return time.perf_counter() - start

        row = table.cursor_row  # a first keypress renders the cursor: not what is measured
        await key("down", lambda: table.cursor_row == row + 1)
        await key("up", lambda: table.cursor_row == row)
        await key("space", lambda: screen.computing)  # tags.route: the big recomputation
        await asyncio.sleep(0.1)  # the toggled row's own repaint is not what is measured
        latencies = []
        for _ in range(7):
            row = table.cursor_row
            latencies.append(await key("down", lambda row=row: table.cursor_row == row + 1))
        still_running = screen.computing
        await wait_for(pilot, lambda: _previewed(screen), timeout=60, what="the preview")
    assert still_running, "the preview finished before the keypresses: nothing measured"
    assert sorted(latencies)[len(latencies) // 2] < 0.05, latencies


async def test_judge_test_call_shows_verdict_and_rationale(seeded, tmp_path: Path) -> None:
    base, stop = run_in_thread(latency_s=0.01)
    try:
        judge = JudgeChoice("quality", model="openai:/fake-judge", base_url=base)
        screen = DesignerScreen(tmp_path / "p.toml", experiment_ids=[seeded.experiment_id],
                                since_s=MONTH_S, judge=judge)
        app = make_app(seeded.uri, seeded.experiment_name)
        async with app.run_test(size=SMALL) as pilot:
            await wait_for(pilot, lambda: app.conn_state == "live", what="live")
            app.push_screen(screen)
            await wait_for(pilot, lambda: _previewed(screen), timeout=30, what="a preview")
            screen.query_one("#preview", DataTable).focus()
            await pilot.press("t")
            await wait_for(pilot, lambda: screen.last_verdict is not None, timeout=60,
                           what="the verdict")
            verdict = screen.last_verdict
            assert verdict.error is None and verdict.value is not None and verdict.rationale
            shown = str(screen.query_one("#designer-test").render())
            assert "judge quality on tr-" in shown and verdict.rationale[:20] in shown
            assert not (tmp_path / "p.toml").exists()  # tested before saving
    finally:
        stop()


async def test_rules_from_the_field_table(tmp_path: Path) -> None:
    pop = synthetic_population(4_000, routes=3, tiers=2, versions=1, error_rate=0.1, seed=6)
    screen = DesignerScreen(tmp_path / "r.toml", window=window_of(pop.records))
    async with DesignerApp(screen).run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        assert screen.window is not None
        paths = [f.path for f in screen.window.profile.fields]
        screen.query_one("#fields", DataTable).move_cursor(row=paths.index("status"))
        await pilot.press("A", "A")  # always: status = OK, then the next value, ERROR
        await wait_for(pilot, lambda: _previewed(screen) and "always-1" in screen.text,
                       what="the rule previewed")
        assert screen.draft.rules[0].conditions == (("status", "=", "ERROR"),)
        rows = [r for r in screen.result.rows if r.rule == "always-1"]
        assert rows and rows[0].rate == 1.0
        assert "rules: always status = ERROR" in str(
            screen.query_one("#designer-choices").render())
        await pilot.press("R")
        await wait_for(pilot, lambda: _previewed(screen) and "always-1" not in screen.text,
                       what="the rule removed")


async def test_hostile_values_are_shown_literally(tmp_path: Path) -> None:
    from dataclasses import replace

    pop = synthetic_population(600, routes=2, tiers=1, versions=1, seed=8)
    hostile = "[bold red]x[/] \x1b[31m[SQL: y]"
    records = [replace(r, tags={**r.tags, "route": hostile}) if i % 2 else r
               for i, r in enumerate(pop.records)]
    screen = DesignerScreen(tmp_path / "h.toml", window=window_of(records))
    async with DesignerApp(screen).run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        await _choose_field(pilot, screen, "tags.route")
        await wait_for(pilot, lambda: _previewed(screen) and "route" in screen.text,
                       what="the preview by route")
        fields = screen.query_one("#fields", DataTable)
        cells = [str(c) for r in range(fields.row_count) for c in fields.get_row_at(r)]
        assert any("[bold red]x[/] \\x1b[31m[SQL: y]" in c for c in cells), cells
        preview = screen.query_one("#preview", DataTable)
        strata = [str(preview.get_row_at(r)[0]) for r in range(preview.row_count)]
        assert any("\\x1b" in s and "[SQL: y]" in s for s in strata), strata


async def test_sampling_screen_edit_shows_a_bad_edit_inline(seeded, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    path = tmp_path / "policy.toml"
    shutil.copy(DEMO, path)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('allocation = \"neyman\"', "
                      "'allocation = \"fair\"'))\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    app = make_app(seeded.uri, seeded.experiment_name)
    for hook in judge_screen_hooks(path, seeded.experiment_name):
        app.register_screen_hook(hook)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, SamplingScreen)
        await wait_for(pilot, lambda: screen.console.loop is not None, timeout=30,
                       what="the policy opened")
        await pilot.press("E")
        await wait_for(pilot, lambda: "fair" in screen.console.error, timeout=30,
                       what="the error inline")  # an editor process, then lint
        line = next(i for i, t in enumerate(path.read_text().splitlines(), 1)
                    if "fair" in t)
        assert f"{path}:{line}:" in str(screen.query_one("#sampling-error").render())
        # the plan computed when the policy opened may finish after the edit: the error stays
        await wait_for(pilot, lambda: screen.console.dry_run is not None, timeout=60,
                       what="the plan")
        await pilot.pause()
        assert f"{path}:{line}:" in str(screen.query_one("#sampling-error").render())


# ---------------------------------------------------------------------- typed edits (forms)


async def _form(pilot, key: str) -> EditForm:
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EditForm), what="the form")
    return cast(EditForm, pilot.app.screen)


async def _submit(pilot, form: EditForm, values: dict[str, str]) -> None:
    """Type each value into its input (a drop-down is set), then enter."""
    for wid, value in values.items():
        widget = form.query_one(f"#{wid}")
        if isinstance(widget, Select):
            widget.value = value
            continue
        assert isinstance(widget, Input)
        widget.value = ""
        widget.focus()
        await type_text(pilot, value)
    await pilot.press("enter")


def _on_screen(app: App[None]) -> str:
    return app.export_screenshot()


async def test_judge_model_endpoint_and_key_variable_are_edited_on_screen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-judge-key-value-0042"
    secret_like_a_name = "ABCDEF0123456789SECRETVALUE"
    monkeypatch.setenv("MY_JUDGE_KEY", secret)
    monkeypatch.setenv("OTHER_KEY", secret_like_a_name)
    out = tmp_path / "j.toml"
    pop = synthetic_population(3_000, routes=3, tiers=2, versions=1, seed=21)
    screen = DesignerScreen(out, window=window_of(pop.records))
    app = DesignerApp(screen)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        before = screen.result
        assert before is not None and before.cost_usd > 0
        form = await _form(pilot, "J")
        assert "NOT set" not in str(form.query_one("#edit-hint").render())
        # the key itself, typed by mistake: refused, and not repeated back
        await _submit(pilot, form, {"judge-key-env": secret})
        error = str(form.query_one("#edit-error").render())
        assert "NAME" in error and secret not in error and "\n" not in error.strip()
        await _submit(pilot, form, {"judge-key-env": secret_like_a_name})
        error = str(form.query_one("#edit-error").render())
        assert "value of an environment variable" in error and secret_like_a_name not in error
        assert app.screen is form  # the form stays open; the app keeps running
        await _submit(pilot, form, {"judge-model": "openai:/gpt-4o",
                                    "judge-base-url": "http://127.0.0.1:9/v1",
                                    "judge-key-env": "MY_JUDGE_KEY"})
        await wait_for(pilot, lambda: app.screen is screen, what="the form closed")
        await wait_for(pilot, lambda: _previewed(screen) and "gpt-4o\"" in screen.text,
                       what="the new model previewed")
        after = screen.result
        assert after is not None
        # pricing follows the model: gpt-4o costs more per token than gpt-4o-mini
        assert after.judge_tokens == pytest.approx(before.judge_tokens)
        assert after.cost_usd == pytest.approx(before.cost_usd * 0.003 / 0.00018, rel=1e-6)
        choices = str(screen.query_one("#designer-choices").render())
        assert "openai:/gpt-4o" in choices and "key $MY_JUDGE_KEY" in choices
        # a second judge from the menu, then save
        await pilot.press("plus")
        await wait_for(pilot, lambda: _previewed(screen) and len(screen.draft.judges) == 2,
                       what="a second judge")
        assert screen.draft.judges[1].model == "openai:/gpt-4o"
        await pilot.press("ctrl+s")
        await wait_for(pilot, out.exists, what="saved")
        assert secret not in _on_screen(app)
    text = out.read_text()
    policy = parse_policy(text, str(out))
    assert [j.name for j in policy.judges] == ["relevance", "safety"]
    decl = policy.judge("relevance")
    assert decl.options["api_key_env"] == "MY_JUDGE_KEY"
    assert decl.options["model"] == "openai:/gpt-4o" and decl.usd_per_1k_tokens == 0.003
    assert secret not in text and secret_like_a_name not in text


async def test_rule_conditions_and_rate_from_the_rule_form(tmp_path: Path) -> None:
    out = tmp_path / "r.toml"
    pop = synthetic_population(4_000, routes=3, tiers=2, versions=1, error_rate=0.1, seed=22)
    screen = DesignerScreen(out, window=window_of(pop.records))
    app = DesignerApp(screen)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        form = await _form(pilot, "c")  # no rule yet: a new one
        await _submit(pilot, form, {"rule-conditions":
                                    '{ field = "status", op = "~", value = "ERROR" }'})
        error = str(form.query_one("#edit-error").render())
        assert "conditions[0].op" in error and "\n" not in error.strip()
        line = form.query_one("#edit-error").region  # on screen at 80x24, one line
        assert line.height == 1 and line.bottom <= SMALL[1]
        assert app.screen is form and screen.draft.rules == ()
        await _submit(pilot, form, {"rule-conditions": "{ field = status }"})
        assert "not TOML" in str(form.query_one("#edit-error").render())
        await _submit(pilot, form, {
            "rule-type": "probabilistic", "rule-match": "any", "rule-rate": "40%",
            "rule-conditions": '{ field = "status", op = "=", value = "ERROR" }, '
                               '{ field = "duration_ms", op = ">", value = 1e9 }'})
        await wait_for(pilot, lambda: _previewed(screen) and "probabilistic-1" in screen.text,
                       what="the rule previewed")
        rows = [r for r in screen.result.rows if r.rule == "probabilistic-1"]
        assert rows and rows[0].rate == pytest.approx(0.4)
        # edit it again: the rate only
        form = await _form(pilot, "c")
        assert '"ERROR"' in form.query_one("#rule-conditions", Input).value
        await _submit(pilot, form, {"rule-rate": "0.25"})
        await wait_for(pilot, lambda: _previewed(screen) and "rate = 0.25" in screen.text,
                       what="the new rate previewed")
        rows = [r for r in screen.result.rows if r.rule == "probabilistic-1"]
        assert rows[0].rate == pytest.approx(0.25)
        assert "probabilistic 25% status = ERROR any duration_ms" in str(
            screen.query_one("#designer-choices").render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, out.exists, what="saved")
    rule = parse_policy(out.read_text()).rules[0]
    assert rule.name == "probabilistic-1" and rule.match == "any"
    assert [(c.field, c.op, c.value) for c in rule.conditions] == [
        ("status", "=", "ERROR"), ("duration_ms", ">", 1e9)]


async def test_bucket_boundaries_of_a_numeric_field(tmp_path: Path) -> None:
    pop = synthetic_population(3_000, routes=2, tiers=1, versions=1, seed=23)
    screen = DesignerScreen(tmp_path / "b.toml", window=window_of(pop.records))
    app = DesignerApp(screen)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        assert screen.window is not None
        paths = [f.path for f in screen.window.profile.fields]
        screen.query_one("#fields", DataTable).move_cursor(row=paths.index("duration_ms"))
        form = await _form(pilot, "u")
        quartiles = screen.window.profile.field("duration_ms").boundaries
        assert form.query_one("#bucket-edges", Input).value == ", ".join(
            f"{b:g}" for b in quartiles)
        await _submit(pilot, form, {"bucket-edges": "5000, 1000"})
        assert "ascending" in str(form.query_one("#edit-error").render())
        await _submit(pilot, form, {"bucket-edges": "[1500, 100000]"})
        await wait_for(pilot, lambda: _previewed(screen)
                       and "bucket(duration_ms, [1500, 100000])" in screen.text,
                       what="the buckets previewed")
        strata = {r.stratum for r in screen.result.rows}
        assert {"main/duration_ms=(-inf,1500)", "main/duration_ms=[1500,100000)"} <= strata
        assert strata <= {"main/duration_ms=(-inf,1500)", "main/duration_ms=[1500,100000)",
                          "main/duration_ms=[100000,inf)"}
        cells = str(screen.query_one("#fields", DataTable).get_row_at(
            paths.index("duration_ms"))[1])
        assert "[1500, 100000]" in cells


async def test_typed_edits_match_sample_dry_run(seeded, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Buckets, a rule with conditions and a rate, a judge's model and key variable and a
    second judge, set in the forms: `sample --dry-run` of the saved file agrees."""
    monkeypatch.setenv("DRYRUN_JUDGE_KEY", "never-shown-0001")
    out = tmp_path / "typed.toml"
    screen = DesignerScreen(out, experiment_ids=[seeded.experiment_id], since_s=MONTH_S,
                            experiment=seeded.experiment_name)
    app = make_app(seeded.uri, seeded.experiment_name)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        app.push_screen(screen)
        await wait_for(pilot, lambda: _previewed(screen), timeout=30, what="a preview")
        assert screen.window is not None
        await _choose_field(pilot, screen, "tags.route")
        paths = [f.path for f in screen.window.profile.fields]
        screen.query_one("#fields", DataTable).move_cursor(row=paths.index("duration_ms"))
        await _submit(pilot, await _form(pilot, "u"), {"bucket-edges": "2000"})
        await wait_for(pilot, lambda: app.screen is screen, what="buckets applied")
        await _submit(pilot, await _form(pilot, "c"), {
            "rule-conditions": '{ field = "status", op = "=", value = "ERROR" }',
            "rule-rate": "0.5"})
        await wait_for(pilot, lambda: app.screen is screen, what="rule applied")
        await _submit(pilot, await _form(pilot, "J"), {
            "judge-model": "openai:/gpt-4.1-mini", "judge-key-env": "DRYRUN_JUDGE_KEY"})
        await wait_for(pilot, lambda: app.screen is screen, what="judge applied")
        await pilot.press("plus")
        await wait_for(pilot, lambda: _previewed(screen) and "safety" in screen.text
                       and "bucket(duration_ms, [2000])" in screen.text
                       and "probabilistic-1" in screen.text and "gpt-4.1-mini" in screen.text,
                       what="every edit previewed")
        shown = {r.stratum: r for r in screen.result.rows}
        cost = screen.result.cost_usd
        await pilot.press("ctrl+s")
        await wait_for(pilot, out.exists, what="the saved file")
        assert "never-shown-0001" not in app.export_screenshot()
    text = out.read_text()
    assert 'api_key_env = "DRYRUN_JUDGE_KEY"' in text and "never-shown-0001" not in text
    client = MlflowClient(seeded.uri)
    try:
        loop = await JudgeLoop.open(client, out, seeded.experiment_name)
        frame, totals = await loop.dry_run(MONTH_S)
    finally:
        await client.close()
    rows = frame.to_dict(orient="records")
    assert {r["stratum"] for r in rows} == set(shown)
    assert any(s.startswith("probabilistic-1") for s in shown)
    assert any("duration_ms=[2000,inf)" in s for s in shown)
    for row in rows:
        r = shown[row["stratum"]]
        assert r.population == pytest.approx(row["population_per_window"])
        assert r.rate == pytest.approx(row["rate"])
        assert r.expected_sample == pytest.approx(row["expected_sample_per_window"])
    assert cost == pytest.approx(totals["expected_cost_usd_per_window"])


def test_help_lists_the_designer_keys_when_the_designer_can_open() -> None:
    from trace_tui.tui.screens.help import explorer_help_rows

    sampling = Binding("s", "open_hook('sampling')", "Sampling", id="app.sampling")
    ids = {row[3] for row in explorer_help_rows([sampling])}
    for needed in ("designer.judge_settings", "designer.judge_add", "designer.judge_remove",
                   "designer.judge_next", "designer.rule_edit", "designer.rule_new",
                   "designer.buckets", "designer.edit_apply", "designer.edit_cancel"):
        assert needed in ids, needed
    assert not any(i.startswith("designer.") for i in
                   (row[3] for row in explorer_help_rows([])))


async def test_a_files_own_judge_is_edited_in_place(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    shutil.copy(DEMO, path)
    pop = synthetic_population(3_000, routes=3, tiers=2, versions=1, seed=24)
    screen = DesignerScreen(path, window=window_of(pop.records))
    app = DesignerApp(screen)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        names = [j.name for j in screen.file_judges]
        await pilot.press(*["n"] * names.index("safety"))
        assert "▸safety" in str(screen.query_one("#designer-choices").render())
        form = await _form(pilot, "J")
        assert form.query_one("#judge-model", Input).value == "openai:/fake-judge"
        await _submit(pilot, form, {"judge-model": "openai:/gpt-4o", "judge-price": "",
                                    "judge-key-env": "SAFETY_KEY"})
        await wait_for(pilot, lambda: app.screen is screen, what="the form closed")
        await wait_for(pilot, lambda: _previewed(screen) and "SAFETY_KEY" in screen.text,
                       what="the judge's new model previewed")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "SAFETY_KEY" in path.read_text(), what="saved")
    text = path.read_text()
    policy = parse_policy(text)
    safety = policy.judge("safety")
    assert safety.options["model"] == "openai:/gpt-4o" and safety.usd_per_1k_tokens == 0.003
    assert policy.judge("relevance").options["model"] == "openai:/fake-judge"
    assert "# Rules are tried in order" in text and policy.version == "2"
    demo = parse_policy(DEMO.read_text())
    assert [r.judges for r in policy.rules] == [r.judges for r in demo.rules]


async def test_a_rule_written_into_an_opened_file_and_removed_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    shutil.copy(DEMO, path)
    pop = synthetic_population(3_000, routes=3, tiers=2, versions=1, seed=25)
    screen = DesignerScreen(path, window=window_of(pop.records))
    app = DesignerApp(screen)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        await _submit(pilot, await _form(pilot, "C"), {
            "rule-conditions": '{ field = "tags.route", op = "exists" }', "rule-rate": "3%"})
        await wait_for(pilot, lambda: _previewed(screen) and "probabilistic-1" in screen.text,
                       what="the rule previewed")
        rows = [r for r in screen.result.rows if r.rule == "probabilistic-1"]
        assert rows and rows[0].rate == pytest.approx(0.03)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "probabilistic-1" in path.read_text(), what="saved")
        names = [r.name for r in parse_policy(path.read_text()).rules]
        assert names == ["drop-eval-runs", "untagged", "errors", "probabilistic-1", "main"]
        assert "# Rules are tried in order" in path.read_text()
        await pilot.press("R")
        await wait_for(pilot, lambda: _previewed(screen)
                       and "probabilistic-1" not in screen.text, what="the rule removed")
        assert not any(r.rule == "probabilistic-1" for r in screen.result.rows)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "probabilistic-1" not in path.read_text(),
                       what="saved without it")
    names = [r.name for r in parse_policy(path.read_text()).rules]
    assert names == ["drop-eval-runs", "untagged", "errors", "main"]


def test_readme_and_designer_doc_list_every_designer_key() -> None:
    root = Path(__file__).parents[1]
    readme = next(line for line in (root / "README.md").read_text().splitlines()
                  if line.startswith("| designer"))
    doc = (root / "docs" / "designer.md").read_text()
    names = {"escape": "esc", "plus": "+", "minus": "-"}
    for b in DesignerScreen.BINDINGS:
        assert isinstance(b, Binding)
        key = f"`{names.get(b.key, b.key)}`"
        assert key in readme, (key, "README.md")
        assert key in doc, (key, "docs/designer.md")


async def test_budget_amount_unit_and_window_typed(tmp_path: Path) -> None:
    out = tmp_path / "w.toml"
    pop = synthetic_population(3_000, routes=3, tiers=2, versions=1, seed=26)
    screen = DesignerScreen(out, window=window_of(pop.records))
    app = DesignerApp(screen)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: _previewed(screen), what="the first preview")
        before = screen.result  # 1h windows
        form = await _form(pilot, "w")
        await _submit(pilot, form, {"budget-window": "1 fortnight"})
        assert "budget.window" in str(form.query_one("#edit-error").render())
        await _submit(pilot, form, {"budget-amount": "2.5"})
        assert "whole number" in str(form.query_one("#edit-error").render())
        await _submit(pilot, form, {"budget-amount": "$0.75", "budget-kind": "usd",
                                    "budget-window": "10m"})
        await wait_for(pilot, lambda: _previewed(screen) and "max_usd = 0.75" in screen.text,
                       what="the typed budget previewed")
        assert screen.result is not None and before is not None
        assert screen.result.cost_usd <= 0.75
        per_window = sum(r.population for r in screen.result.rows)
        assert per_window == pytest.approx(sum(r.population for r in before.rows) / 6)
        await pilot.press("ctrl+s")
        await wait_for(pilot, out.exists, what="saved")
    budget = parse_policy(out.read_text()).budget
    assert (budget.max_usd, budget.window_s) == (0.75, 600)
