"""Reading policy TOML against its schema: one-line `PolicyError`s naming file:line and key.

Every key's type, default, limits and doc are declared once, as msgspec Structs (see
samplers/schema.py and samplers/rules/); :func:`decode` validates a table with msgspec and
turns msgspec's error into the same one-line message a hand-written check would give, from
the failing key's declaration and its value: ``policy.toml:12: budget.burst: expected a
number >= 0 and <= 1, got 2``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import msgspec
import msgspec.inspect as mi

T = TypeVar("T")


class PolicyError(ValueError):
    """A policy file problem; the message is one line: `<file>[:line]: <key>: <what>`.

    ``path`` is the key the problem is about (``policy[2].rate``), "" for the whole file.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def doc(description: str, /, **extra: Any) -> msgspec.Meta:
    """A key's doc (rendered into docs/policy.md) and its error wording.

    ``expected`` replaces the phrase after "expected" in type errors; ``message`` replaces
    the whole message; ``missing`` is the message when a required key is absent.
    """
    return msgspec.Meta(description=description, extra=extra or None)


class Ctx:
    """Error context: file name and a best-effort key -> line locator."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = text.splitlines()

    def fail(self, path: str, message: str) -> PolicyError:
        line = self._locate(path)
        where = f"{self.source}:{line}" if line else self.source
        return PolicyError(f"{where}: {path}: {message}" if path else f"{where}: {message}", path)

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


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def decode(ctx: Ctx, path: str, raw: Any, type_: type[T]) -> T:
    """``raw`` (a TOML value at ``path``) validated into ``type_``, or a one-line PolicyError."""
    try:
        value = msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        where, message = explain(raw, type_, str(exc))
        raise ctx.fail(_join_all(path, where), message) from None
    bad = _non_finite(value, mi.type_info(type_), [])
    if bad is not None:
        where, v = bad
        raise ctx.fail(_join_all(path, where), f"expected a number, got {v!r}")
    return value


def _join_all(path: str, parts: list[str | int]) -> str:
    for part in parts:
        path = join(path, part)
    return path


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<at>.*)`)?$", re.S)
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def explain(raw: Any, type_: Any, text: str) -> tuple[list[str | int], str]:
    """(key path, message) for a msgspec ValidationError's text."""
    m = _AT.match(text)
    assert m is not None
    msg = m.group("msg")
    parts: list[str | int] = [
        name if name else int(idx) for name, idx in _PART.findall(m.group("at") or "")
    ]
    node = parent = _Node(mi.type_info(type_), raw)
    try:
        for part in parts:
            parent, node = node, node.child(part)
    except (AssertionError, StopIteration):  # a shape this reader does not know: msgspec's words
        return parts, msg[:1].lower() + msg[1:]
    if unknown := re.match(r"Object contains unknown field `(.+)`", msg):
        key = unknown.group(1)
        allowed, hint = node.keys(), node.unknown_hint(key)
        return [*parts, key], f"{hint}; expected one of {', '.join(allowed)}"
    if missing := re.match(r"Object missing required field `(.+)`", msg):
        key = missing.group(1)
        child = node.child(key)
        return [*parts, key], child.extra.get("missing") or child.describe()
    if parts and isinstance(parts[-1], int) and not node.extra:
        return parts[:-1], parent.describe()  # a bad item: name the list, as the docs do
    return parts, node.describe()


class _Node:
    """A declared type at a key path, with the raw value found there (None if absent)."""

    def __init__(
        self, t: mi.Type, value: Any, extra: dict[str, Any] | None = None, tags: Any = None
    ) -> None:
        self.extra = dict(extra or {})
        while True:  # unwrap Annotated metadata and Optional
            if isinstance(t, mi.Metadata):
                self.extra = {**(t.extra or {}), **self.extra}
                t = t.type
            elif isinstance(t, mi.UnionType) and any(isinstance(u, mi.NoneType) for u in t.types):
                rest = [u for u in t.types if not isinstance(u, mi.NoneType)]
                if len(rest) != 1:
                    break
                t = rest[0]
            else:
                break
        self.type = t
        self.value = value
        self.tags = tags  # for a tag field: the allowed tags
        self.choices: tuple[Any, ...] = ()  # a Literal's values in declared order

    def _struct(self) -> mi.StructType | None:
        t = self.type
        if isinstance(t, mi.StructType):
            return t
        if isinstance(t, mi.UnionType):  # a tagged union: pick the member by the raw tag
            members = [u for u in t.types if isinstance(u, mi.StructType)]
            tag = self.value.get(members[0].tag_field) if isinstance(self.value, dict) else None
            return next((u for u in members if u.tag == tag), members[0])
        return None

    def child(self, part: str | int) -> _Node:
        if isinstance(part, int):
            t = self.type
            if isinstance(t, mi.UnionType):  # e.g. `str | list[str]`: the list member
                t = next(u for u in t.types if isinstance(u, mi.ListType))
            assert isinstance(t, mi.ListType)
            items = self.value if isinstance(self.value, list) else []
            return _Node(t.item_type, items[part] if part < len(items) else None)
        struct = self._struct()
        assert struct is not None
        value = self.value.get(part) if isinstance(self.value, dict) else None
        if part == struct.tag_field:
            assert isinstance(self.type, mi.UnionType)
            tags = [str(u.tag) for u in self.type.types if isinstance(u, mi.StructType)]
            return _Node(mi.AnyType(), value, {"expected": f"one of {', '.join(tags)}"}, tags)
        field = next(f for f in struct.fields if f.encode_name == part)
        node = _Node(field.type, value)
        node.choices = literal_choices(struct.cls, field.name)
        return node

    def keys(self) -> list[str]:
        """The declared keys, base classes' first (msgspec puts required fields first)."""
        struct = self._struct()
        assert struct is not None
        declared = [f.encode_name for f in struct.fields]
        order = [
            name for klass in reversed(struct.cls.__mro__)
            for name in getattr(klass, "__annotations__", {}) if name in declared
        ]  # fmt: skip
        names = list(dict.fromkeys(order + declared))
        if struct.tag_field:
            names.insert(1, struct.tag_field)
        return names

    def unknown_hint(self, key: str) -> str:
        struct = self._struct()
        hint: Callable[[str], str] | None = getattr(struct and struct.cls, "unknown_key_hint", None)
        return hint(key) if hint is not None else "unknown key"

    def describe(self) -> str:
        """The message for a value that does not fit this declaration."""
        v, t, extra = self.value, self.type, self.extra
        if "message" in extra:
            return str(extra["message"])
        if "expected" in extra:
            return f"expected {extra['expected']}, got {v!r}"
        if isinstance(t, mi.LiteralType):
            return f"expected one of {', '.join(map(str, self.choices or t.values))}, got {v!r}"
        if isinstance(t, mi.StrType):
            return f"expected a string, got {v!r}"
        if isinstance(t, mi.BoolType):
            return f"expected true or false, got {v!r}"
        if isinstance(t, mi.IntType | mi.FloatType):
            noun = "an integer" if isinstance(t, mi.IntType) else "a number"
            ok = int if isinstance(t, mi.IntType) else (int, float)
            if isinstance(v, bool) or not isinstance(v, ok) or not math.isfinite(v):
                return f"expected {noun}, got {v!r}"
            return f"expected {noun} {limits(t)}, got {v!r}"
        if isinstance(t, mi.StructType | mi.DictType):
            return f"expected a table, got {v!r}"
        if isinstance(t, mi.ListType):
            return f"expected a list, got {v!r}"
        return f"expected {type_name(t)}, got {v!r}"


def literal_choices(cls: type, name: str) -> tuple[Any, ...]:
    """The values of a field's Literal type in declared order (msgspec.inspect sorts them)."""
    hint = get_type_hints(cls, include_extras=True).get(name)
    found: list[Any] = []

    def walk(t: Any) -> None:
        if get_origin(t) is Literal:
            found.extend(get_args(t))
        else:
            for arg in get_args(t):
                walk(arg)

    walk(hint)
    return tuple(dict.fromkeys(found))


def limits(t: mi.IntType | mi.FloatType) -> str:
    """'>= 0 and <= 1' for a declared numeric range ('' if unbounded)."""
    parts = []
    if t.gt is not None:
        parts.append(f"> {t.gt:g}")
    if t.ge is not None:
        parts.append(f">= {t.ge:g}")
    if t.lt is not None:
        parts.append(f"< {t.lt:g}")
    if t.le is not None:
        parts.append(f"<= {t.le:g}")
    return " and ".join(parts)


def type_name(t: mi.Type) -> str:
    """A reader's name for a declared type (errors and docs)."""
    if isinstance(t, mi.Metadata):
        return type_name(t.type)
    if isinstance(t, mi.UnionType):
        names = [type_name(u) for u in t.types if not isinstance(u, mi.NoneType)]
        if "number" in names and "integer" in names:
            names.remove("integer")
        return " or ".join(dict.fromkeys(names))
    return {
        mi.StrType: "string", mi.IntType: "integer", mi.FloatType: "number",
        mi.BoolType: "boolean", mi.LiteralType: "string", mi.ListType: "list",
        mi.DictType: "table", mi.StructType: "table",
    }.get(type(t), "value")  # fmt: skip


def _non_finite(
    value: Any, t: mi.Type, parts: list[str | int]
) -> tuple[list[str | int], Any] | None:
    """The path and value of the first NaN or infinity in a declared float, if any."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        rest = [u for u in t.types if not isinstance(u, mi.NoneType)]
        if value is None:
            return None
        if len(rest) == 1:  # Optional[...]
            return _non_finite(value, rest[0], parts)
        for u in rest:
            if isinstance(u, mi.StructType) and isinstance(value, u.cls):
                return _non_finite(value, u, parts)
        return None
    if isinstance(t, mi.FloatType):
        return (parts, value) if isinstance(value, float) and not math.isfinite(value) else None
    if isinstance(t, mi.StructType):
        for f in t.fields:
            found = _non_finite(getattr(value, f.name), f.type, [*parts, f.encode_name])
            if found:
                return found
    if isinstance(t, mi.ListType) and isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_finite(item, t.item_type, [*parts, i])
            if found:
                return found
    return None
