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

from trace_tui.core.errors import TraceTuiError

HOST = "127.0.0.1"


class ServerStartError(TraceTuiError):
    """The embedded server did not come up; the message carries its log's last lines."""


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
        """Start and wait for ``/health``; returns the tracking URI."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=lean_env(), cwd=self.data_dir, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(self._failure("exited with code "
                                                     f"{self.process.returncode}"))
            if self.healthy():
                return self.uri
            time.sleep(0.2)
        self.stop()
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
        tail = self.tail_log(12)
        return f"mlflow server {what}; log {self.log_path}:\n{tail}"

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
