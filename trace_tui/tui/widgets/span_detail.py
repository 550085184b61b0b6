"""Span detail: tabs for inputs, outputs, attributes, events/exceptions and assessments.

Large payloads are cut (``MAX_LINES`` / ``MAX_CHARS``) with a hint to open the full text in
``$PAGER``; ``full_text()`` gives the uncut text of a tab for that.
"""

from __future__ import annotations

import json
from typing import Any

from rich.highlighter import JSONHighlighter
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from trace_tui.core.chat import ChatMessage, ToolCall, chat_messages, conversation_text
from trace_tui.core.model import INPUTS_ATTR, OUTPUTS_ATTR, Assessment, Span, TraceTree
from trace_tui.core.render import (
    fmt_assessment_value,
    fmt_cost,
    fmt_count,
    fmt_duration,
    fmt_tokens,
    hidden_child_cost,
    hidden_child_tokens,
    is_pass,
    to_json_text,
    truncate_text,
)
from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.safe import SafeStatic

TABS = ("inputs", "outputs", "attributes", "events", "assessments")
TAB_TITLES = {"inputs": "Inputs", "outputs": "Outputs", "attributes": "Attributes",
              "events": "Events", "assessments": "Assessments"}
HIDDEN_ATTRS = (INPUTS_ATTR, OUTPUTS_ATTR)
_json = JSONHighlighter()
ROLE_STYLES = {"system": "bold magenta", "user": "bold cyan", "assistant": "bold green",
               "tool": "bold yellow", "function": "bold yellow"}
PASS_CHIP, FAIL_CHIP = "bold black on green", "bold white on red"


def verdict_chip(a: Assessment) -> tuple[str, str]:
    """(text, style) of an assessment's value: a green pass / red fail chip when the value
    reads as either (``render.is_pass``), plain otherwise."""
    value = fmt_assessment_value(a)
    if a.error:
        return f" ! {value} ", FAIL_CHIP
    verdict = is_pass(a.value)
    if verdict is None:
        return value, "bold"
    shown = value.removeprefix("👍 ").removeprefix("👎 ")
    return (f" ✓ {shown} ", PASS_CHIP) if verdict else (f" ✗ {shown} ", FAIL_CHIP)


class SpanDetail(Widget):
    """The detail pane of the trace view."""

    MAX_LINES = 200
    MAX_CHARS = 20_000
    PAGER_KEY = "p"

    DEFAULT_CSS = """
    SpanDetail { height: 1fr; }
    SpanDetail TabbedContent { height: 1fr; }
    SpanDetail TabPane { padding: 0 1; height: 1fr; }
    SpanDetail VerticalScroll { height: 1fr; }
    SpanDetail .detail-body { width: 1fr; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.span: Span | None = None
        self.trace_tree: TraceTree | None = None
        self.truncated: dict[str, bool] = dict.fromkeys(TABS, False)
        self._full: dict[str, str] = dict.fromkeys(TABS, "")
        self._dirty: set[str] = set()
        self._labels: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="tab-inputs"):
            for tab in TABS:
                with TabPane(TAB_TITLES[tab], id=f"tab-{tab}"), VerticalScroll(
                        id=f"scroll-{tab}", can_focus=True):
                    yield SafeStatic("", id=f"body-{tab}", classes="detail-body")

    # ------------------------------------------------------------------ API

    @property
    def active_tab(self) -> str:
        active = self.query_one(TabbedContent).active
        return active.removeprefix("tab-") if active else "inputs"

    def show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab}"

    def next_tab(self) -> None:
        i = TABS.index(self.active_tab)
        self.show_tab(TABS[(i + 1) % len(TABS)])

    def full_text(self, tab: str | None = None) -> str:
        tab = tab or self.active_tab
        self._ensure(tab)
        return self._full[tab]

    def body_text(self, tab: str) -> str:
        """The rendered (possibly truncated) text of a tab, as plain text."""
        self._ensure(tab)
        body = self.query_one(f"#body-{tab}", SafeStatic)
        content = body.content
        return content.plain if isinstance(content, Text) else str(content)

    def show(self, span: Span | None, tree: TraceTree | None, *,
             after_refresh: bool = False) -> None:
        """Show a span. Only the active tab renders now; the others when they are opened
        (moving the cursor over a 10k-span trace must not render five tabs per step).
        ``after_refresh``: the pane is re-rendered (and re-laid out) after the next frame
        (a trace just opened paints its tree first); the span is set now, so ``body_text``
        and ``full_text`` already answer for it."""
        self.span, self.trace_tree = span, tree
        self._dirty = set(TABS)
        if after_refresh:
            self.call_after_refresh(self._render_span, span, tree)
        else:
            self._render_span(span, tree)

    def _render_span(self, span: Span | None, tree: TraceTree | None) -> None:
        if span is not self.span or tree is not self.trace_tree:
            return  # a later show() took over
        if span is None or tree is None:
            if self._dirty:
                for tab in TABS:
                    self._set(tab, Text("no span selected", style="italic"), "")
                self._dirty.clear()
            return
        n_events = len(span.events)
        label = f"Events ({n_events})" if n_events else "Events"
        if span.is_error:
            label += " ✗"
        self._label("events", label)
        self._label_assessments()
        self._ensure(self.active_tab)

    def show_assessments(self) -> None:
        """Re-render the assessments tab (called when feedback lands)."""
        if self.span is None or self.trace_tree is None:
            return
        self._dirty.add("assessments")
        self._label_assessments()
        if self.active_tab == "assessments":
            self._ensure("assessments")

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id or ""
        self._ensure(pane.removeprefix("tab-"))

    def _ensure(self, tab: str) -> None:
        if tab not in self._dirty or self.span is None or self.trace_tree is None:
            return
        self._dirty.discard(tab)
        span, tree = self.span, self.trace_tree
        if tab == "inputs":
            self._set_value("inputs", span.inputs, span)
        elif tab == "outputs":
            self._set_value("outputs", span.outputs, span)
        elif tab == "attributes":
            self._show_attributes(span, tree)
        elif tab == "events":
            self._show_events(span, tree)
        elif tab == "assessments":
            self._show_assessments(span, self._assessments())

    def _label(self, tab: str, label: str) -> None:
        if self._labels.get(tab) != label:
            self._labels[tab] = label
            self.query_one(TabbedContent).get_tab(f"tab-{tab}").label = label

    def _label_assessments(self) -> None:
        n_assess = len(self._assessments())
        self._label("assessments", f"Assessments ({n_assess})" if n_assess else "Assessments")

    # ------------------------------------------------------------------ tabs

    def _assessments(self) -> list[Assessment]:
        return list(self.trace_tree.info.assessments) if self.trace_tree is not None else []

    def _set(self, tab: str, text: Text, full: str, truncated: bool = False) -> None:
        self._full[tab] = safe_text(full, multiline=True)  # for $PAGER: no raw escapes
        self.truncated[tab] = truncated
        if truncated:
            text.append(f"\n… truncated ({len(full):,} chars in all): press "
                        f"{self.PAGER_KEY} to open in $PAGER", style="bold italic")
        self.query_one(f"#body-{tab}", SafeStatic).update(text)
        self.query_one(f"#scroll-{tab}", VerticalScroll).scroll_home(animate=False)

    def _set_value(self, tab: str, value: Any, span: Span) -> None:
        """A chat exchange as a conversation, a tool's input as a call, anything else as
        pretty JSON."""
        chat = chat_messages(value)
        if chat is not None:
            self._set_chat(tab, *chat)
        elif tab == "inputs" and span.span_type == "TOOL" and isinstance(value, dict):
            call = ToolCall(span.name, json.dumps(value, ensure_ascii=False, default=str))
            self._set_json(tab, value, head=f"→ call {call.signature()}")
        else:
            self._set_json(tab, value)

    def _set_json(self, tab: str, value: Any, head: str = "") -> None:
        if value is None:
            self._set(tab, Text("(none)", style="italic"), "")
            return
        full = to_json_text(value)
        shown, truncated = truncate_text(full, self.MAX_LINES, self.MAX_CHARS)
        text = Text(shown)
        _json.highlight(text)
        if head:
            text = Text.assemble((head + "\n\n", "bold yellow"), text)
            full = f"{head}\n\n{full}"
        self._set(tab, text, full, truncated)

    def _set_chat(self, tab: str, messages: list[ChatMessage], rest: dict[str, Any]) -> None:
        full = conversation_text(messages)
        if rest:
            full += "\n\n── other fields\n" + to_json_text(rest)
        shown, truncated = truncate_text(full, self.MAX_LINES, self.MAX_CHARS)
        if truncated:  # styling a cut conversation is not worth it: plain text
            self._set(tab, Text(shown), full, True)
            return
        text = Text()
        for m in messages:
            text.append(f"── {m.role}", style=ROLE_STYLES.get(m.role, "bold"))
            if m.tool_call_id:
                text.append(f" (result of {m.tool_call_id})", style="dim")
            text.append("\n")
            if m.content:
                text.append(m.content + "\n")
            for call in m.tool_calls:
                text.append("→ call ", style="bold yellow")
                text.append(call.signature() + "\n")
            text.append("\n")
        if rest:
            text.append("── other fields\n", style="dim")
            other = Text(to_json_text(rest))
            _json.highlight(other)
            text.append_text(other)
        text.rstrip()
        self._set(tab, text, full, False)

    def _show_attributes(self, span: Span, tree: TraceTree) -> None:
        own = span.tokens
        head = [
            ("span_id", span.span_id), ("parent_id", span.parent_id or "-"),
            ("type", span.span_type), ("status", span.status
                                       + (f": {span.status_message}" if span.status_message
                                          else "")),
            ("start", f"+{fmt_duration(tree.offset_ms(span))}"),
            ("duration", fmt_duration(span.duration_ms)),
            ("tokens (own)",
             fmt_tokens(own) + (f" = {fmt_count(own.total)}" if own else "") or "-"),
            ("tokens (subtree)",
             f"{fmt_tokens(span.tokens_total)} = {fmt_count(span.tokens_total.total)}"),
            ("cost (subtree)", fmt_cost(span.cost_total) or "-"),
        ]
        hidden_tok, hidden_cost = hidden_child_tokens(span), hidden_child_cost(span)
        if hidden_tok or hidden_cost:
            left_out = " and ".join(p for p in (
                f"{hidden_tok:,} tokens" if hidden_tok else "",
                fmt_cost(hidden_cost) if hidden_cost else "") if p)
            head.append(("* subtree", "this span's own usage stands for its whole subtree "
                         f"(MLflow's rule): its children's {left_out} are not added, so Σ "
                         "can be smaller than a child's"))
        if span.model:
            head.append(("model", span.model))
        text = Text()
        full_lines = []
        for key, value in head:
            text.append(f"{key:>16} ", style="bold")
            text.append(f"{value}\n")
            full_lines.append(f"{key}: {value}")
        text.append("\n")
        attrs = {k: v for k, v in sorted(span.attributes.items()) if k not in HIDDEN_ATTRS}
        budget = self.MAX_CHARS
        truncated = False
        for key, value in attrs.items():
            rendered = value if isinstance(value, str) else json.dumps(
                value, ensure_ascii=False, default=str)
            full_lines.append(f"{key}: {rendered}")
            if budget <= 0:
                truncated = True
                continue
            shown = rendered if len(rendered) <= 300 else rendered[:299] + "…"
            truncated |= shown is not rendered
            budget -= len(shown)
            text.append(key, style="bold cyan")
            text.append(" = ")
            value_text = Text(shown)
            if not isinstance(value, str):
                _json.highlight(value_text)
            text.append_text(value_text)
            text.append("\n")
        self._set("attributes", text, "\n".join(full_lines), truncated)

    def _show_events(self, span: Span, tree: TraceTree) -> None:
        text = Text()
        lines = []
        if span.is_error:
            msg = f"status ERROR: {span.status_message or '(no message)'}"
            text.append(msg + "\n\n", style="bold red")
            lines.append(msg)
        if not span.events:
            text.append("(no events)", style="italic")
        for ev in span.events:
            offset = (ev.time_ns - tree.start_ns) / 1e6 if ev.time_ns else 0.0
            head = f"+{fmt_duration(offset)}  {ev.name}"
            is_exc = ev.name == "exception"
            text.append(head + "\n", style="bold red" if is_exc else "bold")
            lines.append(head)
            for key, value in ev.attributes.items():
                rendered = value if isinstance(value, str) else json.dumps(value, default=str)
                lines.append(f"    {key}: {rendered}")
                shown, cut = truncate_text(rendered, 40, 4000)
                text.append(f"    {key}: ", style="cyan")
                text.append(shown + ("…" if cut else "") + "\n")
        full = "\n".join(lines)
        self._set("events", text, full, False)

    def _show_assessments(self, span: Span, assessments: list[Assessment]) -> None:
        text = Text()
        lines = []
        if not assessments:
            text.append("(no assessments: press + or - to leave feedback)", style="italic")
        for a in assessments:
            where = ("this span" if a.span_id == span.span_id
                     else f"span {a.span_id}" if a.span_id else "trace")
            value = fmt_assessment_value(a)
            head = f"{a.name} = {value}"
            chip, chip_style = verdict_chip(a)
            text.append(f"{a.name} ", style="bold")
            text.append(chip, style=chip_style)
            text.append(f"   [{a.source_type}:{a.source_id}] ({where})", style="dim")
            if a.create_time:
                text.append(f" {a.create_time}", style="dim")
            text.append("\n")
            if a.rationale:
                text.append(f"    {a.rationale}\n", style="italic")
            lines.append(f"{head} [{a.source_type}:{a.source_id}] ({where}) {a.rationale}")
        self._set("assessments", text, "\n".join(lines), False)
