"""Which MLflow server to talk to: ``--tracking-uri`` > ``MLFLOW_TRACKING_URI`` > the embedded
server (reusing one another trace-tui process already runs, else starting our own)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trace_tui.config import paths
from trace_tui.core.errors import ConfigError
from trace_tui.core.uri import check_tracking_uri

if TYPE_CHECKING:  # urllib.request, subprocess: only when an embedded server is looked for
    from trace_tui.server.embedded import EmbeddedServer


def state_file() -> Path:
    return paths.data_dir() / "server.json"


@dataclass
class Connection:
    """A tracking URI, plus the embedded server we started (stopped by ``close``)."""

    uri: str
    source: str  # "flag" | "env" | "embedded" | "embedded (shared)"
    server: EmbeddedServer | None = None

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            forget(self.server)
            self.server = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_uri(uri: str, where: str = "") -> str:
    """The URI (no trailing slash), or a one-line ConfigError (password redacted)."""
    try:
        return check_tracking_uri(uri)
    except ValueError as exc:
        raise ConfigError(f"{where}{exc}") from None


def connect(flag_uri: str | None, *, announce: bool = True) -> Connection:
    """Resolve the tracking URI; start the embedded server when none is configured."""
    if flag_uri:
        return Connection(check_uri(flag_uri), "flag")
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if env_uri:
        return Connection(check_uri(env_uri, "$MLFLOW_TRACKING_URI: "), "env")
    shared = running_embedded()
    if shared:
        return Connection(shared, "embedded (shared)")
    from trace_tui.server.embedded import EmbeddedServer

    server = EmbeddedServer(paths.data_dir())
    if announce:
        print(f"trace-tui: starting the embedded MLflow server ({server.data_dir}) ...",
              file=sys.stderr, flush=True)
    server.start()
    try:
        remember(server)
    except BaseException:
        server.stop()
        raise
    return Connection(server.uri, "embedded", server)


def running_embedded() -> str | None:
    """The URI of an embedded server another trace-tui process left running, if healthy."""
    try:
        state = json.loads(state_file().read_text())
        uri, pid = str(state["uri"]), int(state["pid"])
        os.kill(pid, 0)
        port = int(uri.rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    from trace_tui.server.embedded import EmbeddedServer

    probe = EmbeddedServer(paths.data_dir(), port=port)
    return uri if probe.healthy() else None


def remember(server: EmbeddedServer) -> None:
    """Write server.json (0600) so other trace-tui processes share this server."""
    if server.process is not None:
        paths.write_private(state_file(),
                            json.dumps({"uri": server.uri, "pid": server.process.pid}))


def forget(server: EmbeddedServer) -> None:
    try:
        state = json.loads(state_file().read_text())
        if state.get("uri") == server.uri:
            state_file().unlink()
    except (OSError, ValueError):
        pass
