"""Secrets and files: a password in the tracking URI is never shown (errors, tail's first
line, the explorer's status line); what trace-tui writes is private (dirs 0700, files 0600);
a second demo refuses the busy judge port; names are encoded in URLs."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import Seeded
from tests.test_cli import LineReader
from trace_tui.config import paths
from trace_tui.config.settings import Settings
from trace_tui.core.uri import redact_uri
from trace_tui.demo.launcher import DEMO_JUDGE_PORT
from trace_tui.demo.traffic import ensure_experiment
from trace_tui.server.connect import remember, state_file
from trace_tui.server.embedded import EmbeddedServer

SECRET = "hunter2-pw"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("uri", "shown"), [
    ("http://bob:pw@host:5000/x?y=1", "http://***@host:5000/x?y=1"),
    ("https://token@host", "https://***@host"),
    ("http://a:b@c@host", "http://***@host"),
    ("http://bob:pw@[::1", "http://***@[::1"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("not a url", "not a url"),
])
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def _with_password(uri: str) -> str:
    return uri.replace("http://", f"http://bob:{SECRET}@")


def test_tail_first_line_hides_the_password(seeded: Seeded) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "traces", "tail", "-x", seeded.experiment_name,
         "--tracking-uri", _with_password(seeded.uri)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = LineReader(proc.stderr).next(30)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "tailing experiment" in first and "http://***@127.0.0.1:" in first
    assert SECRET not in first


def test_unreachable_error_hides_the_password() -> None:
    out = subprocess.run([sys.executable, "-m", "trace_tui", "traces", "list",
                          "--tracking-uri", f"http://bob:{SECRET}@127.0.0.1:9"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 3 and "http://***@127.0.0.1:9 is unreachable" in out.stderr
    assert SECRET not in out.stderr + out.stdout


def test_explorer_status_line_hides_the_password(seeded: Seeded) -> None:
    """The real explorer in a pseudo-terminal: the server label shows ***@, never the secret."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "--tracking-uri", _with_password(seeded.uri),
         "-x", seeded.experiment_name],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"})
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while b"***@127.0.0.1" not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
        os.write(master, b"q")
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=10)
        os.close(master)
    assert b"***@127.0.0.1" in screen, screen[-2000:]
    assert SECRET.encode() not in screen


def test_settings_file_and_dir_are_private(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "trace-tui" / "config.toml"
    Settings(last_experiment="prod-agent").save(path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    path.chmod(0o644)  # written by an older version: tightened on the next save
    Settings().save(path)
    assert mode(path) == 0o600 and Settings.load(path).last_experiment == ""


def test_private_helpers(tmp_path: Path) -> None:
    logs = paths.private_dir(tmp_path / "new" / "data")
    with paths.open_private(logs / "demo-traffic.log") as fh:
        fh.write(b"prompt and output\n")
    paths.write_private(logs / "export.json", "{}")
    assert mode(logs) == 0o700
    assert mode(logs / "demo-traffic.log") == 0o600 and mode(logs / "export.json") == 0o600


@pytest.mark.slow
def test_embedded_server_files_are_private(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TRACE_TUI_DATA_DIR", str(data))
    server = EmbeddedServer(data)
    server.start()
    try:
        remember(server)
        assert state_file() == data / "server.json"
        files = [data / "mlflow.db", data / "server.log", data / "server.json"]
        assert mode(data) == 0o700
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        server.stop()


def test_second_demo_refuses_the_busy_judge_port() -> None:
    holder = socket.socket()
    try:  # stands for the first demo's fake judge (if another process holds it, same thing)
        holder.bind(("127.0.0.1", DEMO_JUDGE_PORT))
        holder.listen(1)
    except OSError:
        pass
    try:
        out = subprocess.run([sys.executable, "-m", "trace_tui", "demo", "--tracking-uri",
                              "http://127.0.0.1:9"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60)
    finally:
        holder.close()
    assert out.returncode == 1
    assert f"port {DEMO_JUDGE_PORT} on 127.0.0.1 is in use" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_experiment_names_are_encoded_in_urls(mlflow_uri: str) -> None:
    name = "my demo & co/x?y=1#z"
    first = ensure_experiment(mlflow_uri, name)
    assert ensure_experiment(mlflow_uri, name) == first
