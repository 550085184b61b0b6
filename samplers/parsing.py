"""Reading policy TOML: one-line `PolicyError`s naming the file, line and key path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any


class PolicyError(ValueError):
    """A policy file problem; the message is one line: `<file>[:line]: <key>: <what>`."""



class Ctx:
    """Error context: file name and a best-effort key -> line locator."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()

    def fail(self, path: str, message: str) -> PolicyError:
        line = self._locate(path)
        where = f"{self.source}:{line}" if line else self.source
        return PolicyError(f"{where}: {path}: {message}" if path else f"{where}: {message}")

    def _locate(self, path: str) -> int | None:
        m = re.match(r"^(?P<table>[A-Za-z_]+)(?:\[(?P<idx>\d+)\])?(?:\.(?P<key>[A-Za-z_]+))?", path)
        if not m:
            return None
        table, idx, key = m.group("table"), m.group("idx"), m.group("key")
        start = None
        if idx is not None:
            header = re.compile(rf"^\s*\[\[\s*{table}\s*\]\]")
            seen = -1
            for i, text in enumerate(self.lines):
                if header.match(text):
                    seen += 1
                    if seen == int(idx):
                        start = i
                        break
        elif key is not None:
            header = re.compile(rf"^\s*\[\s*{table}\s*\]")
            start = next((i for i, t in enumerate(self.lines) if header.match(t)), None)
            if start is None:
                return self._key_line(table, 0, top_level=True)
        else:
            return self._key_line(table, 0, top_level=True)
        if start is None:
            return None
        if key is None:
            return start + 1
        return self._key_line(key, start + 1) or start + 1

    def _key_line(self, key: str, start: int, top_level: bool = False) -> int | None:
        pat = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start, len(self.lines)):
            text = self.lines[i]
            if re.match(r"^\s*\[", text):
                if top_level:
                    return None
                if i > start:
                    return None
            if pat.match(text):
                return i + 1
        return None


def check_keys(ctx: Ctx, path: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            sub = f"{path}.{key}" if path else key
            raise ctx.fail(sub, f"unknown key; expected one of {', '.join(allowed)}")


def table_of(ctx: Ctx, path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected a table, got {value!r}")
    return value


def get_value(
    ctx: Ctx,
    table: Mapping[str, Any],
    path: str,
    key: str,
    kind: str,
    default: Any = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Typed read with one-line errors; kind in str|int|float|bool."""
    full = f"{path}.{key}" if path else key
    if key not in table:
        return default
    v = table[key]
    if kind == "str":
        if not isinstance(v, str):
            raise ctx.fail(full, f"expected a string, got {v!r}")
        if choices is not None and v not in choices:
            raise ctx.fail(full, f"expected one of {', '.join(choices)}, got {v!r}")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise ctx.fail(full, f"expected true or false, got {v!r}")
        return v
    if kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise ctx.fail(full, f"expected an integer, got {v!r}")
    elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ctx.fail(full, f"expected a number, got {v!r}")
    too_low = lo is not None and (v <= lo if lo_open else v < lo)
    if too_low or (hi is not None and v > hi):
        parts = []
        if lo is not None:
            parts.append(f"> {lo:g}" if lo_open else f">= {lo:g}")
        if hi is not None:
            parts.append(f"<= {hi:g}")
        noun = "an integer" if kind == "int" else "a number"
        raise ctx.fail(full, f"expected {noun} {' and '.join(parts)}, got {v!r}")
    return float(v) if kind == "float" else v
