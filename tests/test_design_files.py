"""Designer files: new TOML the sampler reads as is, faithful edits (comments, order,
version bump), lint with file:line for every problem, suggest and diff."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samplers import load_policy, parse_policy
from samplers.synthetic import synthetic_population
from trace_tui.cli import main
from trace_tui.design import Draft, ExtraRule, JudgeChoice, next_version, window_of
from trace_tui.design.diff import diff
from trace_tui.design.lint import lint_text
from trace_tui.design.suggest import parse_budget, suggest
from trace_tui.judging import policy_judge_specs

DEMO = Path(__file__).parents[1] / "trace_tui" / "demo" / "policy.toml"


def test_new_draft_is_a_valid_policy_with_every_choice() -> None:
    draft = Draft(name="checkout", experiment="my-agent", window="10m", budget_kind="usd",
                  budget=0.5, key_fields=("tags.route", "bucket(duration_ms, [500, 2000])"),
                  allocation="equal", min_per_stratum=2, min_rate=0.01,
                  rules=(ExtraRule("evals", "drop",
                                   (("metadata.`mlflow.sourceRun`", "exists", None),)),
                         ExtraRule("errors", "always", (("status", "=", "ERROR"),))),
                  judges=(JudgeChoice("relevance"), JudgeChoice("tool_use")))
    policy = parse_policy(draft.to_toml())
    policy_judge_specs(policy)
    assert [r.name for r in policy.rules] == ["evals", "errors", "main"]
    assert policy.budget.max_usd == 0.5 and policy.budget.window == "10m"
    assert policy.judge("tool_use").trace_aware and policy.judge("tool_use").est_tokens == 6000
    assert policy.judge("relevance").usd_per_1k_tokens > 0
    assert Draft.from_policy(policy).key_fields == draft.key_fields


def test_editing_keeps_comments_and_order_and_bumps_the_version() -> None:
    text = DEMO.read_text()
    draft = Draft.from_policy(parse_policy(text)).with_(budget=80, min_rate=0.02)
    edited = draft.apply_to(text)
    assert edited != text
    for line in text.splitlines():
        if "#" in line and not any(k in line for k in ("max_traces", "min_rate", "version")):
            assert line in edited, line  # every comment survives, in place
    policy = parse_policy(edited)
    assert policy.version == "2"
    assert policy.budget.max_traces == 80 and policy.rule("main").min_rate == 0.02
    # the labels of the unchanged key survive
    assert '{ field = "tags.customer_tier", label = "tier" }' in edited
    # saving again without a change keeps the text and the version
    assert Draft.from_policy(policy).with_(budget=80, min_rate=0.02).apply_to(edited) == edited


@pytest.mark.parametrize(("old", "new"), [("1", "2"), ("1.4", "1.5"), (3, 4), ("beta", "beta.1")])
def test_next_version(old: object, new: object) -> None:
    assert next_version(old) == new


def test_lint_names_every_problem_with_its_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = DEMO.read_text()
    text = text.replace("rate = 0.05", "rate = 5")  # rule 'untagged', a probability
    text = text.replace('allocation = "equal"', 'allocation = "even"')  # rule 'errors'
    text = text.replace('model = "openai:/fake-judge"', 'model = "gpt-4o"', 1)  # judge 0
    problems = lint_text(text, "p.toml")
    lines = text.splitlines()
    assert len(problems) == 3, problems
    for problem, needle in zip(problems, ['model = "gpt-4o"', "rate = 5", '"even"'],
                               strict=True):
        line = int(problem.split(":")[1])
        assert needle in lines[line - 1], (problem, needle)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["policy", "lint", str(bad)]) == 2
    out = capsys.readouterr().out
    assert out.count(f"{bad}:") == 3
    assert main(["policy", "lint", str(DEMO)]) == 0
    assert "ok: 1 policy file" in capsys.readouterr().out


def test_lint_of_a_toml_syntax_error() -> None:
    problems = lint_text('name = "x"\n[budget\n', "p.toml")
    assert len(problems) == 1 and problems[0].startswith("p.toml:2: invalid TOML")


@pytest.mark.parametrize(("text", "kind", "amount", "window"), [
    ("100/h", "traces", 100, "1h"), ("50000tok/10m", "tokens", 50000, "10m"),
    ("$2/h", "usd", 2, "1h"), ("2usd/30m", "usd", 2, "30m")])
def test_parse_budget(text: str, kind: str, amount: float, window: str) -> None:
    b = parse_budget(text)
    assert (b.kind, b.amount, b.window) == (kind, amount, window)


@pytest.mark.parametrize("text", ["100", "x/h", "0/h", "10/0.1s"])
def test_parse_budget_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--budget"):
        parse_budget(text)


def _verdicts(pop, share: float) -> dict[str, dict[str, bool]]:
    rng = np.random.default_rng(0)
    return {r.trace_id: {"relevance": bool(rng.random() < p)}
            for r, p in zip(pop.records, pop.pass_prob, strict=True) if rng.random() < share}


def test_suggest_picks_fields_by_verdict_spread_else_traffic() -> None:
    pop = synthetic_population(8_000, routes=3, tiers=4, versions=2, low_share=0.3, seed=2)
    budget = parse_budget("100/h")
    draft, reason = suggest(window_of(pop.records, _verdicts(pop, 0.3)), budget)
    assert "spread of past verdicts" in reason
    policy = parse_policy(draft.to_toml())
    assert policy.budget.max_traces == 100
    assert draft.key_fields and all(k.startswith("tags.") for k in draft.key_fields)
    plain, why = suggest(window_of(pop.records), budget)
    assert "traffic share" in why and plain.key_fields
    with pytest.raises(ValueError, match="--judge"):
        suggest(window_of(pop.records), budget, judge="nope")


def test_diff_shows_rates_sample_and_cost(tmp_path: Path) -> None:
    pop = synthetic_population(5_000, routes=3, tiers=2, versions=1, seed=4)
    old = Draft(name="d", key_fields=("tags.route",), budget=50)
    new_text = old.with_(budget=100).apply_to(old.to_toml())
    a, b = parse_policy(old.to_toml()), parse_policy(new_text)
    assert b.version == "2"
    result = diff(a, b, window_of(pop.records))
    assert all(r.changed for r in result.rows)
    text = result.to_text()
    assert "d@1#" in text and "d@2#" in text
    assert result.new.expected_sample == pytest.approx(2 * result.old.expected_sample, rel=0.01)
    assert load_policy  # the saved file is what `sample` reads (see test_tui_designer)


def test_lint_reports_every_problem_in_every_section_once() -> None:
    """Two problems in one rule, problems outside the rules, a duplicate rule name and a
    bad condition: each reported once on its own line, nothing invented by the repairs."""
    text = DEMO.read_text()
    edits = [
        ('version = "1"', 'version = "1"\ncolour = "blue"'),               # unknown top key
        ("max_traces = 60", "max_traces = -1"),                           # budget
        ('pacing = "even"', 'pacing = "fast"'),                           # budget, same table
        ("confidence = 0.95", "confidence = 2"),                          # estimation
        ("rate = 0.05", "rate = 5\nsalt_me = 1"),                         # two in one rule
        ('allocation = "equal"', 'allocation = "even"'),                  # rule 'errors'
        ('name = "main"', 'name = "errors"'),                             # duplicate name
        ('{ field = "status", op = "=", value = "ERROR" }',
         '{ field = "status", op = "~~", value = "ERROR" }'),             # bad condition op
    ]
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    problems = lint_text(text, "p.toml")
    lines = text.splitlines()
    needles = ['colour = "blue"', "max_traces = -1", 'pacing = "fast"', "confidence = 2",
               "rate = 5", "salt_me = 1", "conditions = [", 'allocation = "even"',
               'name = "errors"']
    assert len(problems) == len(needles), "\n".join(problems)
    found = sorted(lines[int(p.split(":")[1]) - 1] for p in problems)
    for needle in needles:
        assert any(needle in line for line in found), (needle, problems)
    assert all(p.startswith("p.toml:") and "__lint" not in p for p in problems)


def test_lint_of_a_file_without_rules_still_checks_the_rest() -> None:
    text = 'name = "x"\n[budget]\nmax_traces = "ten"\n'
    assert lint_text(text, "p.toml") == [
        "p.toml: policy: expected at least one [[policy]] rule, got none",
        "p.toml:3: budget.max_traces: expected an integer, got 'ten'"]


def test_typed_edits_round_trip_and_refuse_what_the_schema_refuses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from trace_tui.design.edits import (
        EditError,
        add_judge,
        conditions_text,
        cycle_judge,
        edit_judge,
        edit_rule,
        parse_boundaries,
        parse_conditions,
        remove_judge,
    )

    conds = (("status", "=", "ERROR"), ("tags.route", "in", ["a", "b"]),
             ("metadata.`mlflow.sourceRun`", "exists", None))
    assert parse_conditions(conditions_text(conds)) == conds
    assert parse_conditions(f"[{conditions_text(conds)}]") == conds
    draft = Draft(key_fields=("tags.route",))
    edited = edit_rule(draft, None, kind="probabilistic", conditions=conditions_text(conds),
                       match="any", rate="12.5%")
    rule = parse_policy(edited.to_toml()).rules[0]
    assert (rule.name, rule.match, rule.rate) == ("probabilistic-1", "any", 0.125)
    for bad, says in [('{ field = "status", op = "like", value = 1 }', "conditions[0].op"),
                      ('{ field = "nope", op = "=", value = 1 }', "conditions[0].field"),
                      ('{ field = "status", op = "=", vlaue = 1 }', "unknown key 'vlaue'"),
                      ("{ field = ", "not TOML")]:
        with pytest.raises(EditError) as err:
            edit_rule(draft, None, kind="always", conditions=bad, match="all", rate="")
        assert says in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(EditError, match="rate"):
        edit_rule(draft, None, kind="probabilistic", conditions="", match="all", rate="2")

    assert parse_boundaries("duration_ms", "[250, 1e3]") == "bucket(duration_ms, [250, 1000])"
    with pytest.raises(EditError, match="ascending"):
        parse_boundaries("duration_ms", "5, 5")

    monkeypatch.setenv("PASTED_KEY_HOLDER", "Sk1234567890abcdefXYZ")
    for typed in ("sk-live-1234", "Sk1234567890abcdefXYZ", "has space"):
        with pytest.raises(EditError) as err:
            edit_judge(draft, 0, model="openai:/gpt-4o", base_url="", key_env=typed, price="")
        assert typed not in str(err.value)
    with pytest.raises(EditError, match="api_key_env"):
        edit_judge(draft, 0, model="anthropic:/claude-sonnet-4-0", base_url="",
                   key_env="MY_KEY", price="")
    two, i = add_judge(edit_judge(draft, 0, model="openai:/gpt-4o", base_url="",
                                  key_env="MY_KEY", price=""), 0)
    assert i == 1 and [j.template for j in two.judges] == ["relevance", "safety"]
    assert two.judges[1].api_key_env == "MY_KEY" and two.judges[1].price == 0.003
    cycled, _ = cycle_judge(two, 1)
    assert [j.template for j in cycled.judges] == ["relevance", "guidelines"]
    one, i = remove_judge(cycled, 0)
    assert (i, [j.template for j in one.judges]) == (0, ["guidelines"])
    with pytest.raises(EditError):
        remove_judge(one, 0)


def test_editing_key_fields_keeps_the_files_labels() -> None:
    """Stratum names carry the labels: adding a field or moving a bucket boundary must not
    rename the strata the file already has."""
    text = DEMO.read_text().replace(
        '{ field = "tags.`app.version`", label = "version" },',
        '{ field = "duration_ms", label = "latency", buckets = [1000, 5000] },')
    draft = Draft.from_policy(parse_policy(text))
    assert draft.key_fields == ("tags.route", "tags.customer_tier",
                                "bucket(duration_ms, [1000, 5000])")
    edited = draft.with_(key_fields=("tags.route", "tags.customer_tier",
                                     "bucket(duration_ms, [2000])", "status"))
    main = parse_policy(edited.apply_to(text)).rules[-1]
    assert [(k.label, k.buckets) for k in main.key_fields] == [
        ("route", None), ("tier", None), ("latency", (2000.0,)), ("status", None)]
