"""The explorer's boundary for external text (trace data, server and judge messages).

Two rules, applied here rather than at every call site:

- never markup: a string reaching Textual as markup (``[SQL: ...]``, ``[/]``) can raise
  ``MarkupError`` and end the app, so external text goes in as ``rich.text.Text``;
- never terminal controls: every string is passed through ``safe_text`` (control and bidi
  characters become visible escapes), including inside ``Text`` objects whose spans are
  remapped so their styles stay on the same characters.
"""

from __future__ import annotations

from rich.text import Span, Text
from textual.visual import VisualType
from textual.widgets import Label, Static

from trace_tui.core.text import is_safe, safe_text

__all__ = ["SafeLabel", "SafeStatic", "markup_literal", "safe_rich_text", "safe_text"]


def safe_rich_text(text: Text, *, multiline: bool = True) -> Text:
    """``text`` with its string made safe (styles kept on the same characters)."""
    plain = text.plain
    if is_safe(plain, multiline=multiline):
        return text
    # offsets[i] = where old character i starts in the new string
    offsets = [0] * (len(plain) + 1)
    pieces: list[str] = []
    pos = 0
    for i, ch in enumerate(plain):
        offsets[i] = pos
        piece = safe_text(ch, multiline=multiline)
        pieces.append(piece)
        pos += len(piece)
    offsets[len(plain)] = pos
    out = text.copy()
    out.plain = "".join(pieces)
    out.spans = [Span(offsets[s.start], offsets[min(s.end, len(plain))], s.style)
                 for s in text.spans]
    return out


def markup_literal(value: object) -> str:
    """External text for the few Textual APIs that only take markup (the palette's help):
    made safe, with every ``[`` escaped. ``textual.markup.escape`` is not enough: it leaves
    ``[SQL: x]`` and ``[bold [link=https://x]`` unescaped, and the latter raises."""
    return safe_text(value).replace("[", "\\[")


def _safe_visual(content: VisualType, multiline: bool) -> VisualType:
    if isinstance(content, Text):
        return safe_rich_text(content, multiline=multiline)
    if isinstance(content, str):
        return Text(safe_text(content, multiline=multiline))
    return content


class SafeStatic(Static):
    """A ``Static`` for external text: no markup, and strings/``Text`` made safe."""

    def __init__(self, content: VisualType = "", *, multiline: bool = True,
                 id: str | None = None, classes: str | None = None) -> None:
        self.multiline = multiline
        super().__init__(_safe_visual(content, multiline), id=id, classes=classes,
                         markup=False)

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        super().update(_safe_visual(content, self.multiline), layout=layout)


class SafeLabel(Label):
    """A ``Label`` for external text: no markup, and strings/``Text`` made safe."""

    def __init__(self, content: VisualType = "", *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(_safe_visual(content, True), id=id, classes=classes, markup=False)

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        super().update(_safe_visual(content, True), layout=layout)
