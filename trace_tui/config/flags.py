"""argparse ``type=`` validators shared by every command: a bad value exits 2 at parse time
with one line naming the flag and the value, before anything connects or starts."""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import NoReturn

from trace_tui.core.uri import check_tracking_uri

MAX_LOOKBACK_S = 10 * 365 * 86_400.0  # --since: ten years is "everything"
MIN_INTERVAL_S = 0.1  # a poll interval below this only loads the server


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``trace-tui: error: ...`` and exit 2
    (argparse's default prints the whole usage block first). Subparsers inherit it."""

    def error(self, message: str) -> NoReturn:
        hint = self.prog.split()
        where = f" (see {' '.join(hint)} --help)" if len(hint) > 1 else ""
        print(f"trace-tui: error: {message}{where}", file=sys.stderr)
        raise SystemExit(2)


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = float(_number(text, float))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = float(_number(text, float))
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def interval(text: str) -> float:
    value = float(_number(text, float))
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"expected seconds >= {MIN_INTERVAL_S:g}, got {text!r}")
    return value


def lookback_seconds(text: str) -> float:
    """Seconds back in time, 0 to ten years."""
    value = float(_number(text, float))
    if not 0 <= value <= MAX_LOOKBACK_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds between 0 and {MAX_LOOKBACK_S:.0f} (ten years), got {text!r}")
    return value


def duration(text: str) -> float:
    """``30m``, ``24h``, ``7d``, ``90`` (seconds) -> seconds, at most ten years."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30m, 24h or 7d, got {text!r}")
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
        match.group(2)]
    if seconds > MAX_LOOKBACK_S:
        raise argparse.ArgumentTypeError(f"expected at most ten years, got {text!r}")
    return seconds


def port(text: str) -> int:
    value = int(_number(text, int))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {text!r}")
    return value


def shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def tracking_uri(text: str) -> str:
    try:
        return check_tracking_uri(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def name(text: str) -> str:
    """An experiment name or id: not empty, no control characters."""
    if not text.strip() or any(ord(c) < 32 for c in text):
        raise argparse.ArgumentTypeError(f"expected a name, got {text!r}")
    return text


def connection_parent() -> Parser:
    """The flags every command that talks to MLflow takes (``parents=[...]``)."""
    parent = Parser(add_help=False)
    # SUPPRESS: a command's parser must not reset a value given before the command name
    # (`trace-tui --tracking-uri URI traces list`); the top parser sets the None defaults.
    parent.add_argument("--tracking-uri", metavar="URI", type=tracking_uri,
                        default=argparse.SUPPRESS,
                        help="MLflow server URL (default: $MLFLOW_TRACKING_URI, else embedded)")
    parent.add_argument("--experiment", "-x", metavar="NAME|ID", type=name,
                        default=argparse.SUPPRESS,
                        help="experiment name or id (default: last used / most recent)")
    return parent
