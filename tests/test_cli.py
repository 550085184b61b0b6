"""The headless commands as a user runs them: a real process, a real server."""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import subprocess
import sys
import threading
import time
from typing import IO, Any

import pytest

from tests.conftest import Seeded
from trace_tui.core.client import run_with_client
from trace_tui.demo.traffic import seed_bulk
from trace_tui.server.embedded import EmbeddedServer


def run(*args: str, uri: str | None = None, timeout: float = 60,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if uri:
        full_env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.run([sys.executable, "-m", "trace_tui", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


class LineReader:
    """Lines of a child's pipe, read by a thread, so a wait can time out instead of hang."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def next(self, timeout_s: float) -> str:
        try:
            return self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout_s} s") from None


def test_help_teaches() -> None:
    out = run("--help")
    assert out.returncode == 0
    for needle in ("MLFLOW_TRACKING_URI", "trace-tui demo", "ssh -t", "traces tail",
                   "TRACE_TUI_READ_TIMEOUT_S", "within 12 s"):
        assert needle in out.stdout


def test_start_path_does_not_import_mlflow_or_textual() -> None:
    code = "import sys, trace_tui.cli; print('mlflow' in sys.modules, 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]


def test_traces_list_json_and_table(seeded: Seeded) -> None:
    out = run("traces", "list", "-x", seeded.experiment_name, "--limit", "5", "--format",
              "json", uri=seeded.uri)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 5 and rows[0]["trace_id"].startswith("tr-")
    assert {"name", "status", "duration_ms", "tokens", "cost_usd"} <= set(rows[0])
    table = run("traces", "list", "-x", seeded.experiment_id, "-n", "3",
                "-f", "trace.status = 'ERROR'", uri=seeded.uri)
    assert table.returncode == 0 and table.stdout.count(" ERROR ") == 3


def test_traces_show_json_matches_the_documented_shape(seeded: Seeded) -> None:
    trace_id = seeded.trace_ids[0]
    out = run("traces", "show", trace_id, "--format", "json", uri=seeded.uri)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["trace_id"] == trace_id
    assert {"name", "status", "duration_ms", "tokens", "spans"} <= set(doc)
    assert set(doc["tokens"]) == {"input", "output", "total"}
    spans = doc["spans"]
    assert spans[0]["depth"] == 0 and spans[0]["parent_id"] is None
    for span in spans:
        assert {"span_id", "parent_id", "name", "type", "status", "depth", "start_offset_ms",
                "duration_ms", "tokens", "tokens_total"} <= set(span)
    assert spans[0]["tokens_total"] == doc["tokens"] == doc["tokens_stored"]
    tree = run("traces", "show", trace_id, uri=seeded.uri)
    assert tree.returncode == 0 and spans[1]["name"] in tree.stdout and "█" in tree.stdout


@pytest.mark.parametrize(("args", "code", "needle"), [
    (("traces", "list", "-f", "trace.status == 'OK'"), 1, "Invalid comparator '=='"),
    (("traces", "show", "tr-" + "cd" * 16), 1, "not found"),
    (("traces", "list", "-x", "nope-experiment"), 1, "no experiment named"),
])
def test_errors_are_one_line_with_exit_codes(seeded: Seeded, args: tuple[str, ...], code: int,
                                             needle: str) -> None:
    out = run(*args, uri=seeded.uri)
    assert out.returncode == code
    assert needle in out.stderr and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_unreachable_server_exits_3() -> None:
    out = run("traces", "list", "--tracking-uri", "http://127.0.0.1:9")
    assert out.returncode == 3 and "unreachable" in out.stderr


def test_explorer_without_a_tty_says_what_to_do() -> None:
    out = run("--tracking-uri", "http://127.0.0.1:9")
    assert out.returncode == 2 and "ssh -t" in out.stderr


def test_tail_prints_new_traces_as_json_lines(mlflow_uri: str,
                                              fresh_experiment: tuple[str, str]) -> None:
    name, exp = fresh_experiment
    seed_bulk(mlflow_uri, exp, 5, seed=21)  # existing: not printed
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "traces", "tail", "-x", name, "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = LineReader(proc.stdout), LineReader(proc.stderr)
        assert "tailing experiment" in err.next(30)
        new = seed_bulk(mlflow_uri, exp, 4, seed=22, start_ms=int(time.time() * 1000))
        lines = [json.loads(out.next(30)) for _ in new]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert [row["trace_id"] for row in lines] == new
    assert all({"name", "status", "duration_ms", "tokens"} <= set(r) for r in lines)


@pytest.mark.slow
def test_embedded_server_starts_and_stops_without_leftovers(tmp_path) -> None:
    server = EmbeddedServer(tmp_path / "data")
    uri = server.start()
    pgid = server.process.pid if server.process else -1
    assert server.healthy() and uri.startswith("http://127.0.0.1:")
    server.stop()
    assert not server.healthy()
    left = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    assert left.stdout.strip() == ""
    assert (tmp_path / "data" / "mlflow.db").exists()


def test_connection_flags_work_before_and_after_the_command(seeded: Seeded) -> None:
    """One parent parser for --tracking-uri/-x: given before the command name, the command's
    own parser must not reset it."""
    before = run("--tracking-uri", seeded.uri, "-x", seeded.experiment_name,
                 "traces", "list", "-n", "2", "--format", "json")
    after = run("traces", "list", "--tracking-uri", seeded.uri, "-x", seeded.experiment_name,
                "-n", "2", "--format", "json")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert len(json.loads(before.stdout)) == len(json.loads(after.stdout)) == 2


@pytest.mark.parametrize("argv", [
    [], ["--tracking-uri", "http://127.0.0.1:5000", "-x", "demo"], ["--experiment", "traces"],
    ["-x", "1", "-f", "trace.status = 'OK'", "--no-mouse", "--theme", "nord", "-p", "p.toml"],
    ["--exp", "e"], ["demo", "--rate", "2"], ["traces", "list", "-n", "3"],
    ["--tracking-uri", "http://127.0.0.1:5000", "traces", "list"],
])
def test_the_explorers_quick_parse_gives_what_the_full_parser_gives(argv: list[str]) -> None:
    """The explorer's flags are parsed without building every command's parser (first paint);
    the result is the full parser's, an option's value that names a command included."""
    from trace_tui import cli

    assert vars(cli.parse_args(argv)) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["bogus"], ["--tracking-uri", "ftp://x"], ["-n", "3"],
                                  ["--experiment"], ["-h"], ["--version"]])
def test_errors_and_help_come_from_the_full_parser(argv: list[str]) -> None:
    code = "import sys; from trace_tui import cli; cli.{}(sys.argv[1:])"
    quick, full = (subprocess.run([sys.executable, "-c", code.format(fn), *argv],
                                  capture_output=True, text=True, timeout=60)
                   for fn in ("parse_args", "build_parser().parse_args"))
    assert (quick.returncode, quick.stdout, quick.stderr) == (
        full.returncode, full.stdout, full.stderr)
    assert quick.stdout or quick.stderr


def assess(uri: str, trace_id: str, span_id: str) -> None:
    """A passing judge verdict on the trace and a failing human one on a span, with a
    rationale that tries to break the terminal."""
    async def go(client: Any) -> int:
        await client.create_assessment(trace_id, "relevance", "yes", source_type="LLM_JUDGE",
                                       source_id="judge-1", rationale="on topic\n\x1b[2Jok")
        await client.create_assessment(trace_id, "correct", False, span_id=span_id,
                                       source_id="alice")
        return 0

    run_with_client(uri, go)


def test_traces_show_includes_assessments(mlflow_uri: str,
                                          fresh_experiment: tuple[str, str]) -> None:
    _, exp = fresh_experiment
    trace_id, = seed_bulk(mlflow_uri, exp, 1, seed=31)
    doc = json.loads(run("traces", "show", trace_id, "--format", "json", uri=mlflow_uri).stdout)
    assert doc["assessments"] == []
    span = doc["spans"][1]
    assess(mlflow_uri, trace_id, span["span_id"])
    doc = json.loads(run("traces", "show", trace_id, "--format", "json", uri=mlflow_uri).stdout)
    by_name = {a["assessment_name"]: a for a in doc["assessments"]}
    assert by_name["relevance"]["value"] == "yes"
    assert by_name["relevance"]["source"] == {"source_type": "LLM_JUDGE", "source_id": "judge-1"}
    assert by_name["correct"]["value"] is False
    assert by_name["correct"]["span_id"] == span["span_id"]
    text = run("traces", "show", trace_id, uri=mlflow_uri).stdout
    assert "assessments (2)" in text
    assert "✓ relevance: yes  (llm_judge judge-1)" in text
    assert f"✗ correct: 👎 no  (human alice, on span {span['name']})" in text
    assert "    on topic \\x1b[2Jok" in text and "\x1b" not in text


def test_tail_prints_readable_lines_on_a_terminal(mlflow_uri: str,
                                                  fresh_experiment: tuple[str, str]) -> None:
    name, exp = fresh_experiment
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "traces", "tail", "-x", name, "--interval", "0.2"],
        stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    os.close(slave)
    try:
        assert proc.stderr is not None
        assert "tailing experiment" in LineReader(proc.stderr).next(30)
        new, = seed_bulk(mlflow_uri, exp, 1, seed=32, start_ms=int(time.time() * 1000))
        seen = b""
        deadline = time.monotonic() + 30
        while new.encode() not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                seen += os.read(master, 65536)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)
    text = seen.decode()
    assert new in text, text
    line = next(ln for ln in text.splitlines() if new in ln)
    assert "trace_id" in text and "feedback" in text  # the header
    assert not line.lstrip().startswith("{") and (" OK " in line or " ERROR " in line)
