"""A bounded on-disk cache of finished traces' spans (they never change once a trace is OK or
ERROR). Trace info, tags and assessments are never cached: callers always read them fresh.

One file per (server, trace id) under the user cache dir, named by a hash of both. Format 2
(written): ``MAGIC`` + a JSON header line (format, the model's ``TREE_RULES``, server, trace
id) + zlib-compressed msgpack (``Body``): the spans as the server gave them (an inner blob,
decoded only when asked for), and when the tree is known, per span its decoded fields
(``Row``: hex ids, name, times, status, own and subtree usage and cost, events), its
attributes, and the tree's depth-first walk; so a re-open builds the tree without a JSON
parse, a span decode, linking or roll-up. msgpack (msgspec, typed decoders) holds data
only: a file cannot run code. Format 1 (``MAGIC_V1``, zlib-compressed ``{"spans": [...]}``
JSON) is still read; the client rewrites it as format 2 once decoded, as it does a file
whose tree was built under other ``TREE_RULES``.

Files are written 0600 (dir 0700) through a temp file and ``rename``, so a concurrent
reader never sees half a file. The total size is bounded: the least recently used files
(by mtime, bumped on every hit) go first. A corrupt or foreign file is deleted with a
one-line warning and reads as a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

try:
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = json.loads  # type: ignore[assignment]

from trace_tui.core.model import (
    TREE_RULES,
    ZERO_TOKENS,
    Span,
    SpanEvent,
    TokenUsage,
    TraceInfo,
    TraceTree,
    build_tree,
    decode_span,
    tree_from_walk,
)

MAGIC_V1 = b"trace-tui spans v1\n"
MAGIC = b"trace-tui spans v2\n"
FORMAT = 2
DEFAULT_MAX_MB = 512
CACHE_DIR_ENV = "TRACE_TUI_CACHE_DIR"
MAX_MB_ENV = "TRACE_TUI_SPAN_CACHE_MB"  # the same name Settings.span_cache_mb reads
DIR_MODE = 0o700
FILE_MODE = 0o600
SUFFIX = ".spans"
STALE_TMP_S = 3600.0  # a temp file this old belongs to a writer that died

log = logging.getLogger("trace_tui.span_cache")


class Row(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One span of the tree, decoded: what ``decode_span`` and the roll-up worked out from
    the raw span at the same position in the file's span list (its attributes, the bulk,
    are kept once, in ``Body.attrs``)."""

    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    tokens: tuple[int, int, int] | None
    cost: float | None
    tokens_total: tuple[int, int, int]  # the subtree's, as the tree rolled it up
    cost_total: float
    events: list[tuple[str, int, dict[str, Any]]]


class Body(msgspec.Struct, array_like=True):
    # The spans as the server gave them (msgpack, decoded only when asked for: a re-open
    # needs the rows only); with rows, each span's "attributes" value is in ``attrs``.
    spans: msgspec.Raw
    rows: list[Row] | None = None  # None: decode ``spans`` (written without a tree)
    walk: list[tuple[int, int]] | None = None  # the tree, depth first: (row, depth)
    attrs: list[Any] | None = None  # per row, its span's "attributes"


_encode = msgspec.msgpack.Encoder().encode
_decode_body = msgspec.msgpack.Decoder(Body).decode
_decode_spans = msgspec.msgpack.Decoder(list[Any]).decode


@dataclass(slots=True)
class Cached:
    """A cache hit: the raw spans (None when not asked for and not needed), and the
    decoded rows, tree walk and attributes when the file has them (and was written under
    the same ``TREE_RULES``)."""

    spans: list[Any] | None
    rows: list[Row] | None
    format: int
    walk: list[tuple[int, int]] | None = None
    attrs: list[Any] | None = None


@dataclass(slots=True)
class TreeRows:
    """What a file keeps of a decoded tree besides the raw spans (``rows_of``)."""

    spans: list[Any]  # the raw spans, each "attributes" value moved to ``attrs``
    rows: list[Row]
    walk: list[tuple[int, int]]
    attrs: list[Any]


def _usage(tokens: TokenUsage) -> tuple[int, int, int]:
    return (tokens.input, tokens.output, tokens.total)


def rows_of(spans: list[Any], tree: TraceTree) -> TreeRows | None:
    """Rows, walk and attributes for ``tree`` decoded (``decode_trace``) from exactly
    ``spans``; None when the spans do not map one to one onto the tree's (duplicate ids):
    the file then keeps the raw spans only."""
    if len(tree.spans) != len(spans):
        return None
    rows = []
    attrs = []
    stripped = []
    position = {}
    for i, (raw, span) in enumerate(zip(spans, tree.spans.values(), strict=True)):
        # tree.spans is in first-seen order: the raw order
        tokens = span.tokens
        cost = span.cost_usd
        position[id(span)] = i
        rows.append(Row(span.span_id, span.parent_id, span.name, span.start_ns, span.end_ns,
                        span.status, span.status_message,
                        None if tokens is None else _usage(tokens),
                        None if cost is None else float(cost),
                        _usage(span.tokens_total), float(span.cost_total),
                        [(e.name, e.time_ns, e.attributes) for e in span.events]))
        if type(raw) is dict and "attributes" in raw:
            attrs.append(raw["attributes"])
            raw = {**raw, "attributes": None}  # same key order; put back on read
        else:
            attrs.append(None)
        stripped.append(raw)
    walk = [(position[id(span)], span.depth) for span in tree.walk()]
    return TreeRows(stripped, rows, walk, attrs)


def tree_of(cached: Cached, info: TraceInfo) -> TraceTree:
    """The tree ``build_tree`` gives for the cached spans (TraceDecodeError as it would
    raise): from the rows and walk without decoding, linking or rolling up when the file
    has them."""
    rows, walk, attrs = cached.rows, cached.walk, cached.attrs
    if rows is None or walk is None or attrs is None:
        ids: dict[Any, str] = {}
        return build_tree(info, [decode_span(raw, ids) for raw in cached.spans or ()])
    spans = []
    for row, attr in zip(rows, attrs, strict=True):
        native = isinstance(attr, dict)
        if not native and not isinstance(attr, list):
            attr = {}
        tokens, total = row.tokens, row.tokens_total
        span = Span(row.span_id, row.parent_id, row.name, row.start_ns, row.end_ns,
                    row.status, row.status_message, attr,
                    [SpanEvent(*e) for e in row.events] if row.events else [],
                    native_json=native, tokens=None if tokens is None else TokenUsage(*tokens),
                    cost=row.cost)
        span.tokens_total = ZERO_TOKENS if total == (0, 0, 0) else TokenUsage(*total)
        span.cost_total = row.cost_total
        spans.append(span)
    return tree_from_walk(info, spans, walk)


def _valid_walk(walk: list[tuple[int, int]], n: int) -> bool:
    """Every row once, depths a depth-first walk gives: linking it cannot loop."""
    if len(walk) != n:
        return False
    seen = bytearray(n)
    previous = -1
    for pos, depth in walk:
        if not 0 <= pos < n or seen[pos] or not 0 <= depth <= previous + 1:
            return False
        seen[pos] = 1
        previous = depth
    return True


def default_dir() -> Path:
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override) if override else (
        Path(platformdirs.user_cache_dir("trace-tui")) / "spans")


def max_bytes_from_env(default_mb: int = DEFAULT_MAX_MB) -> int:
    """The size bound from ``TRACE_TUI_SPAN_CACHE_MB`` (0 disables); a bad value is ignored
    with a warning here (Settings reports it as a config error at startup)."""
    raw = os.environ.get(MAX_MB_ENV)
    if raw is None:
        return default_mb * 1024 * 1024
    try:
        mb = float(raw)
        if mb < 0 or mb != mb:
            raise ValueError(raw)
    except ValueError:
        log.warning("%s=%r is not a size in MB; using %d", MAX_MB_ENV, raw, default_mb)
        mb = default_mb
    return int(mb * 1024 * 1024)


class SpanCache:
    """Spans of finished traces on disk, keyed by server URL (no user info) + trace id."""

    def __init__(self, root: Path, max_bytes: int,
                 warn: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.warn = warn or log.warning
        self._size: int | None = None  # this process's running estimate of the total
        self._lock = threading.Lock()
        self.hits = 0
        self._write_warned = False
        self.misses = 0

    @classmethod
    def default(cls, max_bytes: int | None = None) -> SpanCache | None:
        """The user's cache (None when its size bound is 0)."""
        limit = max_bytes_from_env() if max_bytes is None else max_bytes
        return cls(default_dir(), limit) if limit > 0 else None

    def path(self, server: str, trace_id: str) -> Path:
        digest = hashlib.sha256(f"{server}\n{trace_id}".encode()).hexdigest()[:40]
        return self.root / f"{digest}{SUFFIX}"

    # ------------------------------------------------------------------ read

    def has(self, server: str, trace_id: str) -> bool:
        return self.path(server, trace_id).is_file()

    def get_bytes(self, server: str, trace_id: str) -> bytes | None:
        """The cached spans as ``{"spans": [...]}`` JSON bytes, or None (miss, bad file)."""
        cached = self.get(server, trace_id)
        return None if cached is None or cached.spans is None else spans_body(cached.spans)

    def get(self, server: str, trace_id: str, *, spans: bool = True) -> Cached | None:
        """The cached spans (and rows), or None (miss, or a bad file dropped). With
        ``spans=False`` the raw spans are left undecoded when the rows are there."""
        path = self.path(server, trace_id)
        try:
            blob = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            self.misses += 1
            return None
        except OSError as exc:
            self.warn(f"span cache: cannot read {path} ({exc.strerror or exc}); fetching")
            self.misses += 1
            return None
        body = self._unwrap(blob, server, trace_id, spans)
        if body is None:
            self.drop(path)
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # LRU: a hit makes the file recent
        self.hits += 1
        return body

    def drop(self, path: Path) -> None:
        """Delete a corrupt or foreign file, with the one-line warning."""
        self.warn(f"span cache: discarded corrupt or foreign file {path}")
        with contextlib.suppress(OSError):
            path.unlink()

    @staticmethod
    def _unwrap(blob: bytes, server: str, trace_id: str, want_spans: bool) -> Cached | None:
        version = 2 if blob.startswith(MAGIC) else 1 if blob.startswith(MAGIC_V1) else 0
        if not version:
            return None
        start = len(MAGIC) if version == 2 else len(MAGIC_V1)
        end = blob.find(b"\n", start)
        if end < 0:
            return None
        try:
            header = json.loads(blob[start:end])
            if (not isinstance(header, dict) or header.get("server") != server
                    or header.get("trace_id") != trace_id
                    or (version == 2 and header.get("format") != FORMAT)):
                return None
            raw = zlib.decompress(blob[end + 1:])
            if version == 2:
                return _unpack(_decode_body(raw), header.get("tree") == TREE_RULES,
                               want_spans)
            data = json_loads(raw) if raw[:1] == b"{" else None  # format 1: JSON
        except (ValueError, zlib.error, msgspec.DecodeError, RecursionError):
            return None
        spans = data.get("spans") if isinstance(data, dict) else None
        return Cached(spans, None, 1) if isinstance(spans, list) else None

    # ------------------------------------------------------------------ write

    def put_bytes(self, server: str, trace_id: str, body: bytes) -> None:
        """Store spans given as ``{"spans": [...]}`` JSON bytes (not stored if not that)."""
        try:
            data = json_loads(body)
        except ValueError:
            return
        spans = data.get("spans") if isinstance(data, dict) else None
        if isinstance(spans, list):
            self.put(server, trace_id, spans)

    def put(self, server: str, trace_id: str, spans: list[Any],
            tree: TreeRows | None = None) -> None:
        """Store a trace's spans as the server gave them, with their decoded rows and tree
        walk (``rows_of``) when known; an unwritable cache only warns."""
        header = json.dumps({"format": FORMAT, "tree": TREE_RULES, "server": server,
                             "trace_id": trace_id}).encode()
        try:
            if tree is None:
                packed = _encode(Body(msgspec.Raw(_encode(spans))))
            else:
                packed = _encode(Body(msgspec.Raw(_encode(tree.spans)), tree.rows, tree.walk,
                                      tree.attrs))
        except (TypeError, ValueError, OverflowError):  # not JSON-like data: not cached
            return
        blob = MAGIC + header + b"\n" + zlib.compress(packed, 1)
        del packed
        if len(blob) > self.max_bytes:
            return
        path = self.path(server, trace_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            old = path.stat().st_size if path.exists() else 0
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not self._write_warned:  # once: a read-only cache would warn on every trace
                self._write_warned = True
                self.warn(f"span cache: cannot write {path} ({exc.strerror or exc})")
            return
        with self._lock:
            if self._size is None:
                self._size = self._scan_total()
            else:
                self._size += len(blob) - old
            if self._size > self.max_bytes:
                self._size = self._evict(keep=path)

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        try:
            it = os.scandir(self.root)
        except OSError:
            return []
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.name.endswith(".tmp"):
                    if st.st_mtime < time.time() - STALE_TMP_S:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                    continue
                if entry.name.endswith(SUFFIX):
                    out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def _scan_total(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _evict(self, keep: Path) -> int:
        """Delete least recently used files until the total fits; the new total."""
        entries = sorted(self._entries(), key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
        return total

    def total_bytes(self) -> int:
        return self._scan_total()


def _unpack(body: Body, same_rules: bool, want_spans: bool) -> Cached | None:
    """A format-2 body checked (None: a bad file); the raw spans decoded when wanted or
    needed, with their attributes put back."""
    rows, walk, attrs = body.rows, body.walk, body.attrs
    if rows is not None and (attrs is None or len(attrs) != len(rows)):
        return None
    if walk is not None and (rows is None or not _valid_walk(walk, len(rows))):
        return None
    if not same_rules:  # built by other model rules: decode the spans again
        walk = None
    spans = None
    if want_spans or rows is None or walk is None:
        spans = _decode_spans(body.spans)
        if rows is not None and attrs is not None:
            if len(spans) != len(rows):
                return None
            for raw, attr in zip(spans, attrs, strict=True):
                if type(raw) is dict and "attributes" in raw:
                    raw["attributes"] = attr
    if walk is None:
        rows = attrs = None
    return Cached(spans, rows, 2, walk, attrs)


def spans_body(spans: list[Any]) -> bytes:
    """``{"spans": [...]}`` JSON bytes for spans from batchGet or traces/get."""
    try:
        from orjson import dumps
    except ImportError:  # pragma: no cover
        return json.dumps({"spans": spans}, separators=(",", ":")).encode()
    return dumps({"spans": spans})
