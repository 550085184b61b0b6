"""The embedded MLflow server: ``mlflow server`` on 127.0.0.1, a free port, SQLite under the
user data dir (or a given database, e.g. PostgreSQL), lean flags, stopped with its whole
process group."""

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
# MLflow's SQL store dialects (``postgresql+psycopg2://`` etc. name a driver after the +).
STORE_SCHEMES = ("postgresql", "mysql", "mssql", "sqlite")


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


def redact_uri(uri: str) -> str:
    """``uri`` with its password (if any) replaced by ``***``, for messages. Never raises,
    whatever the input (urlsplit does on e.g. a stray ``[``)."""
    scheme, sep, rest = uri.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return uri
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostport}{slash}{path}"


def check_backend_store_uri(uri: str) -> str:
    """A database URI MLflow's SQL store accepts, e.g. ``postgresql://mlflow@db:5432/mlflow``."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme not in STORE_SCHEMES:
        raise ConfigError(f"--backend-store-uri {redact_uri(uri)!r}: expected a database URI "
                          "such as postgresql://USER@HOST:5432/DB (schemes: "
                          f"{', '.join(STORE_SCHEMES)})")
    return uri


def with_sql_driver(uri: str) -> str:
    """A bare ``postgresql://`` URI names psycopg2 (our dependency): SQLAlchemy 2.1 would
    otherwise pick psycopg 3, which is not installed. An explicit ``+driver`` is kept."""
    if uri.lower().startswith("postgresql://"):
        return "postgresql+psycopg2://" + uri[len("postgresql://"):]
    return uri


class EmbeddedServer:
    """Start/stop one ``mlflow server`` process group. Use as a context manager."""

    def __init__(self, data_dir: Path, *, port: int | None = None, workers: int = 1,
                 backend_store_uri: str | None = None, start_timeout_s: float = 120.0) -> None:
        self.data_dir = Path(data_dir)  # SQLite file (unless backend_store_uri), artifacts, log
        self.port = port or free_port()
        self.workers = workers
        self.backend_store_uri = backend_store_uri
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def store_label(self) -> str:
        """Where the server keeps its data, password redacted."""
        if self.backend_store_uri is None:
            return str(self.data_dir)
        return f"{redact_uri(self.backend_store_uri)}, artifacts in {self.data_dir}"

    def command(self) -> list[str]:
        # A given database URI travels in the environment (MLFLOW_BACKEND_STORE_URI, see env())
        # so that its password does not show in `ps`.
        store = [] if self.backend_store_uri is not None else [
            "--backend-store-uri", f"sqlite:///{self.data_dir / 'mlflow.db'}"]
        return [
            sys.executable, "-m", "mlflow", "server", *store,
            "--artifacts-destination", str(self.data_dir / "artifacts"),
            "--host", HOST, "--port", str(self.port),
            "--workers", str(self.workers),
        ]

    def env(self) -> dict[str, str]:
        env = lean_env()
        env.pop("MLFLOW_BACKEND_STORE_URI", None)
        if self.backend_store_uri is not None:
            env["MLFLOW_BACKEND_STORE_URI"] = with_sql_driver(self.backend_store_uri)
        return env

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
                    stdin=subprocess.DEVNULL, env=self.env(), cwd=self.data_dir,
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
