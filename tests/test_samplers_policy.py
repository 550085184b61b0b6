"""Policy file parsing, defaults and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from samplers import PolicyError, load_policy, parse_policy
from samplers.policy import PLAIN_JUDGE_TOKENS, TRACE_AWARE_TOKENS

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """
[[policy]]
name = "errors"
type = "always"
conditions = [{ field = "status", op = "=", value = "ERROR" }]
"""

BASE = """
name = "p"
[budget]
window = "10m"
max_traces = 50
[[judge]]
name = "relevance"
scorer = "builtin:RelevanceToQuery"
"""


def docs_example() -> str:
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    m = re.search(r"```toml\n(.*?)```", text, flags=re.S)
    assert m, "docs/policy.md must contain a ```toml example"
    return m.group(1)


def test_minimal_policy_defaults() -> None:
    p = parse_policy(MINIMAL)
    assert p.name == "policy" and p.version == "1"
    assert p.budget.window_s == 3600 and p.budget.pacing == "even"
    assert p.budget.max_traces is None and not p.budget.limited
    assert p.randomness.source == "auto" and p.randomness.salt == ""
    assert p.estimation.confidence == 0.95 and p.estimation.interval == "auto"
    (rule,) = p.rules
    assert rule.type == "always" and rule.conditions[0].op == "="
    assert p.judges == () and rule.judges == ()


def test_docs_example_parses_with_every_section() -> None:
    p = parse_policy(docs_example(), source="docs/policy.md")
    assert [r.type for r in p.rules] == ["drop", "always", "probabilistic", "stratified"]
    main = p.rules[-1]
    assert main.allocation == "neyman" and main.max_keys == 200
    assert [k.label for k in main.key_fields] == ["route", "tier", "version", "latency"]
    assert main.key_fields[-1].buckets == (1000.0, 5000.0)
    assert p.budget.window_s == 600 and p.budget.max_traces == 60
    assert p.budget.max_tokens and p.budget.max_usd
    assert p.source.filter_string and "AND" in p.source.filter_string
    assert {j.name for j in p.judges} == {"relevance", "safety", "tool_use"}
    assert p.estimation.interval == "auto"
    assert len(main.strata) == 1


def test_judge_options_are_opaque_and_tokens_default_by_kind() -> None:
    p = parse_policy(
        BASE
        + """
[[judge]]
name = "tool_use"
scorer = "make_judge"
model = "openai:/fake-judge"
base_url = "http://127.0.0.1:5099/v1/chat/completions"
api_key_env = "TRACE_TUI_JUDGE_API_KEY"
instructions = "Did the agent in {{ trace }} use its tools well?"
feedback_value_type = "bool"
inference_params = { temperature = 0 }
usd_per_1k_tokens = 0.5
sample_fraction = 0.25

[[judge]]
name = "explicit"
scorer = "builtin:Guidelines"
guidelines = ["be polite"]
est_tokens = 1234
"""
        + MINIMAL
    )
    rel, tool, explicit = p.judges
    assert rel.est_tokens == PLAIN_JUDGE_TOKENS and not rel.trace_aware
    assert tool.trace_aware and tool.est_tokens == TRACE_AWARE_TOKENS
    assert tool.kind == tool.scorer == "make_judge"
    assert dict(tool.options) == {
        "model": "openai:/fake-judge",
        "base_url": "http://127.0.0.1:5099/v1/chat/completions",
        "api_key_env": "TRACE_TUI_JUDGE_API_KEY",
        "instructions": "Did the agent in {{ trace }} use its tools well?",
        "feedback_value_type": "bool",
        "inference_params": {"temperature": 0},
    }
    assert tool.usd_per_1k_tokens == 0.5 and tool.sample_fraction == 0.25
    assert explicit.est_tokens == 1234 and explicit.options["guidelines"] == ["be polite"]
    assert p.rules[0].judges == ("relevance", "tool_use", "explicit")  # default: all judges


def test_fingerprint_is_stable_and_tracks_content() -> None:
    a = parse_policy(BASE + MINIMAL)
    b = parse_policy(BASE + MINIMAL)
    c = parse_policy(BASE.replace("50", "51") + MINIMAL)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert re.fullmatch(r"p@1#[0-9a-f]{8}", a.version_tag)


def test_mlflow_field_spellings_are_accepted() -> None:
    p = parse_policy(
        """
[[policy]]
name = "r"
type = "always"
match = "any"
conditions = [
  { field = "attributes.status", op = "=", value = "ERROR" },
  { field = "trace.status", op = "in", value = ["ERROR"] },
  { field = "trace.execution_time_ms", op = ">", value = 1000 },
  { field = "attributes.timestamp_ms", op = ">=", value = 0 },
  { field = "tags.`mlflow.traceName`", op = "regex", value = "^agent" },
  { field = "metadata.`mlflow.sourceRun`", op = "exists" },
  { field = "span.type", op = "=", value = "TOOL" },
  { field = "models", op = "in", value = ["gpt-4o"] },
]
"""
    )
    assert len(p.rules[0].conditions) == 8


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text(BASE + MINIMAL, encoding="utf-8")
    assert load_policy(f).path == str(f)
    f.write_text(BASE + MINIMAL.replace('"always"', '"alwayz"'), encoding="utf-8")
    with pytest.raises(PolicyError) as exc:
        load_policy(f)
    assert str(exc.value).startswith(f"{f}:")
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")


def test_bad_allocation_message_matches_the_documented_shape(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    text = (
        BASE
        + MINIMAL
        + """
[[policy]]
name = "other"
type = "always"

[[policy]]
name = "main"
type = "stratified"
key_fields = ["tags.route"]
allocation = "neymann"
"""
    )
    f.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as exc:
        load_policy(f)
    msg = str(exc.value)
    line = text.splitlines().index('allocation = "neymann"') + 1
    assert msg == (
        f"{f}:{line}: policy[2].allocation: expected one of proportional, equal, neyman, "
        "cost_optimal, fixed, got 'neymann'"
    )


def test_toml_syntax_error_reports_the_line() -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy('name = "x"\n[budget]\nwindow = \n', source="p.toml")
    msg = str(exc.value)
    assert msg.startswith("p.toml:3: invalid TOML:") and "\n" not in msg


RULE = '[[policy]]\nname = "r"\n'
STRAT = RULE + 'type = "stratified"\nkey_fields = ["tags.route"]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 1\n" + MINIMAL, "colour: unknown key; expected one of name, version"),
        ("", "policy: expected at least one [[policy]] rule"),
        (RULE + 'type = "sometimes"\n', "policy[0].type: expected one of drop, always, "),
        (RULE, "policy[0].type: expected one of drop, always, probabilistic, stratified, got None"),
        (RULE + 'type = "always"\nmax_keys = 3\n', "policy[0].max_keys: only valid for type "),
        (STRAT + "max_key = 3\n", "policy[0].max_key: unknown key; expected one of"),
        (
            RULE + 'type = "always"\nconditions = [{ field = "status", op = "~", value = "x" }]\n',
            "policy[0].conditions[0].op: expected one of =, !=, <, <=, >, >=, in, not_in,",
        ),
        (
            RULE + 'type = "always"\nconditions = [{ field = "colour", op = "=", value = "x" }]\n',
            "policy[0].conditions[0].field: expected a field path (status, name, duration_ms",
        ),
        (
            RULE + 'type = "always"\nconditions = [{ field = "name", op = "regex", value = "(" }]',
            "policy[0].conditions[0].value: expected a valid regular expression",
        ),
        (
            RULE + 'type = "always"\nconditions = [{ field = "name", op = "in", value = "a" }]',
            "policy[0].conditions[0].value: operator 'in' expects a non-empty list",
        ),
        (
            RULE
            + 'type = "always"\nconditions = [{ field = "duration_ms", op = ">", value = "x" }]',
            "policy[0].conditions[0].value: expected a number, got 'x'",
        ),
        (
            RULE + 'type = "always"\nconditions = [{ field = "models", op = "<", value = "a" }]',
            "not defined on set-valued field 'models'",
        ),
        (
            RULE + 'type = "always"\nconditions = [{ field = "status", op = "exists", value = 1 }]',
            "operator 'exists' takes no value",
        ),
        (
            RULE + 'type = "stratified"\nkey_fields = ["bucket(duration_ms, 1000)"]\n',
            "policy[0].key_fields[0]: expected bucket(<field>, [<edge>, ...])",
        ),
        (
            RULE + 'type = "stratified"\nkey_fields = ["bucket(duration_ms, [5000, 1000])"]\n',
            "expected strictly ascending bucket edges",
        ),
        (
            RULE + 'type = "stratified"\nkey_fields = ["tags.route", "metadata.route"]\n',
            "policy[0].key_fields[1]: expected distinct labels, got 'route' twice",
        ),
        (MINIMAL + MINIMAL, "policy[1].name: expected a unique rule name, got 'errors' twice"),
        (RULE + 'type = "probabilistic"\n', "policy[0].rate: expected rate (0..1]"),
        (RULE + 'type = "probabilistic"\nrate = 1.5\n', "policy[0].rate: expected a number > 0"),
        (
            RULE + 'type = "probabilistic"\nrate = 0.5\nsampling_percentage = 50\n',
            "either rate or sampling_percentage",
        ),
        (STRAT, "policy[0].allocation: expected a [budget] with max_traces/max_tokens/max_usd"),
        (STRAT + 'allocation = "fixed"\n', "policy[0].rate: expected a rate in [0, 1]"),
        (
            "[budget]\nmax_traces = 5\n" + STRAT + 'strata = { "tier=gold" = { min = 3 } }\n',
            "policy[0].strata: expected keys shaped like 'route=...', got 'tier=gold'",
        ),
        ('[budget]\nwindow = "ten minutes"\n' + MINIMAL, "budget.window: expected a duration"),
        (
            "[budget]\nmax_traces = 0\n" + MINIMAL,
            "budget.max_traces: expected an integer >= 1, got 0",
        ),
        ('[budget]\npacing = "fast"\n' + MINIMAL, "budget.pacing: expected one of even, none"),
        ("[budget]\nmax_usd = 5.0\n" + MINIMAL, "budget.max_usd: expected at least one [[judge]]"),
        (
            "[source]\nfilter_string = \"tags.a = 'x' OR tags.b = 'y'\"\n" + MINIMAL,
            "source.filter_string: expected an AND-only MLflow filter string",
        ),
        ('[[judge]]\nname = "j"\n' + MINIMAL, "judge[0].scorer: expected a scorer such as"),
        (
            '[[judge]]\nname = "j"\nscorer = "make_judge"\nest_tokens = "many"\n' + MINIMAL,
            "judge[0].est_tokens: expected an integer, got 'many'",
        ),
        (
            '[[judge]]\nname = "j"\nscorer = "x"\n' + RULE + 'type = "always"\njudges = ["k"]\n',
            "policy[0].judges: expected one of j, got 'k'",
        ),
        (
            "[budget]\nmax_traces = 5\n"
            + STRAT
            + "budget_share = 0.7\n"
            + STRAT.replace('"r"', '"r2"')
            + "budget_share = 0.7\n",
            "policy: expected budget_share values summing to <= 1",
        ),
        ('[estimation]\ninterval = "wald"\n' + MINIMAL, "estimation.interval: expected one of"),
        ('[randomness]\nsource = "dice"\n' + MINIMAL, "randomness.source: expected one of"),
    ],
)
def test_errors_are_one_line_and_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text, source="policy.toml")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith("policy.toml")
    assert expected in msg, msg


def test_demo_policy_loads() -> None:
    p = load_policy(ROOT / "trace_tui" / "demo" / "policy.toml")
    assert p.budget.max_traces == 60 and p.budget.window_s == 600
    kinds = {j.scorer for j in p.judges}
    assert {"builtin:RelevanceToQuery", "builtin:Safety", "make_judge"} <= kinds
    for j in p.judges:
        assert j.options["model"] == "openai:/fake-judge"
        assert j.options["base_url"] == "http://127.0.0.1:5099/v1/chat/completions"
        assert j.options["api_key_env"] == "TRACE_TUI_JUDGE_API_KEY"
    assert any(j.trace_aware for j in p.judges)
    assert p.rules[-1].type == "stratified"
