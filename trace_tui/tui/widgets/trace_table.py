"""The trace list: a bounded buffer of TraceInfos and a line-API table over it.

The buffer (``TraceBuffer``) is plain Python: a ring of at most ``capacity`` traces (evicted in
arrival order) plus the rows in the current sort. The widget renders only the visible rows,
keeps the cursor and the marks on the same trace ids when rows arrive, and repaints only the
old and the new row on a cursor move.

Over 500 lines on purpose: the buffer and the widget share one invariant (rows in sort order,
cursor and marks kept by trace id through arrivals, evictions and re-sorts).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.message import Message
from textual.strip import Strip

from trace_tui.core.model import TraceInfo
from trace_tui.core.render import (
    fmt_cost,
    fmt_duration,
    fmt_time,
    fmt_tokens,
    list_badges,
)
from trace_tui.tui.widgets.line_list import LineList, fit

SORTS = ("time", "duration", "tokens", "cost")
SORT_LABELS = {"time": "time", "duration": "duration", "tokens": "tokens", "cost": "cost"}


def _tokens_total(info: TraceInfo) -> int:
    usage = info.tokens
    return usage.total if usage is not None else -1


SORT_KEYS: dict[str, Callable[[TraceInfo], tuple[float, int]]] = {
    "time": lambda r: (r.request_time_ms, 0),
    "duration": lambda r: (r.duration_ms if r.duration_ms is not None else -1.0,
                           r.request_time_ms),
    "tokens": lambda r: (_tokens_total(r), r.request_time_ms),
    "cost": lambda r: (c if (c := r.cost_usd) is not None else -1.0, r.request_time_ms),
}


@dataclass(slots=True)
class MergeResult:
    added: int = 0
    updated: int = 0
    evicted: int = 0


class TraceBuffer:
    """At most ``capacity`` traces by id, evicting the oldest (by request time) first, as a
    ring would; ``rows`` is the current view, sorted descending by the sort key (newest first
    for ``time``)."""

    def __init__(self, capacity: int = 5000, sort: str = "time") -> None:
        self.capacity = max(1, int(capacity))
        self.sort = sort
        self.by_id: dict[str, TraceInfo] = {}
        self._age: list[tuple[int, str]] = []  # heap of (request time, id); may hold stale
        self._durations: list[float] = []  # sorted, for percentiles without re-sorting
        self.rows: list[TraceInfo] = []
        self.version = 0  # bumped on every change (for derived stats)

    def __len__(self) -> int:
        return len(self.rows)

    def _neg_key(self, info: TraceInfo) -> tuple[float, int]:
        primary, secondary = SORT_KEYS[self.sort](info)
        return (-primary, -secondary)

    def clear(self) -> None:
        self.by_id.clear()
        self._age.clear()
        self._durations = []
        self.rows = []
        self.version += 1

    def reset(self) -> None:
        """Drop everything (as ``TraceTable.reset`` does for the list on screen)."""
        self.clear()

    def set_capacity(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._evict()

    def set_sort(self, sort: str) -> None:
        if sort not in SORT_KEYS:
            raise ValueError(f"unknown sort {sort!r}")
        self.sort = sort
        self.rows.sort(key=self._neg_key)
        self.version += 1

    def index_of(self, trace_id: str, hint: int = 0) -> int | None:
        """Row index of ``trace_id`` (scans outwards from ``hint``)."""
        info = self.by_id.get(trace_id)
        if info is None:
            return None
        rows = self.rows
        n = len(rows)
        hint = max(0, min(hint, n - 1)) if n else 0
        # the cursor is usually near where it was: search a window first, then everything
        lo, hi = max(0, hint - 512), min(n, hint + 512)
        for i in range(lo, hi):
            if rows[i] is info:
                return i
        for i in range(n):
            if rows[i] is info:
                return i
        return None

    def merge(self, infos: Iterable[TraceInfo]) -> MergeResult:
        """Add new traces, replace known ones (same id), then evict past capacity."""
        result = MergeResult()
        new: list[TraceInfo] = []
        for info in infos:
            old = self.by_id.get(info.trace_id)
            if old is None:
                self.by_id[info.trace_id] = info
                heapq.heappush(self._age, (info.request_time_ms, info.trace_id))
                self._add_duration(info)
                new.append(info)
                result.added += 1
            elif old is not info:
                self.by_id[info.trace_id] = info
                self._replace_row(old, info)
                self._reindex(old, info)
                result.updated += 1
        if new:
            self._insert(new)
        result.evicted = self._evict()
        if result.added or result.updated or result.evicted:
            self.version += 1
        return result

    def _insert(self, new: list[TraceInfo]) -> None:
        """Insert in sort order. The common cases are O(batch): a search page of older
        traces goes to the end, live arrivals go to the front."""
        key = self._neg_key
        keyed = sorted(((key(i), i) for i in new), key=lambda pair: pair[0])
        rows = self.rows
        if not rows or keyed[0][0] >= key(rows[-1]):
            rows.extend(i for _, i in keyed)
        elif keyed[-1][0] <= key(rows[0]):
            rows[:0] = [i for _, i in keyed]
        elif len(keyed) * 8 > len(rows):
            rows.extend(i for _, i in keyed)
            rows.sort(key=key)
        else:
            for k, i in keyed:
                rows.insert(bisect.bisect_right(rows, k, key=key), i)

    def replace(self, info: TraceInfo) -> bool:
        """Swap in a new version of a known trace (e.g. after feedback); False if unknown."""
        old = self.by_id.get(info.trace_id)
        if old is None:
            return False
        self.by_id[info.trace_id] = info
        self._replace_row(old, info)
        self._reindex(old, info)
        self.version += 1
        return True

    def _replace_row(self, old: TraceInfo, new: TraceInfo) -> None:
        for i, row in enumerate(self.rows):
            if row is old:
                if self._neg_key(old) == self._neg_key(new):
                    self.rows[i] = new
                else:
                    del self.rows[i]
                    bisect.insort(self.rows, new, key=self._neg_key)
                return

    def _add_duration(self, info: TraceInfo) -> None:
        if info.duration_ms is not None:
            bisect.insort(self._durations, info.duration_ms)

    def _drop_duration(self, info: TraceInfo) -> None:
        if info.duration_ms is not None:
            i = bisect.bisect_left(self._durations, info.duration_ms)
            if i < len(self._durations) and self._durations[i] == info.duration_ms:
                del self._durations[i]

    def _reindex(self, old: TraceInfo, new: TraceInfo) -> None:
        self._drop_duration(old)
        self._add_duration(new)
        if old.request_time_ms != new.request_time_ms:
            heapq.heappush(self._age, (new.request_time_ms, new.trace_id))
            if len(self._age) > 2 * len(self.by_id) + 1024:  # drop stale entries
                self._age = [(r.request_time_ms, r.trace_id) for r in self.by_id.values()]
                heapq.heapify(self._age)

    def _evict(self) -> int:
        excess = len(self.by_id) - self.capacity
        if excess <= 0:
            return 0
        gone: set[str] = set()
        age = self._age
        while len(gone) < excess and age:
            when, tid = heapq.heappop(age)
            info = self.by_id.get(tid)
            if info is not None and info.request_time_ms == when:
                del self.by_id[tid]
                self._drop_duration(info)
                gone.add(tid)
        rows = self.rows
        # newest-first time order: the evicted ones are usually all at the tail
        while rows and rows[-1].trace_id in gone and len(rows) > len(self.by_id):
            rows.pop()
        if len(rows) != len(self.by_id):
            self.rows = [r for r in rows if r.trace_id not in gone]
        return len(gone)

    def durations(self) -> list[float]:
        """Durations of the listed traces, sorted (kept up to date on every change)."""
        return self._durations

    def newest(self, n: int) -> list[TraceInfo]:
        """The ``n`` most recent traces, oldest first (for the sparkline)."""
        if self.sort == "time":
            return self.rows[:n][::-1]
        return heapq.nlargest(n, self.rows, key=lambda r: r.request_time_ms)[::-1]


# --------------------------------------------------------------------------- widget


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    align: str = "left"


# Display order; widths are the minimum each column needs.
FIXED_COLUMNS = (
    Column("mark", "", 1),
    Column("time", "time", 14),
    Column("status", "st", 3),
    Column("duration", "duration", 9, "right"),
    Column("tokens", "tok in/out", 11, "right"),
    Column("cost", "cost", 8, "right"),
    Column("who", "session/user", 19),
    Column("assess", "judged/feedback", 15),
)
OPTIONAL = ("assess", "who", "cost", "time")  # dropped in this order when narrow
NAME_MIN = 16
NAME_MAX = 56  # past this the slack goes to session/user, then feedback
GROW = (("who", 32), ("assess", 24))  # (column, max width) given slack beyond NAME_MAX
SHORT_TIME = Column("time", "time", 8)  # HH:MM:SS when the date does not fit
SORT_COLUMNS = {"time": "time", "duration": "duration", "tokens": "tokens", "cost": "cost"}


def layout_columns(width: int) -> list[Column]:
    """Columns that fit ``width`` cells: optional ones drop by priority, the name takes
    the slack up to ``NAME_MAX``, what is left widens session/user and feedback."""
    cols = list(FIXED_COLUMNS)

    def total(cs: list[Column]) -> int:
        return sum(c.width for c in cs) + len(cs) + 1  # one space after each, and the name's

    for key in OPTIONAL:
        if total(cols) + NAME_MIN <= width:
            break
        if key == "time":
            cols = [SHORT_TIME if c.key == "time" else c for c in cols]
            if total(cols) + NAME_MIN <= width:
                break
        cols = [c for c in cols if c.key != key]
    slack = max(0, width - total(cols) - NAME_MIN)
    name_w = NAME_MIN + min(slack, NAME_MAX - NAME_MIN)
    slack -= name_w - NAME_MIN
    for key, most in GROW:
        for i, c in enumerate(cols):
            if c.key == key and slack > 0:
                extra = min(slack, most - c.width)
                cols[i] = Column(c.key, c.label, c.width + extra, c.align)
                slack -= extra
    name_w += slack  # nothing else to widen
    return [*cols[:3], Column("name", "name", name_w), *cols[3:]]


class TraceTable(LineList):
    """The trace list (newest first by default)."""

    HEADER_LINES = 1

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "trace-table--header", "trace-table--cursor", "trace-table--error",
        "trace-table--ok", "trace-table--dim", "trace-table--marked", "trace-table--empty",
    }

    DEFAULT_CSS = """
    TraceTable { background: $surface; }
    TraceTable > .trace-table--header { background: $panel; color: $foreground; text-style: bold; }
    TraceTable > .trace-table--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    TraceTable:focus > .trace-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    TraceTable > .trace-table--error { color: $text-error; }
    TraceTable > .trace-table--ok { color: $text-success; }
    TraceTable > .trace-table--dim { color: $text-muted; }
    TraceTable > .trace-table--marked { color: $text-accent; text-style: bold; }
    TraceTable > .trace-table--empty { color: $text-muted; text-style: italic; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="list.open"),
        Binding("space", "toggle_mark", "Mark", show=False, id="list.mark"),
    ]

    class Opened(Message):
        """Enter / double click on a trace row."""

        def __init__(self, info: TraceInfo) -> None:
            self.info = info
            super().__init__()

    class MarksChanged(Message):
        """The user marked or unmarked a trace (space)."""

    class Moved(Message):
        """The cursor moved to another trace (posted only on user moves)."""

        def __init__(self, info: TraceInfo | None) -> None:
            self.info = info
            super().__init__()

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TraceTable.Moved)

    def __init__(self, buffer: TraceBuffer | None = None, *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.buffer = buffer if buffer is not None else TraceBuffer()
        self.marked: set[str] = set()
        self.new_above = 0  # rows that arrived above the cursor since it left the top
        self.empty_text = "waiting for traces…"
        self._cache: LRUCache[tuple[str, int, bool, bool], Strip] = LRUCache(512)
        self._styles: dict[str, Style] | None = None
        self._columns: tuple[int, list[Column]] | None = None
        self.strips_rendered = 0  # for the benchmark: rows rendered so far

    # ------------------------------------------------------------------ data

    @property
    def row_count(self) -> int:
        return len(self.buffer.rows)

    @property
    def current(self) -> TraceInfo | None:
        rows = self.buffer.rows
        return rows[self.cursor] if rows and 0 <= self.cursor < len(rows) else None

    def on_mount(self) -> None:
        self.update_virtual_size()

    @property
    def following(self) -> bool:
        """At the top of the list: new rows take the cursor (as ``less +F``, htop, k9s)."""
        return self.cursor == 0 and int(self.scroll_offset.y) == 0

    def merge(self, infos: list[TraceInfo]) -> int:
        """Merge a batch. At the top the cursor follows the first row (the newest);
        elsewhere it stays on its trace, on the same screen line, and ``new_above`` counts
        the rows that arrived above it. Repaints only when what is on screen changed (one
        repaint per batch). Returns the number of rows added."""
        follow = self.following
        current = None if follow else self.current
        top, visible = self._on_screen()
        result = self.buffer.merge(infos)
        if not (result.added or result.updated or result.evicted):
            return 0
        old_cursor = self.cursor
        self._after_rows_changed(current, top, visible)
        if not follow and current is not None:
            self.new_above += max(0, self.cursor - old_cursor)
        return result.added

    def replace(self, info: TraceInfo) -> None:
        """A known trace changed (e.g. new feedback): repaint its row."""
        current = self.current
        top, visible = self._on_screen()
        if self.buffer.replace(info):
            self._cache.clear()
            self._after_rows_changed(current, top, visible, force=True)

    def reset(self, infos: list[TraceInfo] | None = None) -> None:
        """Drop everything (new filter / experiment) and show ``infos``."""
        self.buffer.clear()
        self.marked.clear()
        self._cache.clear()
        if infos:
            self.buffer.merge(infos)
        self.new_above = 0
        self.set_cursor_silently(0)
        self.update_virtual_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def set_sort(self, sort: str) -> None:
        """Re-sort and show the top of the new order (the header marks the column)."""
        self.buffer.set_sort(sort)
        self._cache.clear()
        self._columns = None
        self.new_above = 0
        self.set_cursor_silently(0)
        self.update_virtual_size()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def _on_screen(self) -> tuple[int, list[TraceInfo]]:
        top = int(self.scroll_offset.y)
        return top, self.buffer.rows[top:top + self.page_rows]

    def _after_rows_changed(self, current: TraceInfo | None, top: int,
                            visible: list[TraceInfo], force: bool = False) -> None:
        old_cursor = self.cursor
        self.update_virtual_size()
        if current is not None:
            index = self.buffer.index_of(current.trace_id, self.cursor)
            self.set_cursor_silently(index if index is not None else self.cursor)
        else:
            self.set_cursor_silently(self.cursor)
        self.marked &= self.buffer.by_id.keys()
        new_top = top
        if current is not None and top <= old_cursor < top + self.page_rows:
            # the selected row keeps its screen line: Enter opens what the user sees
            new_top = max(0, self.cursor - (old_cursor - top))
        elif top > 0 and visible:
            # keep the same rows in view (no jump while reading further down)
            found = self.buffer.index_of(visible[0].trace_id, top)
            if found is not None:
                new_top = found
        rows = self.buffer.rows
        unchanged = (not force and bool(visible)
                     and rows[new_top:new_top + len(visible)] == visible
                     and self.cursor - new_top == old_cursor - top
                     and len(visible) == min(self.page_rows, len(rows) - new_top))
        if unchanged:
            if new_top != top:
                # same rows on screen, only their indices moved: shift the scroll offset
                # without the full repaint a scroll would cause (bytes over SSH)
                self.set_reactive(LineList.scroll_y, float(new_top))
                self.set_reactive(LineList.scroll_target_y, float(new_top))
                if self.show_vertical_scrollbar:
                    # the thumb moves a cell every (rows / height) rows: repaint only then
                    track = max(1, self.scrollable_content_region.height)
                    total = max(1, self.virtual_size.height)
                    if int(new_top * track / total) != int(top * track / total):
                        self.vertical_scrollbar.position = new_top
            return
        if new_top != top:
            self.scroll_to(y=new_top, animate=False, immediate=True)
        self.refresh()

    # ------------------------------------------------------------------ actions

    def action_open(self) -> None:
        info = self.current
        if info is not None:
            self.post_message(self.Opened(info))

    def row_activated(self, index: int) -> None:
        self.action_open()

    def action_toggle_mark(self) -> None:
        info = self.current
        if info is None:
            return
        self.marked.symmetric_difference_update({info.trace_id})
        self.refresh_row(self.cursor)
        self.cursor += 1
        self.post_message(self.MarksChanged())

    def cursor_changed(self, old: int, new: int) -> None:
        if new == 0:
            self.new_above = 0
        self.post_message(self.Moved(self.current))

    def go_to(self, trace_id: str) -> bool:
        index = self.buffer.index_of(trace_id, self.cursor)
        if index is None:
            return False
        self.cursor = index
        return True

    # ------------------------------------------------------------------ rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._cache.clear()

    def _get_styles(self) -> dict[str, Style]:
        if self._styles is None:
            base = self.rich_style
            def part(name: str) -> Style:
                return self.get_component_rich_style(f"trace-table--{name}", partial=True)
            cursor = base + self.get_component_rich_style("trace-table--cursor")
            styles = {"base": base, "cursor": cursor,
                      "header": base + self.get_component_rich_style("trace-table--header")}
            for name in ("error", "ok", "dim", "marked", "empty"):
                styles[name] = base + part(name)
                styles[f"cursor-{name}"] = cursor + part(name) + Style(
                    bgcolor=cursor.bgcolor)
            self._styles = styles
        return self._styles

    def columns(self, width: int) -> list[Column]:
        if self._columns is None or self._columns[0] != width:
            self._columns = (width, layout_columns(width))
        return self._columns[1]

    def render_header(self, width: int) -> Strip:
        styles = self._get_styles()
        sorted_by = SORT_COLUMNS.get(self.buffer.sort)
        text = " ".join(fit(c.label + "↓" if c.key == sorted_by else c.label, c.width,
                            c.align) for c in self.columns(width))
        return self.strip([(text, styles["header"])], width, styles["header"])

    def render_line(self, y: int) -> Strip:
        if y == 1 and not self.buffer.rows:
            width = self.scrollable_content_region.width
            styles = self._get_styles()
            return self.strip([(" " + self.empty_text, styles["empty"])], width, styles["base"])
        return super().render_line(y)

    def render_row(self, index: int, width: int, is_cursor: bool) -> Strip:
        info = self.buffer.rows[index]
        marked = info.trace_id in self.marked
        key = (info.trace_id, width, is_cursor, marked)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        self.strips_rendered += 1
        styles = self._get_styles()
        prefix = "cursor-" if is_cursor else ""
        plain = styles["cursor" if is_cursor else "base"]
        parts: list[tuple[str, Style]] = []
        for col in self.columns(width):
            style = plain
            if col.key == "mark":
                text = "•" if marked else " "
                style = styles[prefix + "marked"]
            elif col.key == "time":
                text = fmt_time(info.request_time_ms, with_date=col.width >= 14)
                style = styles[prefix + "dim"]
            elif col.key == "status":
                if info.state == "ERROR":
                    text, style = "ERR", styles[prefix + "error"]
                elif info.state == "OK":
                    text, style = "ok", styles[prefix + "ok"]
                else:
                    text, style = "run", styles[prefix + "dim"]
            elif col.key == "name":
                text = info.name or info.request_preview or "(unnamed)"
                if info.state == "ERROR":
                    style = styles[prefix + "error"]
            elif col.key == "duration":
                text = fmt_duration(info.duration_ms)
            elif col.key == "tokens":
                text = fmt_tokens(info.tokens)
            elif col.key == "cost":
                text = fmt_cost(info.cost_usd)
            elif col.key == "who":
                session, user = info.session, info.user
                text = f"{session}/{user}" if session or user else ""
                style = styles[prefix + "dim"]
            elif col.key == "assess":
                text = list_badges(info.tags, info.assessments)
            else:
                text = ""
            # the gap takes the column's style so it merges into one segment with it
            parts.append((fit(text, col.width, col.align) + " ", style))
        strip = self.strip(parts, width, plain)
        self._cache[key] = strip
        return strip
