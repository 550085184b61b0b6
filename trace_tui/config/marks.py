"""The explorer's marked traces (space), kept per server in the user data dir, so headless
commands can act on them (``trace-tui dataset add NAME --marked``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlsplit

from trace_tui.config import paths
from trace_tui.core.errors import ConfigError


def marks_file() -> Path:
    return paths.data_dir() / "marked.json"


def _server_key(tracking_uri: str) -> str:
    # keyed without user info: the same server marked under other credentials is the same
    parts = urlsplit(tracking_uri.rstrip("/"))
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return hashlib.sha256(bare.encode()).hexdigest()[:16]


def _read(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # unreadable or foreign: treated as no marks, rewritten on the next save
    return {k: [str(i) for i in v] for k, v in data.items()
            if isinstance(data, dict) and isinstance(v, list)}


def save_marks(tracking_uri: str, trace_ids: list[str], path: Path | None = None) -> None:
    """Replace this server's marks (0600 file, atomic)."""
    path = path or marks_file()
    data = _read(path)
    data[_server_key(tracking_uri)] = list(trace_ids)
    paths.write_private(path, json.dumps(data))


def load_marks(tracking_uri: str, path: Path | None = None) -> list[str]:
    """This server's marked trace ids, in list order; ConfigError when there are none."""
    ids = _read(path or marks_file()).get(_server_key(tracking_uri), [])
    if not ids:
        raise ConfigError("--marked: no marked traces for this server; mark traces with space "
                          "in the explorer first")
    return ids
