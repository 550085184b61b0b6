"""The embedded MLflow server: ``mlflow server`` on 127.0.0.1, a free port, SQLite under the
user data dir, lean flags, stopped with its whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from trace_tui.config.paths import check_writable, open_private, private_dir
from trace_tui.core.errors import ConfigError, TraceTuiError

HOST = "127.0.0.1"


class ServerStartError(TraceTuiError):
    """The embedded server did not come up; the message carries its log's last lines."""


def port_is_free(port: int, host: str = HOST) -> bool:
    """True unless a socket is bound there. SO_REUSEADDR as servers set it: a port in
    TIME_WAIT after a restart is free for a new server."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def lean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a small single-user server: no job runner, no telemetry."""
    env = dict(os.environ if base is None else base)
    env.update({
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    })
    # The child must not inherit a URI that points at itself or elsewhere.
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


class EmbeddedServer:
    """Start/stop one ``mlflow server`` process group. Use as a context manager."""

    def __init__(self, data_dir: Path, *, port: int | None = None, workers: int = 1,
                 start_timeout_s: float = 120.0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.workers = workers
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def command(self) -> list[str]:
        db = self.data_dir / "mlflow.db"
        return [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{db}",
            "--artifacts-destination", str(self.data_dir / "artifacts"),
            "--host", HOST, "--port", str(self.port),
            "--workers", str(self.workers),
        ]

    def start(self) -> str:
        """Start and wait for ``/health``; returns the tracking URI.

        The data dir is created 0700 and probed for a write first (a read-only or full disk
        is a ConfigError before any child exists); the child runs with umask 077 so its
        SQLite store and artifacts are private; on any failure the child is stopped."""
        private_dir(self.data_dir)
        check_writable(self.data_dir)
        if not port_is_free(self.port):
            raise ConfigError(f"port {self.port} on {HOST} is in use; pick another with --port "
                              "or leave it out for a free one")
        try:
            log = open_private(self.log_path)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.log_path} ({exc.strerror or exc})") from None
        try:
            with log:
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=lean_env(), cwd=self.data_dir,
                    start_new_session=True, umask=0o077)
            return self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> str:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(self._failure("exited with code "
                                                     f"{self.process.returncode}"))
            if self.healthy():
                return self.uri
            time.sleep(0.2)
        raise ServerStartError(self._failure(f"not healthy after {self.start_timeout_s:.0f} s"))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=2) as resp:
                return resp.read().strip() == b"OK"
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the whole process group (uvicorn workers too), then SIGKILL stragglers."""
        proc, self.process = self.process, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):  # children may outlive the leader
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=5)

    def _failure(self, what: str) -> str:
        """One line: what happened, the log's last meaningful line, where the log is."""
        lines = [ln.strip() for ln in self.tail_log(40).splitlines() if ln.strip()]
        last = lines[-1][:200] if lines else "(empty log)"
        return f"mlflow server {what} ({last}); see {self.log_path}"

    def tail_log(self, lines: int) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
