"""What `sample` shows a person: a readable dry-run table (on a terminal and piped) and
progress on a terminal instead of silence."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_evaluation import judge_url as judge_url  # the fixture, shared
from tests.test_evaluation import seed_known_population, write_policy
from trace_tui.evaluation.plan_table import cell, render_table, render_totals

RAW_FLOAT = re.compile(r"(?<![$\d.])\d+\.\d{3,}|\d[eE][+-]\d")  # 0.428571, 6.854e+05


def run_on_pty(args: list[str], uri: str, *, pty_streams: str) -> tuple[str, str, int]:
    """Run trace-tui with stdout and/or stderr on a pseudo-terminal; (stdout, stderr, rc)."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TERM": "xterm", "COLUMNS": "200"}
    out = slave if "stdout" in pty_streams else subprocess.PIPE
    err = slave if "stderr" in pty_streams else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-m", "trace_tui", *args], stdin=subprocess.DEVNULL,
                            stdout=out, stderr=err, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    piped_out = proc.stdout.read().decode() if proc.stdout else ""
    piped_err = proc.stderr.read().decode() if proc.stderr else ""
    rc = proc.wait(timeout=30)
    tty = seen.decode(errors="replace").replace("\r\n", "\n")
    return (tty if out == slave else piped_out), (tty if err == slave else piped_err), rc


def test_cells_are_percent_counts_and_dollars() -> None:
    assert cell(0.428571, "percent") == "42.9%"
    assert cell(685_400.4, "count") == "685,400"
    assert cell(12.3456, "usd") == "$12.35"
    assert cell(float("nan"), "count") == cell(None, "usd") == "-"
    table = render_table([{"rule": "r", "stratum": "a\x1b[31m", "population": 7,
                           "population_per_window": 3.5, "rate": 1 / 7,
                           "inclusion_probability": 1 / 7, "expected_sample": 1.0,
                           "expected_sample_per_window": 0.5, "expected_judge_tokens": 6.854e5,
                           "expected_cost_usd": 0.5, "basis": "history"}])
    assert "14.3%" in table and "685,400" in table and "$0.500" in table
    assert "\x1b" not in table and not RAW_FLOAT.search(table)
    totals = render_totals({"strata": 1, "windows": 2, "population": 7, "expected_sample": 1.0,
                            "budget_per_window": {"max_traces": 100, "max_tokens": None,
                                                  "max_usd": 5.0}}, 3600)
    assert "over 2 windows of 1h" in totals
    assert "budget per window: 100 traces, - tokens, $5.00" in totals
    assert "{" not in totals and "None" not in totals


@pytest.fixture(scope="module")
def seeded_policy(mlflow_uri: str, tmp_path_factory) -> Path:
    from trace_tui.demo.traffic import ensure_experiment

    exp = ensure_experiment(mlflow_uri, f"sample-output-{os.getpid()}")
    seed_known_population(mlflow_uri, exp, 120, seed=121)
    path = tmp_path_factory.mktemp("sample-output") / "policy.toml"
    write_policy(path, exp, "http://127.0.0.1:9/v1", rate=0.3)
    return path


def test_dry_run_table_reads_the_same_piped_and_on_a_terminal(mlflow_uri: str,
                                                               seeded_policy: Path) -> None:
    args = ["sample", "--policy", str(seeded_policy), "--dry-run"]
    piped = subprocess.run([sys.executable, "-m", "trace_tui", *args], capture_output=True,
                           text=True, timeout=180, stdin=subprocess.DEVNULL,
                           env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    assert piped.returncode == 0, piped.stderr
    on_tty, _, rc = run_on_pty(args, mlflow_uri, pty_streams="stdout")
    assert rc == 0
    for text in (piped.stdout, on_tty):
        lines = text.strip().splitlines()
        assert lines[0].split()[:4] == ["rule", "stratum", "traces", "per"]
        assert len([ln for ln in lines if ln.startswith("by-route ")]) == 4  # four routes
        assert re.search(r"\b\d{1,3}\.\d%", text) and "$" in text
        assert not RAW_FLOAT.search(text), text
        assert "{" not in text and "None" not in text and "NaN" not in text
        assert "120 traces in 4 strata" in text
        assert "budget per window: 10,000 traces, - tokens, -" in text
    assert piped.stdout.strip() == on_tty.strip()


def test_sample_shows_progress_on_a_terminal(mlflow_uri: str, seeded_policy: Path) -> None:
    out, err, rc = run_on_pty(["sample", "--policy", str(seeded_policy)], mlflow_uri,
                              pty_streams="stderr")
    assert rc == 0, err
    stats = json.loads(out)  # stdout stays one JSON document
    assert stats["decided"] == 120 and stats["queued"] > 0
    assert "searching finished traces" in err
    assert f"queueing selected traces: {stats['queued']}/{stats['queued']}" in err


def test_eval_shows_a_progress_bar_on_a_terminal(mlflow_uri: str, judge_url: str,
                                                 tmp_path: Path) -> None:
    """`eval` on a terminal: a bar with counts, rate and ETA on stderr; stdout stays JSON."""
    from trace_tui.demo.traffic import ensure_experiment

    exp = ensure_experiment(mlflow_uri, f"eval-bar-{os.getpid()}")
    seed_known_population(mlflow_uri, exp, 40, seed=105)
    policy = tmp_path / "policy.toml"
    write_policy(policy, exp, judge_url, rate=0.5)
    out, err, rc = run_on_pty(["sample", "--policy", str(policy)], mlflow_uri,
                              pty_streams="stderr")
    queued = json.loads(out)["queued"]
    assert rc == 0 and queued > 0, err
    out, err, rc = run_on_pty(["eval", "--policy", str(policy)], mlflow_uri,
                              pty_streams="stderr")
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["summary"]["done"] == queued
    assert "judging" in err and f"{queued}/{queued}" in err and "traces/s" in err
    assert f"done {queued}  failed 0" in err
