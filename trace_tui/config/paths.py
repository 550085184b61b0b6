"""XDG locations (via platformdirs): config, data and log directories for trace-tui."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "trace-tui"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """Where the embedded server keeps its SQLite store and artifacts."""
    override = os.environ.get("TRACE_TUI_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def config_file() -> Path:
    override = os.environ.get("TRACE_TUI_CONFIG_FILE")
    return Path(override) if override else config_dir() / "config.toml"
