"""User settings: a TOML file under the XDG config dir, overridden by ``TRACE_TUI_*`` env vars.

Precedence: command-line flag > ``TRACE_TUI_<KEY>`` env var > config file > default.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trace_tui.config import paths
from trace_tui.core.errors import ConfigError

if TYPE_CHECKING:
    from trace_tui.core.span_cache import SpanCache

ZERO_ALLOWED = frozenset({"span_cache_mb"})  # int settings where 0 means "off"


@dataclass
class Settings:
    """What the explorer remembers between runs."""

    last_experiment: str = ""
    theme: str = "textual-dark"
    refresh_interval_s: float = 1.0
    buffer_size: int = 5000
    lookback_s: float = 60.0
    mouse: bool = True
    read_timeout_s: float = 10.0  # per MLflow request; see docs/reliability.md
    reviewer: str = ""  # source id of human labels; empty: the OS user
    # Bound of the on-disk cache of finished traces' spans, in MB; 0 turns it off
    # (core.span_cache reads TRACE_TUI_SPAN_CACHE_MB itself: core cannot import config).
    span_cache_mb: int = 512

    def reviewer_id(self) -> str:
        """Who human labels are from: the ``reviewer`` setting, else the OS user."""
        if self.reviewer.strip():
            return self.reviewer.strip()
        import getpass

        try:
            return getpass.getuser() or "reviewer"
        except (OSError, KeyError):
            return "reviewer"

    def span_cache(self) -> SpanCache | None:
        """The user's span cache with this size bound (None when 0)."""
        from trace_tui.core.span_cache import SpanCache  # not needed before the first frame

        return SpanCache.default(self.span_cache_mb * 1024 * 1024)

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """File values, then env overrides; a bad value raises ConfigError naming it."""
        path = path or paths.config_file()
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if path.exists():
            try:
                values = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: {exc}") from None
            except OSError as exc:
                raise ConfigError(f"{path}: {exc.strerror or exc}") from None
            except RecursionError:
                raise ConfigError(f"{path}: nested too deeply") from None
        settings = cls()
        known = {f.name: f for f in fields(cls)}
        for key, value in values.items():
            if key in known:
                setattr(settings, key, _coerce(key, value, known[key].type, str(path)))
        for key, f in known.items():
            raw = env.get(f"TRACE_TUI_{key.upper()}")
            if raw is not None:
                setattr(settings, key, _coerce(key, raw, f.type, f"TRACE_TUI_{key.upper()}"))
        return settings

    def save(self, path: Path | None = None) -> None:
        """Write the file 0600 (its directory 0700): it names the user's experiments."""
        path = path or paths.config_file()
        lines = ["# trace-tui settings (written by trace-tui; edit freely)"]
        for key, value in dataclasses.asdict(self).items():
            lines.append(f"{key} = {_toml_value(value)}")
        paths.write_private(path, "\n".join(lines) + "\n")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _coerce(key: str, value: Any, type_name: Any, where: str) -> Any:
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind == "int":
            result = int(value)
            if result < 0 or (result == 0 and key not in ZERO_ALLOWED):
                raise ValueError(value)
            return result
        if kind == "float":
            number = float(value)
            if not math.isfinite(number) or number <= 0:
                raise ValueError(value)
            return number
        return str(value)
    except (TypeError, ValueError, OverflowError):
        sign = "non-negative" if key in ZERO_ALLOWED else "positive"
        raise ConfigError(f"{where}: {key} must be a {sign} {kind}, got {value!r}") from None
