"""Field paths, condition semantics and stratum keys."""

from __future__ import annotations

import pytest

from samplers import TraceRecord
from samplers.conditions import Condition, compile_condition
from samplers.fields import parse_field
from samplers.strata import bucket_labels, parse_key_field, stratum_name
from tests.samplers_fixtures import compile_conditions, compile_key

REC = TraceRecord(
    trace_id="tr-" + "ab" * 16,
    timestamp_ms=1_000,
    status="ERROR",
    duration_ms=2_500.0,
    name="agent",
    input_tokens=10,
    output_tokens=20,
    total_tokens=30,
    cost_usd=None,
    tags={"route": "search", "retries": "3", "mlflow.traceName": "agent", "empty": ""},
    metadata={"mlflow.sourceRun": "run-1"},
    span_types=frozenset({"LLM", "TOOL"}),
    span_names=frozenset({"plan", "lookup_order"}),
    models=frozenset({"gpt-4o", "gpt-4o-mini"}),
)


def holds(field: str, op: str, value: object = None, rec: TraceRecord = REC) -> bool:
    return compile_condition(Condition(field, op, value))(rec)


@pytest.mark.parametrize(
    ("path", "kind", "key"),
    [
        ("status", "attr", "status"),
        ("attributes.status", "attr", "status"),
        ("trace.status", "attr", "status"),
        ("trace.execution_time_ms", "attr", "duration_ms"),
        ("attributes.execution_time_ms", "attr", "duration_ms"),
        ("trace.name", "attr", "name"),
        ("trace.timestamp_ms", "attr", "timestamp_ms"),
        ("span.type", "attr", "span_types"),
        ("tags.route", "tags", "route"),
        ("tags.`mlflow.traceName`", "tags", "mlflow.traceName"),
        ("tags.app.version", "tags", "app.version"),
        ("metadata.`mlflow.sourceRun`", "metadata", "mlflow.sourceRun"),
        ("request_metadata.x", "metadata", "x"),
    ],
)
def test_field_paths_and_mlflow_aliases(path: str, kind: str, key: str) -> None:
    ref = parse_field(path)
    assert (ref.kind, ref.key) == (kind, key)


@pytest.mark.parametrize("path", ["", "colour", "tags.", "attributes.colour", "span"])
def test_unknown_field_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="expected a field path"):
        parse_field(path)


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("status", "=", "ERROR", True),
        ("status", "=", "error", True),  # status compares in upper case
        ("status", "!=", "OK", True),
        ("status", "in", ["OK", "IN_PROGRESS"], False),
        ("status", "not_in", ["OK"], True),
        ("name", "regex", "^ag", True),
        ("name", "regex", "^x", False),
        ("duration_ms", ">", 1000, True),
        ("duration_ms", "<=", 2500, True),
        ("duration_ms", "<", 2500, False),
        ("duration_ms", "=", 2500, True),
        ("duration_ms", "in", [1, 2500], True),
        ("total_tokens", ">=", 30, True),
        ("tags.route", "=", "search", True),
        ("tags.route", "!=", "search", False),
        ("tags.route", "in", ["support", "search"], True),
        ("tags.retries", ">", 2, True),  # numeric comparison of a text tag
        ("tags.retries", "=", 3, True),
        ("tags.route", ">", 2, False),  # does not parse as a number
        ("tags.`mlflow.traceName`", "=", "agent", True),
        ("tags.empty", "exists", None, True),
        ("tags.empty", "=", "", True),
        ("metadata.`mlflow.sourceRun`", "exists", None, True),
        ("metadata.other", "not_exists", None, True),
        # missing values: never =, in, <, >, regex; always !=, not_in
        ("tags.nope", "=", "x", False),
        ("tags.nope", "!=", "x", True),
        ("tags.nope", "in", ["x"], False),
        ("tags.nope", "not_in", ["x"], True),
        ("tags.nope", "<", 5, False),
        ("tags.nope", "regex", ".*", False),
        ("cost_usd", ">", 0, False),
        ("cost_usd", "exists", None, False),
        # set-valued fields: any member
        ("models", "=", "gpt-4o", True),
        ("models", "=", "claude", False),
        ("models", "!=", "gpt-4o", False),
        ("models", "in", ["claude", "gpt-4o-mini"], True),
        ("models", "not_in", ["claude"], True),
        ("span_types", "=", "TOOL", True),
        ("span_names", "regex", "^lookup", True),
        ("models", "exists", None, True),
    ],
)
def test_condition_semantics(field: str, op: str, value: object, expected: bool) -> None:
    assert holds(field, op, value) is expected


def test_empty_sets_do_not_exist() -> None:
    rec = TraceRecord("tr-" + "0" * 32, 0, "OK", 1.0)
    assert not holds("models", "exists", rec=rec)
    assert holds("models", "not_exists", rec=rec)
    assert not holds("models", "in", ["a"], rec=rec)


def test_all_and_any() -> None:
    a = Condition("status", "=", "ERROR")
    b = Condition("tags.route", "=", "support")
    assert compile_conditions([a, b], "all")(REC) is False
    assert compile_conditions([a, b], "any")(REC) is True
    three = [a, Condition("duration_ms", ">", 1), Condition("models", "=", "gpt-4o")]
    assert compile_conditions(three, "all")(REC) is True
    assert compile_conditions([], "all") is None


def test_key_field_forms_and_labels() -> None:
    assert parse_key_field("tags.route").label == "route"
    assert parse_key_field("trace.execution_time_ms").label == "duration_ms"
    b = parse_key_field("bucket(duration_ms, [1000, 5000])")
    assert b.buckets == (1000.0, 5000.0) and b.label == "duration_ms"
    t = parse_key_field({"field": "tags.customer_tier", "label": "tier"})
    assert t.label == "tier" and t.buckets is None
    assert parse_key_field({"field": "duration_ms", "buckets": [1.5]}).buckets == (1.5,)
    with pytest.raises(ValueError, match="cannot bucket set-valued"):
        parse_key_field("bucket(models, [1])")


def test_bucket_labels() -> None:
    assert bucket_labels([1000, 5000]) == ["(-inf,1000)", "[1000,5000)", "[5000,inf)"]
    assert bucket_labels([0.5]) == ["(-inf,0.5)", "[0.5,inf)"]


def test_stratum_keys_render_stably() -> None:
    fields = [
        parse_key_field("tags.route"),
        parse_key_field({"field": "tags.tier", "label": "tier"}),
        parse_key_field("bucket(duration_ms, [1000, 5000])"),
        parse_key_field("models"),
        parse_key_field("tags.empty"),
        parse_key_field("bucket(tags.retries, [2])"),
    ]
    extract, render = compile_key(fields)
    raw = extract(REC)
    assert render(raw) == (
        "route=search•tier=<missing>•duration_ms=[1000,5000)•models=gpt-4o,gpt-4o-mini"
        "•empty=<empty>•retries=[2,inf)"
    )
    assert stratum_name("main", render(raw)).startswith("main/route=search•")
    assert stratum_name("errors", None) == "errors"
    # equal records give equal (hashable) raw keys
    assert extract(REC) == raw and hash(raw) == hash(extract(REC))


def test_single_numeric_key_and_missing_cost() -> None:
    extract, render = compile_key([parse_key_field("cost_usd"), parse_key_field("duration_ms")])
    assert render(extract(REC)) == "cost_usd=<missing>•duration_ms=2500"
    extract, render = compile_key([parse_key_field("bucket(cost_usd, [0.01])")])
    assert render(extract(REC)) == "cost_usd=<missing>"
