"""Trace model: MLflow trace JSON -> typed trace info and a span tree with latency and tokens.

Pure Python, no I/O. Decodes both span encodings MLflow serves (OTel-proto JSON from
``traces/get``/``batchGet`` and the MLflow-native dicts of ``Trace.to_dict()``).

Over 500 lines on purpose: decoding, the tree and its roll-ups share the Span's slots and
invariants on a hot path (a 10,000-span trace), kept in one place.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

TOKEN_USAGE_ATTR = "mlflow.chat.tokenUsage"
COST_ATTR = "mlflow.llm.cost"
SPAN_TYPE_ATTR = "mlflow.spanType"
INPUTS_ATTR = "mlflow.spanInputs"
OUTPUTS_ATTR = "mlflow.spanOutputs"
MODEL_ATTRS = ("mlflow.llm.model", "gen_ai.response.model", "gen_ai.request.model")


class TraceDecodeError(ValueError):
    """A trace or span payload that cannot be decoded; the message names the culprit."""


# --------------------------------------------------------------------------- small values


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Input/output/total tokens, as MLflow's ``mlflow.chat.tokenUsage``."""

    input: int = 0
    output: int = 0
    total: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.input + other.input, self.output + other.output,
                          self.total + other.total)

    def as_dict(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "total": self.total}

    @classmethod
    def from_value(cls, value: Any) -> TokenUsage | None:
        """Parse a usage dict (or its JSON string); None when absent or malformed."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, Mapping):
            return None
        inp = _as_int(value.get("input_tokens"))
        out = _as_int(value.get("output_tokens"))
        tot = _as_int(value.get("total_tokens"))
        if inp is None and out is None and tot is None:
            return None
        inp, out = inp or 0, out or 0
        return cls(inp, out, tot if tot is not None else inp + out)


ZERO_TOKENS = TokenUsage()
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET", "__slots__": ()})()


@dataclass(frozen=True, slots=True)
class Assessment:
    """A feedback or expectation attached to a trace (or one of its spans)."""

    assessment_id: str
    name: str
    source_type: str
    source_id: str
    value: Any
    rationale: str = ""
    error: str | None = None
    span_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    create_time: str = ""
    valid: bool = True

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Assessment:
        source = d.get("source") or {}
        feedback = d.get("feedback")
        expectation = d.get("expectation")
        value: Any = None
        error = None
        if isinstance(feedback, Mapping):
            value = feedback.get("value")
            err = feedback.get("error")
            if isinstance(err, Mapping):
                error = str(err.get("error_message") or err.get("error_code") or "error")
        elif isinstance(expectation, Mapping):
            value = expectation.get("value")
        return cls(
            assessment_id=str(d.get("assessment_id", "")),
            name=str(d.get("assessment_name", "")),
            source_type=str(source.get("source_type", "")),
            source_id=str(source.get("source_id", "")),
            value=value,
            rationale=str(d.get("rationale", "") or ""),
            error=error,
            span_id=d.get("span_id") or None,
            metadata=dict(d.get("metadata") or {}),
            create_time=str(d.get("create_time", "")),
            valid=bool(d.get("valid", True)),
        )


# --------------------------------------------------------------------------- trace info


@dataclass(slots=True)
class TraceInfo:
    """The searchable part of a trace: ids, timing, state, tags, metadata, assessments."""

    trace_id: str
    experiment_id: str
    name: str
    state: str
    request_time_ms: int
    duration_ms: float | None
    tags: dict[str, str]
    metadata: dict[str, str]
    assessments: list[Assessment]
    request_preview: str = ""
    response_preview: str = ""

    @property
    def tokens(self) -> TokenUsage | None:
        """The server's stored trace total (may disagree with the spans, see TraceTree)."""
        return TokenUsage.from_value(self.metadata.get("mlflow.trace.tokenUsage"))

    @property
    def cost_usd(self) -> float | None:
        raw = self.metadata.get("mlflow.trace.cost")
        if not raw:
            return None
        try:
            cost = json.loads(raw)
        except ValueError:
            return None
        return _as_float(cost.get("total_cost")) if isinstance(cost, Mapping) else None

    @property
    def session(self) -> str:
        return self.metadata.get("mlflow.trace.session", "")

    @property
    def user(self) -> str:
        return self.metadata.get("mlflow.trace.user", "")

    @property
    def finished(self) -> bool:
        return self.state in ("OK", "ERROR")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TraceInfo:
        """Decode a v3 TraceInfo JSON object."""
        try:
            trace_id = str(d["trace_id"])
        except (KeyError, TypeError):
            raise TraceDecodeError("trace info without 'trace_id'") from None
        location = d.get("trace_location") or {}
        exp = (location.get("mlflow_experiment") or {}).get("experiment_id", "")
        tags = {str(k): str(v) for k, v in (d.get("tags") or {}).items()}
        return cls(
            trace_id=trace_id,
            experiment_id=str(exp),
            name=tags.get("mlflow.traceName", ""),
            state=str(d.get("state", "STATE_UNSPECIFIED")),
            request_time_ms=parse_rfc3339_ms(d.get("request_time")),
            duration_ms=parse_duration_ms(d.get("execution_duration")),
            tags=tags,
            metadata={str(k): str(v) for k, v in (d.get("trace_metadata") or {}).items()},
            assessments=[Assessment.from_json(a) for a in d.get("assessments") or []],
            request_preview=str(d.get("request_preview", "") or ""),
            response_preview=str(d.get("response_preview", "") or ""),
        )


def parse_rfc3339_ms(value: Any) -> int:
    """``"2026-11-26T03:27:20.748Z"`` -> epoch milliseconds (0 when absent)."""
    if not value:
        return 0
    if isinstance(value, int | float):
        return int(value)
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise TraceDecodeError(f"bad request_time {value!r}") from None
    return round(dt.timestamp() * 1000)


def parse_duration_ms(value: Any) -> float | None:
    """Proto Duration ``"0.096s"`` -> milliseconds (None when absent)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text[:-1] if text.endswith("s") else text) * 1000.0
    except ValueError:
        raise TraceDecodeError(f"bad execution_duration {value!r}") from None


# --------------------------------------------------------------------------- spans


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


class Span:
    """One span, linked into its tree by ``children`` (``depth`` set by the tree).

    Attributes are decoded lazily: building a tree only needs the type, token usage, cost and
    model, while inputs and outputs (most of the bytes) are decoded when a view asks for them.
    ``attributes`` may be given decoded (a dict), as OTLP key/value JSON (a list), or as
    MLflow-native JSON-string values (``native_json=True``).
    """

    __slots__ = ("_attrs", "_cost", "_decoded", "_native", "_tokens", "children", "cost_total",
                 "depth", "end_ns", "events", "name", "parent_id", "span_id", "start_ns",
                 "status", "status_message", "tokens_total")

    def __init__(self, span_id: str, parent_id: str | None, name: str, start_ns: int,
                 end_ns: int, status: str, status_message: str, attributes: Any,
                 events: list[SpanEvent], *, native_json: bool = False,
                 tokens: Any = UNSET, cost: Any = UNSET) -> None:
        """``tokens``/``cost``: the span's own usage and cost when already known (the span
        cache stores them), else worked out from the attributes on first use."""
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.status = status  # OK | ERROR | UNSET
        self.status_message = status_message
        self.events = events
        self.children: list[Span] = []
        self.depth = 0
        self.tokens_total: TokenUsage = ZERO_TOKENS  # subtree, server rule (see TraceTree)
        self.cost_total = 0.0  # subtree
        self._attrs = attributes if attributes is not None else {}
        self._native = native_json
        self._tokens = tokens
        self._cost = cost
        self._decoded: dict[str, Any] | None = (
            self._attrs if isinstance(self._attrs, dict) and not native_json else None)

    def __repr__(self) -> str:
        return f"Span({self.name!r}, {self.span_id}, depth={self.depth})"

    @property
    def attributes(self) -> dict[str, Any]:
        if self._decoded is None:
            if isinstance(self._attrs, list):
                self._decoded = decode_attributes(self._attrs)
            else:
                self._decoded = {str(k): _loads_json_string(v) for k, v in self._attrs.items()}
        return self._decoded

    def attr(self, key: str) -> Any:
        """One attribute, decoded without decoding the others."""
        if self._decoded is not None:
            return self._decoded.get(key)
        if isinstance(self._attrs, list):
            for item in self._attrs:
                if type(item) is dict and item.get("key") == key:
                    return decode_any_value(item.get("value"))
            return None
        return _loads_json_string(self._attrs.get(key))

    @property
    def span_type(self) -> str:
        value = self.attr(SPAN_TYPE_ATTR)
        return str(value) if value else "UNKNOWN"

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    @property
    def inputs(self) -> Any:
        return self.attr(INPUTS_ATTR)

    @property
    def outputs(self) -> Any:
        return self.attr(OUTPUTS_ATTR)

    @property
    def tokens(self) -> TokenUsage | None:
        """This span's own usage: ``mlflow.chat.tokenUsage``, else ``gen_ai.usage.*``
        (worked out once: attributes do not change)."""
        tokens = self._tokens
        if tokens is UNSET:
            tokens = self._tokens = self._own_tokens()
        return tokens

    def _own_tokens(self) -> TokenUsage | None:
        usage = TokenUsage.from_value(self.attr(TOKEN_USAGE_ATTR))
        if usage is not None:
            return usage
        inp = _as_int(self.attr("gen_ai.usage.input_tokens"))
        out = _as_int(self.attr("gen_ai.usage.output_tokens"))
        if inp is None and out is None:
            return None
        return TokenUsage(inp or 0, out or 0, (inp or 0) + (out or 0))

    @property
    def model(self) -> str:
        for key in MODEL_ATTRS:
            value = self.attr(key)
            if value:
                return str(value)
        return ""

    @property
    def cost_usd(self) -> float | None:
        cost = self._cost
        if cost is UNSET:
            cost = self._cost = self._own_cost()
        return cost

    def _own_cost(self) -> float | None:
        cost = self.attr(COST_ATTR)
        if isinstance(cost, str):
            try:
                cost = json.loads(cost)
            except ValueError:
                return None
        return _as_float(cost.get("total_cost")) if isinstance(cost, dict) else None

    @property
    def exceptions(self) -> list[SpanEvent]:
        return [e for e in self.events if e.name == "exception"]

    @property
    def is_error(self) -> bool:
        return self.status == "ERROR"


def decode_span(raw: Mapping[str, Any], ids: dict[Any, str] | None = None) -> Span:
    """Decode one span in either encoding; raises TraceDecodeError naming the field.
    ``ids`` memoises raw id -> hex across one trace's spans (each parent id recurs)."""
    if type(raw) is dict:
        attrs = raw.get("attributes")
        if type(attrs) is dict and not raw.get("events"):
            return _decode_native(raw, attrs, {} if ids is None else ids)
    if not isinstance(raw, Mapping):
        raise TraceDecodeError(f"span is a {type(raw).__name__}, not an object")
    name = str(raw.get("name", ""))
    try:
        span_id = decode_id(raw["span_id"])
    except KeyError:
        raise TraceDecodeError(f"span {name!r} has no span_id") from None
    parent_raw = raw.get("parent_span_id")
    parent_id = decode_id(parent_raw) if parent_raw else None
    try:
        start = int(raw.get("start_time_unix_nano") or raw.get("start_time_ns") or 0)
        end = int(raw.get("end_time_unix_nano") or raw.get("end_time_ns") or 0)
    except (TypeError, ValueError):
        raise TraceDecodeError(f"span {name!r}: timestamps are not integers") from None
    attrs_raw = raw.get("attributes")
    native = isinstance(attrs_raw, dict)
    if not isinstance(attrs_raw, list | dict):
        attrs_raw = {}
    status_raw = raw.get("status") or {}
    code = str(status_raw.get("code", "")) if isinstance(status_raw, Mapping) else ""
    message = str(status_raw.get("message", "") or "") if isinstance(status_raw, Mapping) else ""
    events = []
    for ev in raw.get("events") or []:
        ev_attrs = ev.get("attributes")
        if isinstance(ev_attrs, list):
            ev_attrs = decode_attributes(ev_attrs)
        events.append(SpanEvent(
            name=str(ev.get("name", "")),
            time_ns=int(ev.get("time_unix_nano") or ev.get("timestamp") or 0),
            attributes=dict(ev_attrs or {}),
        ))
    return Span(span_id=span_id, parent_id=parent_id, name=name, start_ns=start, end_ns=end,
                status=_normalise_status(code), status_message=message,
                attributes=attrs_raw, events=events, native_json=native)


_STATUS: dict[Any, str] = {}  # raw status code -> OK | ERROR | UNSET


def _decode_native(raw: dict[str, Any], attrs: dict[str, Any], ids: dict[Any, str]) -> Span:
    """``decode_span``'s hot path: an MLflow-native span without events (the trace-data
    endpoint and the span cache). Same result and errors as the general path, with the
    attribute values kept as raw JSON strings and ids decoded once per trace."""
    get = raw.get
    name = get("name", "")
    if type(name) is not str:
        name = str(name)
    try:
        raw_id = raw["span_id"]
    except KeyError:
        raise TraceDecodeError(f"span {name!r} has no span_id") from None
    span_id = ids.get(raw_id) if type(raw_id) is str else None
    if span_id is None:
        span_id = decode_id(raw_id)
        if type(raw_id) is str:
            ids[raw_id] = span_id
    parent_raw = get("parent_span_id")
    parent_id = None
    if parent_raw:
        parent_id = ids.get(parent_raw) if type(parent_raw) is str else None
        if parent_id is None:
            parent_id = decode_id(parent_raw)
            if type(parent_raw) is str:
                ids[parent_raw] = parent_id
    start = get("start_time_unix_nano") or get("start_time_ns") or 0
    end = get("end_time_unix_nano") or get("end_time_ns") or 0
    if type(start) is not int or type(end) is not int:
        try:
            start, end = int(start), int(end)
        except (TypeError, ValueError):
            raise TraceDecodeError(f"span {name!r}: timestamps are not integers") from None
    status_raw = get("status")
    status, message = "UNSET", ""
    if status_raw and (type(status_raw) is dict or isinstance(status_raw, Mapping)):
        code = status_raw.get("code", "")
        try:
            status = _STATUS[code]
        except (KeyError, TypeError):
            status = _normalise_status(str(code))
            if type(code) is str:
                _STATUS[code] = status
        message = str(status_raw.get("message", "") or "")
    return Span(span_id, parent_id, name, start, end, status, message, attrs, [],
                native_json=True)


def decode_id(value: Any) -> str:
    """Span/trace id -> lowercase hex. MLflow sends base64 of the raw bytes; hex passes."""
    text = str(value)
    if len(text) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    try:
        return binascii.a2b_base64(text, strict_mode=True).hex()
    except (binascii.Error, ValueError):
        raise TraceDecodeError(f"id {text!r} is neither base64 nor hex") from None


def decode_any_value(value: Any) -> Any:
    """OTLP AnyValue JSON -> Python value."""
    if type(value) is not dict:
        return value
    if "string_value" in value:
        return value["string_value"]
    if "int_value" in value:
        return int(value["int_value"])
    if "double_value" in value:
        return float(value["double_value"])
    if "bool_value" in value:
        return bool(value["bool_value"])
    if "kvlist_value" in value:
        return decode_attributes((value["kvlist_value"] or {}).get("values") or [])
    if "array_value" in value:
        return [decode_any_value(v) for v in (value["array_value"] or {}).get("values") or []]
    if "bytes_value" in value:
        return value["bytes_value"]
    return None


def decode_attributes(items: list[Any]) -> dict[str, Any]:
    """OTLP ``[{"key", "value": AnyValue}]`` -> dict."""
    out: dict[str, Any] = {}
    for item in items:
        if type(item) is dict and "key" in item:
            out[str(item["key"])] = decode_any_value(item.get("value"))
    return out


# --------------------------------------------------------------------------- tree


@dataclass(slots=True, eq=False)
class TraceTree:
    """A trace's spans as a tree, with token/cost rollups and latency offsets."""

    info: TraceInfo
    roots: list[Span]
    spans: dict[str, Span]
    start_ns: int
    end_ns: int
    tokens: TokenUsage  # recomputed from the spans with the server's rule
    cost_usd: float

    @property
    def trace_id(self) -> str:
        return self.info.trace_id

    @property
    def name(self) -> str:
        if self.info.name:
            return self.info.name
        return self.roots[0].name if self.roots else ""

    @property
    def duration_ms(self) -> float:
        if self.info.duration_ms is not None:
            return self.info.duration_ms
        return max(0, self.end_ns - self.start_ns) / 1e6

    @property
    def status(self) -> str:
        return self.info.state

    @property
    def tokens_mismatch(self) -> bool:
        """True when the server's stored total disagrees with the spans (MLflow export race)."""
        stored = self.info.tokens
        return stored is not None and bool(self.spans) and stored != self.tokens

    @property
    def cost_mismatch(self) -> bool:
        """True when the server's stored cost disagrees with the spans' (same rule as tokens:
        a span's cost counts only if no ancestor has one), beyond float noise."""
        stored = self.info.cost_usd
        if stored is None or not self.spans:
            return False
        return not math.isclose(stored, self.cost_usd, rel_tol=1e-6, abs_tol=1e-9)

    def offset_ms(self, span: Span) -> float:
        return (span.start_ns - self.start_ns) / 1e6

    def walk(self) -> Iterator[Span]:
        """Depth-first, children in start order (iterative: deep trees cannot overflow)."""
        stack = list(reversed(self.roots))
        while stack:
            span = stack.pop()
            yield span
            stack.extend(reversed(span.children))

    def critical_path(self) -> list[str]:
        """Span ids on the critical path, the chain of work that sets the trace's end.

        From the latest-ending root, walk back in time: the child that ends last before the
        current point is on the path (bounded by that point, since children may overlap it),
        then continue from that child's start; time not covered by a chosen child is the
        parent's self time. Chosen children are walked the same way, within their bound.
        Iterative, so deep trees cannot overflow the stack."""
        if not self.roots:
            return []
        root = max(self.roots, key=lambda s: (s.end_ns, -s.start_ns))
        path: list[Span] = []  # in start order when returned
        stack: list[tuple[Span, int]] = [(root, root.end_ns)]
        while stack:
            span, bound = stack.pop()
            path.append(span)
            point = min(span.end_ns, bound)
            if not span.children:
                continue
            latest_first = sorted(span.children, key=_end_key, reverse=True)
            for child in latest_first:
                if point <= span.start_ns:
                    break
                if child.start_ns >= point:
                    continue  # starts after the point already reached: not waited on
                stack.append((child, point))
                point = child.start_ns
        path.sort(key=_path_key)
        return [span.span_id for span in path]


def build_tree(info: TraceInfo, spans: list[Span]) -> TraceTree:
    """Link spans by parent id. Orphans (missing parent) hang at root level, and a parent
    cycle is broken at its earliest-starting span, so a bad payload cannot hang the build."""
    by_id: dict[str, Span] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)  # duplicate ids: keep the first
    spans = list(by_id.values())
    for span in spans:
        span.children = []
    roots: list[Span] = []
    for span in spans:
        parent = by_id.get(span.parent_id) if span.parent_id else None
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
    reached = _assign_depths(roots)
    if reached < len(spans):  # the rest sits in parent cycles
        seen = {id(s) for s in _iter_subtrees(roots)}
        for span in sorted((s for s in spans if id(s) not in seen), key=lambda s: s.start_ns):
            if id(span) in seen:
                continue
            parent = by_id.get(span.parent_id or "")
            if parent is not None:
                parent.children.remove(span)
            roots.append(span)
            _assign_depths([span])
            seen.update(id(s) for s in _iter_subtrees([span]))
    key = _start_key
    roots.sort(key=key)
    for span in spans:
        if len(span.children) > 1:
            span.children.sort(key=key)
    _roll_up(roots)
    starts = [s.start_ns for s in spans if s.start_ns]
    ends = [s.end_ns for s in spans if s.end_ns]
    start_ns = min(starts) if starts else info.request_time_ms * 1_000_000
    end_ns = max(ends) if ends else start_ns
    tokens = sum((r.tokens_total for r in roots), ZERO_TOKENS)
    cost = sum(r.cost_total for r in roots)
    return TraceTree(info=info, roots=roots, spans=by_id, start_ns=start_ns, end_ns=end_ns,
                     tokens=tokens, cost_usd=cost)


# The span cache keeps trees as built here; bump when decode_span or build_tree would give
# another result for the same spans, and cached trees are rebuilt from their spans.
TREE_RULES = 1


def tree_from_walk(info: TraceInfo, spans: list[Span], walk: list[tuple[int, int]]
                   ) -> TraceTree:
    """The tree ``build_tree(info, spans)`` gave, from its depth-first walk (index into
    ``spans``, depth) and spans whose ``tokens_total``/``cost_total`` are set: no linking
    by id, no sort, no roll-up. ``walk`` must visit every span once, each depth at most one
    more than the one before (the span cache checks)."""
    roots: list[Span] = []
    stack: list[Span] = []
    for pos, depth in walk:
        span = spans[pos]
        span.depth = depth
        span.children = []
        del stack[depth:]
        (stack[-1].children if stack else roots).append(span)
        stack.append(span)
    by_id: dict[str, Span] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    starts = [s.start_ns for s in spans if s.start_ns]
    ends = [s.end_ns for s in spans if s.end_ns]
    start_ns = min(starts) if starts else info.request_time_ms * 1_000_000
    end_ns = max(ends) if ends else start_ns
    return TraceTree(info=info, roots=roots, spans=by_id, start_ns=start_ns, end_ns=end_ns,
                     tokens=sum((r.tokens_total for r in roots), ZERO_TOKENS),
                     cost_usd=sum(r.cost_total for r in roots))


def with_info(tree: TraceTree, info: TraceInfo) -> TraceTree:
    """``tree`` for another TraceInfo: what ``build_tree(info, spans)`` gives, for a tree
    built before its info came (the span cache decodes while the info is requested)."""
    start_ns, end_ns = tree.start_ns, tree.end_ns
    spans = tree.spans.values()
    if not any(s.start_ns for s in spans):
        start_ns = info.request_time_ms * 1_000_000
        if not any(s.end_ns for s in spans):
            end_ns = start_ns
    return TraceTree(info=info, roots=tree.roots, spans=tree.spans, start_ns=start_ns,
                     end_ns=end_ns, tokens=tree.tokens, cost_usd=tree.cost_usd)


PENDING_INFO = TraceInfo(trace_id="", experiment_id="", name="", state="", request_time_ms=0,
                         duration_ms=None, tags={}, metadata={}, assessments=[])


def decode_trace(payload: Mapping[str, Any]) -> TraceTree:
    """``{"trace_info": ..., "spans": [...]}`` (traces/get, batchGet) -> TraceTree."""
    if not isinstance(payload, Mapping) or "trace_info" not in payload:
        raise TraceDecodeError("trace payload has no 'trace_info'")
    info = TraceInfo.from_json(payload["trace_info"])
    raw_spans = payload.get("spans") or []
    if not isinstance(raw_spans, list):
        raise TraceDecodeError(f"{info.trace_id}: 'spans' is not a list")
    spans = []
    ids: dict[Any, str] = {}
    for i, raw in enumerate(raw_spans):
        try:
            spans.append(decode_span(raw, ids))
        except TraceDecodeError as exc:
            raise TraceDecodeError(f"{info.trace_id}: span #{i}: {exc}") from None
    return build_tree(info, spans)


# sort keys (attrgetter: a C call per span, several times cheaper than a Python function)
_start_key = attrgetter("start_ns", "span_id")
_end_key = attrgetter("end_ns", "start_ns")
_path_key = attrgetter("start_ns", "depth")


def _iter_subtrees(roots: list[Span]) -> Iterator[Span]:
    stack = list(roots)
    while stack:
        span = stack.pop()
        yield span
        stack.extend(span.children)


def _assign_depths(roots: list[Span]) -> int:
    count = 0
    stack = [(r, 0) for r in roots]
    while stack:
        span, depth = stack.pop()
        span.depth = depth
        count += 1
        stack.extend((c, depth + 1) for c in span.children)
    return count


def _roll_up(roots: list[Span]) -> None:
    """Subtree totals, post-order. Tokens follow MLflow's server rule: a span's usage counts
    only if no ancestor has usage, so a span with usage stands for its whole subtree."""
    order = list(_iter_subtrees(roots))
    for span in reversed(order):  # children before parents
        children = span.children
        keys = span._decoded if span._decoded is not None else (
            span._attrs if span._native else None)
        # Most spans carry no usage or cost: a key lookup, not an attribute decode, says so.
        own = None if keys is not None and _NO_USAGE.isdisjoint(keys) else span.tokens
        if own is not None:
            span.tokens_total = own
        elif not children:
            span.tokens_total = ZERO_TOKENS
        else:
            span.tokens_total = sum((c.tokens_total for c in children), ZERO_TOKENS)
        own_cost = None if keys is not None and COST_ATTR not in keys else span.cost_usd
        if own_cost is not None:
            span.cost_total = own_cost
        else:
            span.cost_total = sum(c.cost_total for c in children) if children else 0


_NO_USAGE = frozenset((TOKEN_USAGE_ATTR, "gen_ai.usage.input_tokens",
                       "gen_ai.usage.output_tokens"))


# --------------------------------------------------------------------------- helpers


def _normalise_status(code: str) -> str:
    code = code.upper().removeprefix("STATUS_CODE_")
    return code if code in ("OK", "ERROR") else "UNSET"


def _loads_json_string(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
