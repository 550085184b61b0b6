"""What `trace-tui demo` adds for the judge loop: the fake judge endpoint and the demo policy."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from trace_tui.config.paths import open_private
from trace_tui.core.errors import TraceTuiError
from trace_tui.server.embedded import port_is_free
from trace_tui.server.lifeline import child_env

DEMO_POLICY = Path(__file__).resolve().parent.parent / "demo" / "policy.toml"
DEMO_JUDGE_PORT = 5099  # the demo policy's judges point here


def judge_is_up(port: int = DEMO_JUDGE_PORT) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def check_judge_port(port: int = DEMO_JUDGE_PORT) -> None:
    """Refuse, in one line, when the demo judge's port is taken: the demo policy's judges
    point there, so a second demo would judge against the first one's fake judge and lose it
    when the first demo quits."""
    if not port_is_free(port):
        who = "another `trace-tui demo` runs its fake judge there" if judge_is_up(port) \
            else "another program listens there"
        raise TraceTuiError(f"port {port} on 127.0.0.1 is in use ({who}); the demo's judges "
                            "need it: quit the other demo (or program) first")


def start_fake_judge(log_path: Path, port: int = DEMO_JUDGE_PORT,
                     latency_s: float = 0.2) -> subprocess.Popen[bytes]:
    """Start the fake judge on 127.0.0.1:port (its log 0600)."""
    log = open_private(log_path)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "trace_tui.demo.fake_judge", "--port", str(port),
             "--latency", str(latency_s)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=child_env(dict(os.environ)))
    finally:
        log.close()


def demo_hint(uri: str) -> str:
    """How to run the judge loop against the demo, from another terminal."""
    policy = os.path.relpath(DEMO_POLICY) if DEMO_POLICY.is_relative_to(Path.cwd()) \
        else str(DEMO_POLICY)
    return (f"judge loop: MLFLOW_TRACKING_URI={uri} trace-tui sample --policy {policy}; "
            f"then eval, then report (same flags)")
