"""Helper processes that must not outlive the trace-tui process that started them."""

from __future__ import annotations

import os
import signal
import threading
import time

ENV = "TRACE_TUI_PARENT_PID"


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus this process's pid, for a child that should exit with it."""
    return {**env, ENV: str(os.getpid())}


def exit_with_parent(poll_s: float = 1.0) -> None:
    """If started by trace-tui (``TRACE_TUI_PARENT_PID`` set), SIGTERM ourselves once that
    parent is gone, even if it was killed before it could stop us."""
    raw = os.environ.get(ENV)
    if not raw:
        return
    parent = int(raw)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            except PermissionError:
                pass

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
