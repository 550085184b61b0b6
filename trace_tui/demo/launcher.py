"""What `trace-tui demo` adds for the judge loop: the fake judge endpoint and the demo policy."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from trace_tui.server.lifeline import child_env

DEMO_POLICY = Path(__file__).resolve().parent.parent / "demo" / "policy.toml"
DEMO_JUDGE_PORT = 5099  # the demo policy's judges point here


def judge_is_up(port: int = DEMO_JUDGE_PORT) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_fake_judge(log_path: Path, port: int = DEMO_JUDGE_PORT,
                     latency_s: float = 0.2) -> subprocess.Popen[bytes] | None:
    """Start the fake judge on 127.0.0.1:port unless one already answers there."""
    if judge_is_up(port):
        return None
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
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
