"""XDG locations (via platformdirs): config, data and log directories for trace-tui.

What trace-tui writes holds prompts and outputs of production traffic, so its directories are
created 0700 and its files 0600 (``private_dir``, ``write_private``, ``open_private``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

import platformdirs

from trace_tui.core.errors import ConfigError

APP_NAME = "trace-tui"
DIR_MODE = 0o700
FILE_MODE = 0o600
PROBE_BYTES = 64 * 1024  # a write this size fails on a full disk before a server starts


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Where the embedded server keeps its SQLite store and artifacts."""
    override = os.environ.get("TRACE_TUI_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def config_file() -> Path:
    override = os.environ.get("TRACE_TUI_CONFIG_FILE")
    return Path(override) if override else config_dir() / "config.toml"


def private_dir(path: Path, what: str = "data dir") -> Path:
    """``path`` as a directory, created 0700 when missing (an existing one is left as the
    user made it); ConfigError naming it when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    except FileExistsError:
        raise ConfigError(f"{what} {path} is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path} ({exc.strerror or exc})") from None
    if not path.is_dir():
        raise ConfigError(f"{what} {path} is not a directory")
    return path


def check_writable(path: Path, what: str = "data dir") -> None:
    """Write and sync a probe file in ``path``: a read-only or full disk fails here, as one
    ConfigError, before any process that needs the directory is started."""
    probe = path / f".probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"{what} {path} is not writable ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def open_private(path: Path, mode: str = "ab") -> IO[bytes]:
    """Open ``path`` for appending or writing bytes; created 0600, tightened if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, 0600, its directory created 0700."""
    private_dir(path.parent, "directory")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open_private(tmp, "wb") as fh:
            fh.write(text.encode())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write {path} ({exc.strerror or exc})") from None
