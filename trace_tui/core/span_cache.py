"""A bounded on-disk cache of finished traces' spans (they never change once a trace is OK or
ERROR). Trace info, tags and assessments are never cached: callers always read them fresh.

One file per (server, trace id) under the user cache dir, named by a hash of both; content
is ``MAGIC`` + a JSON header line (server, trace id) + zlib-compressed ``{"spans": [...]}``
JSON. Files are written 0600 (dir 0700) through a temp file and ``rename``, so a concurrent
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
from pathlib import Path
from typing import Any

import platformdirs

MAGIC = b"trace-tui spans v1\n"
DEFAULT_MAX_MB = 512
CACHE_DIR_ENV = "TRACE_TUI_CACHE_DIR"
MAX_MB_ENV = "TRACE_TUI_SPAN_CACHE_MB"  # the same name Settings.span_cache_mb reads
DIR_MODE = 0o700
FILE_MODE = 0o600
SUFFIX = ".spans"
STALE_TMP_S = 3600.0  # a temp file this old belongs to a writer that died

log = logging.getLogger("trace_tui.span_cache")


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
        """The cached ``{"spans": [...]}`` JSON bytes, or None (miss, or a bad file dropped)."""
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
        body = self._unwrap(blob, server, trace_id)
        if body is None:
            self.warn(f"span cache: discarded corrupt or foreign file {path}")
            with contextlib.suppress(OSError):
                path.unlink()
            self.misses += 1
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # LRU: a hit makes the file recent
        self.hits += 1
        return body

    @staticmethod
    def _unwrap(blob: bytes, server: str, trace_id: str) -> bytes | None:
        if not blob.startswith(MAGIC):
            return None
        end = blob.find(b"\n", len(MAGIC))
        if end < 0:
            return None
        try:
            header = json.loads(blob[len(MAGIC):end])
            if (not isinstance(header, dict) or header.get("server") != server
                    or header.get("trace_id") != trace_id):
                return None
            body = zlib.decompress(blob[end + 1:])
        except (ValueError, zlib.error):
            return None
        return body if body[:1] == b"{" else None

    # ------------------------------------------------------------------ write

    def put_bytes(self, server: str, trace_id: str, body: bytes) -> None:
        """Store ``{"spans": [...]}`` JSON bytes; an unwritable cache only warns."""
        header = json.dumps({"server": server, "trace_id": trace_id}).encode()
        blob = MAGIC + header + b"\n" + zlib.compress(body, 1)
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


def spans_body(spans: list[Any]) -> bytes:
    """``{"spans": [...]}`` JSON bytes for spans from batchGet or traces/get."""
    try:
        from orjson import dumps
    except ImportError:  # pragma: no cover
        return json.dumps({"spans": spans}, separators=(",", ":")).encode()
    return dumps({"spans": spans})
