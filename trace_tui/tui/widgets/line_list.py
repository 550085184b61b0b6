"""A cursor list on Textual's line API: only visible rows are rendered, and a cursor move
repaints just the old and the new row (``reactive(repaint=False)`` + a region refresh)."""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from trace_tui.core.text import safe_text

RowT = TypeVar("RowT")


def fit(text: str, width: int, align: str = "left") -> str:
    """``text`` made safe (control and bidi characters escaped: every cell of the line-API
    lists is built here) and cropped or padded to exactly ``width`` cells."""
    if width <= 0:
        return ""
    text = safe_text(text)
    length = cell_len(text)
    if length == width:
        return text
    if length > width:
        if width == 1:
            return "…"
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - length)
    return pad + text if align == "right" else text + pad


class LineList(ScrollView, can_focus=True):
    """Base for row lists with an optional fixed header line and a row cursor.

    Subclasses implement ``row_count``, ``render_row`` and optionally ``render_header``.
    """

    HEADER_LINES = 0
    scroll_jump = True  # half-page jumps instead of one-line scrolls (see below)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g,home", "cursor_top", "Top", show=False, id="list.top"),
        Binding("G,end", "cursor_bottom", "Bottom", show=False, id="list.bottom"),
        Binding("ctrl+d", "half_page_down", "½ page down", show=False, id="list.half_down"),
        Binding("ctrl+u", "half_page_up", "½ page up", show=False, id="list.half_up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="list.page_up"),
    ]

    DEFAULT_CSS = """
    LineList { overflow-x: hidden; }
    """

    cursor: reactive[int] = reactive(0, repaint=False, init=False, always_update=False)

    # ------------------------------------------------------------------ to implement

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def render_row(self, index: int, width: int, is_cursor: bool) -> Strip:
        raise NotImplementedError

    def render_header(self, width: int) -> Strip:
        return Strip.blank(width, self.rich_style)

    def cursor_changed(self, old: int, new: int) -> None:
        """Hook after the cursor moved (the two rows are already refreshed)."""

    # ------------------------------------------------------------------ sizes

    @property
    def page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - self.HEADER_LINES)

    def update_virtual_size(self) -> None:
        self.virtual_size = Size(0, self.row_count + self.HEADER_LINES)

    # ------------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y < self.HEADER_LINES:
            return self.render_header(width)
        index = int(self.scroll_offset.y) + y - self.HEADER_LINES
        if index < 0 or index >= self.row_count:
            return Strip.blank(width, self.rich_style)
        return self.render_row(index, width, index == self.cursor and self.row_count > 0)

    def row_screen_y(self, index: int) -> int | None:
        """The widget line showing row ``index``, or None when it is scrolled out."""
        y = index - int(self.scroll_offset.y) + self.HEADER_LINES
        height = self.scrollable_content_region.height
        if self.HEADER_LINES <= y < height:
            return y
        return None

    def refresh_row(self, index: int) -> None:
        """Repaint one row (only if it is on screen)."""
        y = self.row_screen_y(index)
        if y is not None:
            self.refresh(Region(0, y, self.size.width, 1))

    @staticmethod
    def strip(parts: list[tuple[str, Style]], width: int, base: Style) -> Strip:
        """A row strip from ``(text, style)`` parts, padded to ``width`` cells."""
        # merge neighbours with the same style: fewer escape sequences on the wire
        merged: list[list] = []
        used = 0
        for text, style in parts:
            if not text:
                continue
            used += cell_len(text)
            if merged and merged[-1][1] == style:
                merged[-1][0] += text
            else:
                merged.append([text, style])
        if used < width:
            if merged and merged[-1][1] == base:
                merged[-1][0] += " " * (width - used)
            else:
                merged.append([" " * (width - used), base])
        segments = [Segment(text, style) for text, style in merged]
        strip = Strip(segments, max(width, used))
        return strip.crop(0, width) if used > width else strip

    # ------------------------------------------------------------------ cursor

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, self.row_count - 1)) if self.row_count else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_row(old)
        self.refresh_row(new)
        self.scroll_cursor_into_view()
        self.cursor_changed(old, new)

    def scroll_cursor_into_view(self) -> None:
        """Scroll when the cursor leaves the page. With ``scroll_jump`` the page jumps so the
        cursor lands mid-page: a scroll repaints every row, so doing it once per half page
        instead of on every step keeps bytes per keypress low over SSH."""
        top = int(self.scroll_offset.y)
        rows = self.page_rows
        if top <= self.cursor < top + rows:
            return
        if self.scroll_jump:
            y = self.cursor - rows // 2
        elif self.cursor < top:
            y = self.cursor
        else:
            y = self.cursor - rows + 1
        self.scroll_to(y=max(0, y), animate=False, immediate=True)

    def set_cursor_silently(self, value: int) -> None:
        """Move the cursor without the move side effects (used when rows shift under it)."""
        self.set_reactive(LineList.cursor, self.validate_cursor(value))

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_top(self) -> None:
        self.cursor = 0

    def action_cursor_bottom(self) -> None:
        self.cursor = max(0, self.row_count - 1)

    def action_half_page_down(self) -> None:
        self.cursor += max(1, self.page_rows // 2)

    def action_half_page_up(self) -> None:
        self.cursor -= max(1, self.page_rows // 2)

    def action_page_down(self) -> None:
        self.cursor += self.page_rows

    def action_page_up(self) -> None:
        self.cursor -= self.page_rows

    # ------------------------------------------------------------------ mouse

    def row_at(self, y: int) -> int | None:
        index = int(self.scroll_offset.y) + y - self.HEADER_LINES
        if y < self.HEADER_LINES or index >= self.row_count:
            return None
        return index

    def on_click(self, event: events.Click) -> None:
        index = self.row_at(event.y)
        if index is None:
            return
        self.cursor = index
        if event.chain >= 2:
            self.row_activated(index)

    def row_activated(self, index: int) -> None:
        """Double click (and Enter in subclasses)."""


class ColumnList(LineList, Generic[RowT]):
    """A ``LineList`` of fixed columns over a plain list of rows: ``COLUMNS`` is
    ``(label, width, align)`` with width 0 for the one column that takes the rest; subclasses
    give ``cells(index)``."""

    COLUMNS: ClassVar[tuple[tuple[str, int, str], ...]] = ()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[RowT] = []

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def set_rows(self, rows: list[RowT]) -> None:
        self.rows = rows
        self.set_cursor_silently(0)
        self.update_virtual_size()
        self.refresh()

    def _widths(self, width: int) -> list[int]:
        fixed = sum(w + 1 for _, w, _ in self.COLUMNS if w)
        return [w or max(12, width - fixed - 1) for _, w, _ in self.COLUMNS]

    def render_header(self, width: int) -> Strip:
        style = self.rich_style + Style(bold=True, reverse=True)
        text = " ".join(fit(label, w, align) for (label, _, align), w
                        in zip(self.COLUMNS, self._widths(width), strict=True))
        return self.strip([(text, style)], width, style)

    def cells(self, index: int) -> list[str]:
        raise NotImplementedError

    def row_text(self, index: int, width: int = 120) -> str:
        return " ".join(fit(cell, w, align) for cell, (_, _, align), w
                        in zip(self.cells(index), self.COLUMNS, self._widths(width),
                               strict=True))
