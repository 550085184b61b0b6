"""The span tree as a waterfall, on Textual's line API.

The spans stay in the model's tree; ``rows`` is the flattened list of rows that are not
inside a folded subtree. Folding or unfolding one span splices just its subtree out of / into
that list, so a 10k-span trace costs one walk at load and only visible rows are ever rendered.
"""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.message import Message
from textual.strip import Strip

from trace_tui.core.model import Span, TraceTree
from trace_tui.core.render import (
    SPAN_MARKERS,
    attributes_text,
    fmt_cost,
    fmt_count,
    fmt_duration,
    fmt_share,
    hidden_child_cost,
    hidden_child_tokens,
    waterfall_bar,
)
from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.line_list import LineList, fit

TYPE_STYLES = {
    "AGENT": "agent", "CHAIN": "agent", "WORKFLOW": "agent", "TASK": "agent",
    "CHAT_MODEL": "llm", "LLM": "llm", "EMBEDDING": "llm",
    "TOOL": "tool", "RETRIEVER": "retrieval", "RERANKER": "retrieval", "MEMORY": "retrieval",
}


def flatten(spans: list[Span], collapsed: set[str]) -> list[Span]:
    """Depth-first rows of ``spans`` and their descendants, skipping folded subtrees."""
    out: list[Span] = []
    stack = list(reversed(spans))
    while stack:
        span = stack.pop()
        out.append(span)
        if span.children and span.span_id not in collapsed:
            stack.extend(reversed(span.children))
    return out


class SpanWaterfall(LineList):
    """Rows: type marker, tree + name (and model), duration, share of trace, own and subtree
    tokens, cost, and a bar on the trace's time axis. Errors in red; the critical path can be
    highlighted (``»`` after the type marker, so an error on the path still shows it). A ``*``
    after Σtok/Σcost: the span's own usage stands for its subtree, children not added."""

    HEADER_LINES = 1

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "span-waterfall--header", "span-waterfall--cursor", "span-waterfall--error",
        "span-waterfall--dim", "span-waterfall--bar", "span-waterfall--critical",
        "span-waterfall--agent", "span-waterfall--llm", "span-waterfall--tool",
        "span-waterfall--retrieval", "span-waterfall--match",
    }

    DEFAULT_CSS = """
    SpanWaterfall { background: $surface; }
    SpanWaterfall > .span-waterfall--header {
        background: $panel; color: $foreground; text-style: bold;
    }
    SpanWaterfall > .span-waterfall--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    SpanWaterfall:focus > .span-waterfall--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    SpanWaterfall > .span-waterfall--error { color: $text-error; text-style: bold; }
    SpanWaterfall > .span-waterfall--dim { color: $text-muted; }
    SpanWaterfall > .span-waterfall--bar { color: $primary; }
    SpanWaterfall > .span-waterfall--critical { color: $warning; text-style: bold; }
    SpanWaterfall > .span-waterfall--agent { color: $text-primary; text-style: bold; }
    SpanWaterfall > .span-waterfall--llm { color: $text-accent; text-style: bold; }
    SpanWaterfall > .span-waterfall--tool { color: $text-warning; text-style: bold; }
    SpanWaterfall > .span-waterfall--retrieval { color: $text-success; text-style: bold; }
    SpanWaterfall > .span-waterfall--match { text-style: underline; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h,left", "fold", "Fold", id="tree.fold"),
        Binding("l,right", "unfold", "Unfold", id="tree.unfold"),
        Binding("space", "toggle_fold", "Fold/unfold", show=False, id="tree.toggle"),
        Binding("H,left_square_bracket", "fold_all", "Fold all", show=False, id="tree.fold_all"),
        Binding("L,right_square_bracket", "unfold_all", "Unfold all", show=False,
                id="tree.unfold_all"),
    ]

    class Highlighted(Message):
        """The cursor is on another span (coalesced: only the last one matters)."""

        def __init__(self, span: Span | None) -> None:
            self.span = span
            super().__init__()

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, SpanWaterfall.Highlighted)

    def __init__(self, tree: TraceTree | None = None, *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.trace_tree: TraceTree | None = None
        self.rows: list[Span] = []
        self.collapsed: set[str] = set()
        self.show_critical = False
        self._critical: set[str] | None = set()
        self.matches: set[str] = set()
        self._order: list[Span] = []
        self._order_index: dict[str, int] = {}
        self._haystack: dict[str, str] = {}
        self._cache: LRUCache[tuple[str, int, bool], Strip] = LRUCache(512)
        self._styles: dict[str, Style] | None = None
        self._trace_ns = (0, 1)
        if tree is not None:
            self.set_tree(tree)

    # ------------------------------------------------------------------ data

    def set_tree(self, tree: TraceTree) -> None:
        """Show ``tree`` fully unfolded, cursor on the first root."""
        self.trace_tree = tree
        self.collapsed = set()
        self._order = list(tree.walk())
        self._order_index = {}  # built on first search
        self._haystack = {}
        self.rows = list(self._order)
        self._critical = None  # worked out when the path is first shown (c), not on open
        start, end = tree.start_ns, tree.end_ns
        if end <= start:
            end = start + max(1, int((tree.duration_ms or 0) * 1e6))
        self._trace_ns = (start, end)
        self._cache.clear()
        self.set_cursor_silently(0)
        self.update_virtual_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Highlighted(self.current))

    def clear(self) -> None:
        """No trace (while the next one loads)."""
        self.trace_tree = None
        self.rows = []
        self._order = []
        self._order_index = {}
        self._haystack = {}
        self.collapsed = set()
        self.matches = set()
        self._critical = None
        self.set_cursor_silently(0)
        self._rows_changed()

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def critical(self) -> set[str]:
        """Span ids on the critical path of the trace shown."""
        if self._critical is None:
            tree = self.trace_tree
            self._critical = set(tree.critical_path()) if tree is not None else set()
        return self._critical

    @property
    def current(self) -> Span | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def cursor_changed(self, old: int, new: int) -> None:
        self.post_message(self.Highlighted(self.current))

    def _rows_changed(self) -> None:
        self._cache.clear()
        self.update_virtual_size()
        self.refresh()

    # ------------------------------------------------------------------ folding

    def fold(self, index: int) -> bool:
        """Fold the span at row ``index``; True if its subtree was visible."""
        span = self.rows[index]
        if not span.children or span.span_id in self.collapsed:
            return False
        self.collapsed.add(span.span_id)
        end = index + 1
        depth = span.depth
        visible = self.rows
        while end < len(visible) and visible[end].depth > depth:
            end += 1
        del visible[index + 1:end]
        if self.cursor > index:
            inside = self.cursor < end
            self.set_cursor_silently(index if inside else self.cursor - (end - index - 1))
        self._rows_changed()
        return True

    def unfold(self, index: int) -> bool:
        span = self.rows[index]
        if span.span_id not in self.collapsed:
            return False
        self.collapsed.discard(span.span_id)
        rows = flatten(span.children, self.collapsed)
        self.rows[index + 1:index + 1] = rows
        if self.cursor > index:
            self.set_cursor_silently(self.cursor + len(rows))
        self._rows_changed()
        return True

    def fold_all(self) -> None:
        if self.trace_tree is None:
            return
        current = self.current
        self.collapsed = {s.span_id for s in self._order if s.children}
        self.rows = list(self.trace_tree.roots)
        root = self._root_of(current) if current is not None else None
        self.set_cursor_silently(self.rows.index(root) if root in self.rows else 0)
        self._rows_changed()
        self.scroll_cursor_into_view()
        self.post_message(self.Highlighted(self.current))

    def unfold_all(self) -> None:
        if self.trace_tree is None:
            return
        current = self.current
        self.collapsed = set()
        self.rows = list(self._order)
        if current is not None:
            self.set_cursor_silently(self._order_pos(current))
        self._rows_changed()
        self.scroll_cursor_into_view()

    def reveal(self, span: Span) -> None:
        """Unfold the ancestors of ``span`` and put the cursor on it."""
        assert self.trace_tree is not None
        chain: list[Span] = []
        node = span
        while node.parent_id and (parent := self.trace_tree.spans.get(node.parent_id)) is not None:
            if parent is node or len(chain) > len(self._order):
                break
            chain.append(parent)
            node = parent
        for ancestor in reversed(chain):
            if ancestor.span_id in self.collapsed:
                index = self._visible_index(ancestor)
                if index is not None:
                    self.unfold(index)
        index = self._visible_index(span)
        if index is not None:
            self.cursor = index
            self.scroll_cursor_into_view()

    def _visible_index(self, span: Span) -> int | None:
        try:
            return self.rows.index(span)
        except ValueError:
            return None

    def _order_pos(self, span: Span) -> int:
        if not self._order_index:
            self._order_index = {s.span_id: i for i, s in enumerate(self._order)}
        return self._order_index.get(span.span_id, 0)

    def _root_of(self, span: Span) -> Span:
        assert self.trace_tree is not None
        node = span
        for _ in range(len(self._order)):
            parent = self.trace_tree.spans.get(node.parent_id) if node.parent_id else None
            if parent is None or parent is node:
                break
            node = parent
        return node

    def action_fold(self) -> None:
        span = self.current
        if span is None:
            return
        if not self.fold(self.cursor) and span.parent_id and self.trace_tree is not None:
            parent = self.trace_tree.spans.get(span.parent_id)
            index = self._visible_index(parent) if parent is not None else None
            if index is not None:
                self.cursor = index

    def action_unfold(self) -> None:
        span = self.current
        if span is None:
            return
        if not self.unfold(self.cursor) and span.children:
            self.cursor += 1

    def action_toggle_fold(self) -> None:
        if self.current is not None and not self.fold(self.cursor):
            self.unfold(self.cursor)

    def action_fold_all(self) -> None:
        self.fold_all()

    def action_unfold_all(self) -> None:
        self.unfold_all()

    # ------------------------------------------------------------------ critical path, search

    def toggle_critical(self) -> bool:
        self.show_critical = not self.show_critical
        self._cache.clear()
        self.refresh()
        return self.show_critical

    def _text(self, span: Span) -> str:
        text = self._haystack.get(span.span_id)
        if text is None:
            text = span.name.lower() + "\n" + attributes_text(span.attributes)
            self._haystack[span.span_id] = text
        return text

    def search(self, query: str, *, forward: bool = True) -> tuple[Span | None, int]:
        """Next span (after the cursor, wrapping) whose name or attributes contain ``query``;
        it is revealed and selected. Returns (span, number of matches)."""
        if self.trace_tree is None or not query:
            self.matches = set()
            return None, 0
        needle = query.lower()
        order = self._order
        self.matches = {s.span_id for s in order if needle in self._text(s)}
        self._cache.clear()
        self.refresh()
        if not self.matches:
            return None, 0
        current = self.current
        start = self._order_pos(current) if current is not None else -1
        n = len(order)
        step = 1 if forward else -1
        for k in range(1, n + 1):
            span = order[(start + step * k) % n]
            if span.span_id in self.matches:
                self.reveal(span)
                return span, len(self.matches)
        return None, len(self.matches)

    # ------------------------------------------------------------------ rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._cache.clear()

    def _get_styles(self) -> dict[str, Style]:
        if self._styles is None:
            base = self.rich_style
            cursor = base + self.get_component_rich_style("span-waterfall--cursor")
            styles = {"base": base, "cursor": cursor,
                      "header": base + self.get_component_rich_style("span-waterfall--header")}
            for name in ("error", "dim", "bar", "critical", "agent", "llm", "tool",
                         "retrieval", "match"):
                part = self.get_component_rich_style(f"span-waterfall--{name}", partial=True)
                styles[name] = base + part
                styles["cursor-" + name] = cursor + part + Style(bgcolor=cursor.bgcolor)
            styles["cursor-bar"] = cursor  # a bar in the cursor colour would vanish
            self._styles = styles
        return self._styles

    @staticmethod
    def column_widths(width: int) -> tuple[int, int]:
        """(name column width, bar width) for a row ``width`` cells wide."""
        fixed = 2 + 1 + 8 + 1 + 5 + 1 + 6 + 1 + 6 + 1 + 8 + 1  # marker, cols, gaps
        bar = max(8, min(80, (width - fixed) // 2))
        name = max(16, width - fixed - bar)
        return name, bar

    def render_header(self, width: int) -> Strip:
        styles = self._get_styles()
        name_w, bar_w = self.column_widths(width)
        total = self.trace_tree.duration_ms if self.trace_tree is not None else 0.0
        axis = fit(f"0 … {fmt_duration(total)}", bar_w)
        text = (" " * 2 + fit("span", name_w) + " " + fit("duration", 8, "right") + " "
                + fit("share", 5, "right") + " " + fit("tok", 6, "right") + " "
                + fit("Σtok", 6, "right") + " " + fit("Σcost", 8, "right") + " " + axis)
        return self.strip([(text, styles["header"])], width, styles["header"])

    def render_row(self, index: int, width: int, is_cursor: bool) -> Strip:
        span = self.rows[index]
        key = (span.span_id, width, is_cursor)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        styles = self._get_styles()
        p = "cursor-" if is_cursor else ""
        plain = styles["cursor" if is_cursor else "base"]
        name_w, bar_w = self.column_widths(width)
        on_path = self.show_critical and span.span_id in self.critical
        marker = SPAN_MARKERS.get(span.span_type, "?")
        marker_style = styles[p + TYPE_STYLES.get(span.span_type, "dim")]
        fold = ("▸ " if span.span_id in self.collapsed else "▾ ") if span.children else "  "
        indent_cells = span.depth * 2
        if indent_cells > name_w // 2:  # very deep: show the depth instead of the indent
            prefix = fit(f"·{span.depth}", name_w // 2)
        else:
            prefix = " " * indent_cells
        label = span.name + (" ✗" if span.is_error else "")
        if span.is_error:
            name_style = styles[p + "error"]
        elif on_path:
            name_style = styles[p + "critical"]
        else:
            name_style = plain
        if span.span_id in self.matches:
            name_style = name_style + styles["match"]
        dim = styles[p + "dim"]
        head = safe_text(prefix + fold + label)
        model = span.model
        room = name_w - cell_len(head)
        if model and room >= 6:  # the model after the name, dimmed, when it fits
            name_parts = [(head, name_style), (fit(" " + model, room) + " ", dim)]
        else:
            name_parts = [(fit(head, name_w) + " ", name_style)]
        tree = self.trace_tree
        total_ms = tree.duration_ms if tree is not None else 0.0
        own = span.tokens
        start, end = self._trace_ns
        track = end - start
        s_frac = (span.start_ns - start) / track if track else 0.0
        e_frac = (span.end_ns - start) / track if track and span.end_ns else 1.0
        lead, bar = waterfall_bar(s_frac, e_frac, bar_w)
        if on_path:  # the path wins on the bar: an error is already in the name and ✗
            bar_style = styles[p + "critical"]
        elif span.is_error:
            bar_style = styles[p + "error"]
        else:
            bar_style = styles[p + "bar"]
        cost = span.cost_total
        tok_total = fmt_count(span.tokens_total.total) if span.tokens_total.total else ""
        if tok_total and hidden_child_tokens(span):
            tok_total += "*"
        cost_text = fmt_cost(cost) if cost else ""
        if cost_text and hidden_child_cost(span):
            cost_text += "*"
        # each gap takes the style of the text before it, so the two merge into one segment
        parts: list[tuple[str, Style]] = [
            (marker, marker_style),
            ("»", styles[p + "critical"]) if on_path else (" ", marker_style),
            *name_parts,
            (fit(fmt_duration(span.duration_ms), 8, "right") + " ", plain),
            (fit(fmt_share(span.duration_ms, total_ms), 5, "right") + " ", dim),
            (fit(fmt_count(own.total) if own is not None else "", 6, "right") + " ", plain),
            (fit(tok_total, 6, "right") + " ", dim),
            (fit(cost_text, 8, "right") + " " + " " * lead, dim),
            (bar, bar_style),
        ]
        strip = self.strip(parts, width, plain)
        self._cache[key] = strip
        return strip

    def row_text(self, index: int) -> str:
        """Plain text of a row (for tests and the benchmark)."""
        width = max(80, self.scrollable_content_region.width)
        return self.render_row(index, width, False).text
