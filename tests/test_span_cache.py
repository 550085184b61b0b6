"""The on-disk span cache on its own: file modes, LRU size bound, bad files, settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from trace_tui.config.settings import Settings
from trace_tui.core.errors import ConfigError
from trace_tui.core.span_cache import SpanCache, spans_body

SERVER = "http://127.0.0.1:5000"


def body(n: int, tag: str = "x") -> bytes:
    # Random-ish text so compression cannot make every entry tiny.
    return spans_body([{"span_id": f"{i:016x}", "name": f"{tag}-{os.urandom(64).hex()}"}
                       for i in range(n)])


def make(tmp_path: Path, max_bytes: int = 1 << 30) -> tuple[SpanCache, list[str]]:
    warnings: list[str] = []
    return SpanCache(tmp_path / "spans", max_bytes, warn=warnings.append), warnings


def test_round_trip_with_private_modes(tmp_path: Path) -> None:
    cache, warnings = make(tmp_path)
    data = body(5)
    cache.put_bytes(SERVER, "tr-1", data)
    assert cache.get_bytes(SERVER, "tr-1") == data
    assert cache.get_bytes(SERVER, "tr-2") is None
    assert cache.get_bytes("http://other:5000", "tr-1") is None  # keyed by server too
    path = cache.path(SERVER, "tr-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.root.stat().st_mode) == 0o700
    assert [p.name for p in cache.root.iterdir()] == [path.name]  # no temp file left
    assert warnings == []


def test_size_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    one = len(body(20)) // 2  # compressed size is about half of random hex
    cache, _ = make(tmp_path, max_bytes=one * 4)
    for i in range(3):
        cache.put_bytes(SERVER, f"tr-{i}", body(20, str(i)))
        os.utime(cache.path(SERVER, f"tr-{i}"), (1000 + i, 1000 + i))
    assert cache.get_bytes(SERVER, "tr-0") is not None  # tr-0 becomes the most recent
    for i in range(3, 8):
        cache.put_bytes(SERVER, f"tr-{i}", body(20, str(i)))
    assert cache.total_bytes() <= cache.max_bytes
    kept = {i for i in range(8) if cache.path(SERVER, f"tr-{i}").exists()}
    assert 7 in kept and 1 not in kept and 2 not in kept
    assert len(kept) < 8


def test_a_file_bigger_than_the_bound_is_not_stored(tmp_path: Path) -> None:
    cache, _ = make(tmp_path, max_bytes=100)
    cache.put_bytes(SERVER, "tr-big", body(50))
    assert cache.get_bytes(SERVER, "tr-big") is None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "other_trace"])
def test_bad_file_is_discarded_with_one_warning(tmp_path: Path, damage: str) -> None:
    cache, warnings = make(tmp_path)
    cache.put_bytes(SERVER, "tr-1", body(5))
    cache.put_bytes(SERVER, "tr-2", body(5))
    path = cache.path(SERVER, "tr-1")
    blob = path.read_bytes()
    path.write_bytes({"garbage": b"\x00\xffnot a cache file",
                      "truncated": blob[:len(blob) // 2],
                      "foreign": b'{"spans": []}',
                      "other_trace": cache.path(SERVER, "tr-2").read_bytes()}[damage])
    assert cache.get_bytes(SERVER, "tr-1") is None
    assert len(warnings) == 1 and "discarded" in warnings[0] and str(path) in warnings[0]
    assert "\n" not in warnings[0]
    assert not path.exists()
    assert cache.get_bytes(SERVER, "tr-2") is not None


def test_unwritable_cache_only_warns(tmp_path: Path) -> None:
    (tmp_path / "spans").write_text("a file where the directory should be")
    cache, warnings = make(tmp_path)
    cache.put_bytes(SERVER, "tr-1", body(2))
    assert cache.get_bytes(SERVER, "tr-1") is None
    assert len(warnings) == 1 and "cannot write" in warnings[0]


def test_size_setting_from_env_and_zero_turns_it_off(tmp_path: Path) -> None:
    cfg = tmp_path / "none.toml"
    assert Settings.load(cfg, env={}).span_cache_mb == 512
    settings = Settings.load(cfg, env={"TRACE_TUI_SPAN_CACHE_MB": "64"})
    cache = settings.span_cache()
    assert cache is not None and cache.max_bytes == 64 * 1024 * 1024
    assert Settings.load(cfg, env={"TRACE_TUI_SPAN_CACHE_MB": "0"}).span_cache() is None
    with pytest.raises(ConfigError, match="TRACE_TUI_SPAN_CACHE_MB: span_cache_mb must be a "
                                          "non-negative int"):
        Settings.load(cfg, env={"TRACE_TUI_SPAN_CACHE_MB": "-1"})


def test_default_cache_lives_under_the_user_cache_dir(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TRACE_TUI_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRACE_TUI_SPAN_CACHE_MB", raising=False)
    cache = SpanCache.default()
    assert cache is not None and cache.root == tmp_path / "trace-tui" / "spans"
    monkeypatch.setenv("TRACE_TUI_SPAN_CACHE_MB", "0")
    assert SpanCache.default() is None
