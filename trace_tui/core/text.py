"""Make external text (trace, span, tag, attribute and judge text, server error messages) safe
to show on a terminal. Pure Python: no textual, no I/O.

Trace data is attacker-influenced (judge rationales are model output): written raw, an ESC
sequence can retitle the terminal, clear the screen or write the clipboard (OSC 52), and a
bidi override can make text read differently from what it is. ``safe_text`` replaces every
C0/C1 control character and every bidi control with a visible escape (``\\x1b``, ``\\u202e``),
so the text is shown, never obeyed. JSON output is not passed through here: it stays exact.
"""

from __future__ import annotations

import re
from functools import cache

# C0 controls, DEL, C1 controls; bidi embeddings/overrides (202A-202E), isolates (2066-2069),
# the LRM/RLM/ALM marks (200E, 200F, 061C); and the line/paragraph separators (2028/2029),
# which some terminals and widgets treat as line breaks.
_BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"


@cache
def _unsafe(multiline: bool) -> re.Pattern[str]:
    """Compiled on first use (the bidi ranges make it ~1 ms, before the first frame)."""
    if multiline:  # keeps \t \n
        return re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
    return re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, *, multiline: bool = False) -> str:
    """``text`` (``str()`` of it) with control and bidi characters replaced by visible
    escapes. With ``multiline`` newlines and tabs stay (detail panes, pagers); otherwise they
    are escaped too, so one value stays on one line (list rows, headers, toasts)."""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():  # the common case, in C: every character replaced is unprintable
        return value
    pattern = _unsafe(multiline)
    if pattern.search(value) is None:  # e.g. a no-break space, or a newline when multiline
        return value
    return pattern.sub(_escape, value)


def is_safe(text: str, *, multiline: bool = False) -> bool:
    """True when ``text`` holds nothing that ``safe_text`` would replace."""
    return text.isprintable() or _unsafe(multiline).search(text) is None
