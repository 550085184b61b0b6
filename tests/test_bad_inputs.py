"""No traceback for any input: a table of bad inputs across the CLI's flags, URLs, policy
files, settings, environment and servers that are not (or not quite) MLflow. For each one,
as a user runs it (a real process): the exit code, a one-line message naming the problem,
no traceback, no password echoed, done within 30 s."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes import BODIES, FakeWeb, Silent
from trace_tui.demo.launcher import DEMO_POLICY
from trace_tui.server.embedded import free_port

SECRET = "s3cret-pw"
DEADLINE_S = 30.0


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    needle: str  # a regex the error line must match (it names the culprit)
    env: dict[str, str] = field(default_factory=dict)
    needs: str = ""  # "mount" for the cases that need a tmpfs (root only)


def case(id: str, args: str | tuple[str, ...], code: int, needle: str, **kw: object) -> Case:
    argv = tuple(args.split()) if isinstance(args, str) else args
    return Case(id, argv, code, needle, **kw)  # type: ignore[arg-type]


U = "--tracking-uri"
REFUSED = "http://127.0.0.1:{refused}"
CASES: list[Case] = [
    # ---------------------------------------------------------------- flags (parse time)
    case("limit-negative", "traces list --limit -1", 2, r"--limit.*>= 0.*'-1'"),
    case("limit-word", "traces list --limit many", 2, r"--limit.*'many'"),
    case("limit-float", "traces list --limit 1.5", 2, r"--limit.*'1.5'"),
    case("interval-zero", "traces tail --interval 0", 2, r"--interval.*'0'"),
    case("interval-negative", "traces tail --interval -1", 2, r"--interval.*'-1'"),
    case("interval-nan", "traces tail --interval nan", 2, r"--interval.*'nan'"),
    case("interval-inf", "traces tail --interval inf", 2, r"--interval.*'inf'"),
    case("interval-tiny", "traces tail --interval 0.001", 2, r"--interval.*>= 0.1"),
    case("since-huge", "traces tail --since 1e300", 2, r"--since.*'1e300'"),
    case("since-negative", "traces tail --since -5", 2, r"--since.*'-5'"),
    case("since-nan", "traces tail --since nan", 2, r"--since.*'nan'"),
    case("max-traces-negative", "eval -p p.toml --max-traces -1", 2, r"--max-traces.*'-1'"),
    case("max-tokens-negative", "eval -p p.toml --max-tokens -5", 2, r"--max-tokens.*'-5'"),
    case("backoff-negative", "eval -p p.toml --backoff -1", 2, r"--backoff.*'-1'"),
    case("attempts-negative", "eval -p p.toml --attempts -3", 2, r"--attempts.*'-3'"),
    case("attempts-zero", "eval -p p.toml --attempts 0", 2, r"--attempts.*'0'"),
    case("max-usd-nan", "eval -p p.toml --max-usd nan", 2, r"--max-usd.*'nan'"),
    case("max-usd-negative", "eval -p p.toml --max-usd -1", 2, r"--max-usd.*'-1'"),
    case("timeout-zero", "eval -p p.toml --timeout 0", 2, r"--timeout.*'0'"),
    case("timeout-negative", "eval -p p.toml --timeout -2", 2, r"--timeout.*'-2'"),
    case("timeout-inf", "eval -p p.toml --timeout inf", 2, r"--timeout.*'inf'"),
    case("concurrency-zero", "eval -p p.toml --concurrency 0", 2, r"--concurrency.*'0'"),
    case("shard-out-of-range", "eval -p p.toml --shard 4/4", 2, r"--shard.*'4/4'"),
    case("shard-word", "eval -p p.toml --shard half", 2, r"--shard.*'half'"),
    case("sample-since-1e300", "sample -p p.toml --since 1e300", 2, r"--since.*'1e300'"),
    case("sample-since-too-long", "sample -p p.toml --since 99999999d", 2,
         r"--since.*ten years"),
    case("sample-since-negative", "sample -p p.toml --since=-1h", 2, r"--since.*'-1h'"),
    case("port-too-big", "server --port 99999", 2, r"--port.*1-65535.*'99999'"),
    case("port-zero", "server --port 0", 2, r"--port.*'0'"),
    case("port-negative", "server --port -1", 2, r"--port.*'-1'"),
    case("port-word", "server --port http", 2, r"--port.*'http'"),
    case("port-in-use", "server --port {silent_port}", 2, r"port \d+ on 127.0.0.1 is in use"),
    case("demo-rate-zero", "demo --rate 0", 2, r"--rate.*'0'"),
    case("demo-rate-nan", "demo --rate nan", 2, r"--rate.*'nan'"),
    case("trace-id-slash", "traces show ../../experiments", 2, r"TRACE_TUI|trace id"),
    case("format-unknown", "traces list --format xml", 2, r"--format.*'xml'"),
    case("experiment-empty", ("traces", "list", "-x", ""), 2, r"--experiment.*''"),
    case("command-unknown", "frobnicate", 2, r"frobnicate"),
    case("traces-no-action", "traces", 2, r"ACTION|required"),
    case("eval-no-policy", "eval", 2, r"--policy"),
    # ---------------------------------------------------------------- URLs (parse time)
    case("uri-no-host", ("traces", "list", U, "http://"), 2, r"'http://' has no host"),
    case("uri-port-99999", ("traces", "list", U, "http://127.0.0.1:99999"), 2,
         r"port must be a number 1-65535"),
    case("uri-bad-ipv6", ("traces", "list", U, "http://[::1"), 2, r"Invalid IPv6 URL"),
    case("uri-ftp", ("traces", "list", U, "ftp://example"), 2, r"not an http\(s\) URL"),
    case("uri-file", ("traces", "list", U, "file:///tmp/mlruns"), 2, r"not an http\(s\) URL"),
    case("uri-no-scheme", ("traces", "list", U, "localhost:5000"), 2, r"not an http\(s\) URL"),
    case("uri-port-word", ("traces", "list", U, "http://h:abc"), 2, r"port must be a number"),
    case("uri-space", ("traces", "list", U, "http://my host:5000"), 2, r"whitespace"),
    case("uri-password-bad-ipv6", ("traces", "list", U, f"http://bob:{SECRET}@[::1"), 2,
         r"http://\*\*\*@\[::1"),
    case("uri-explorer", (U, "http://"), 2, r"has no host"),
    # ---------------------------------------------------------------- environment
    case("env-uri-ftp", "traces list", 2, r"MLFLOW_TRACKING_URI.*not an http",
         env={"MLFLOW_TRACKING_URI": "ftp://x"}),
    case("env-uri-no-host", "traces list", 2, r"MLFLOW_TRACKING_URI.*no host",
         env={"MLFLOW_TRACKING_URI": "http://"}),
    case("env-uri-port", "traces list", 2, r"MLFLOW_TRACKING_URI.*port",
         env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:99999"}),
    case("env-uri-password", "traces list", 2, r"\*\*\*@\[",
         env={"MLFLOW_TRACKING_URI": f"http://bob:{SECRET}@[::1"}),
    case("env-read-timeout-word", ("traces", "list", U, REFUSED), 2,
         r"TRACE_TUI_READ_TIMEOUT_S.*'abc'", env={"TRACE_TUI_READ_TIMEOUT_S": "abc"}),
    case("env-read-timeout-nan", ("traces", "list", U, REFUSED), 2,
         r"TRACE_TUI_READ_TIMEOUT_S.*'nan'", env={"TRACE_TUI_READ_TIMEOUT_S": "nan"}),
    case("env-read-timeout-negative", ("traces", "list", U, REFUSED), 2,
         r"TRACE_TUI_READ_TIMEOUT_S.*'-1'", env={"TRACE_TUI_READ_TIMEOUT_S": "-1"}),
    case("env-token-line-break", ("traces", "list", "-x", "e", U, "{html}"), 2,
         r"MLFLOW_TRACKING_TOKEN contains a line break", env={"MLFLOW_TRACKING_TOKEN": "a\nb"}),
    case("env-token-and-uri-password", ("traces", "list", "-x", "e", U, "{html}"), 3,
         r"is not an MLflow server", env={"MLFLOW_TRACKING_TOKEN": "tok"}),
    case("config-not-toml", ("traces", "list", U, REFUSED), 2, r"bad\.toml",
         env={"TRACE_TUI_CONFIG_FILE": "{tmp}/bad.toml"}),
    case("config-deep", ("traces", "list", U, REFUSED), 2, r"deep\.toml: nested too deeply",
         env={"TRACE_TUI_CONFIG_FILE": "{tmp}/deep.toml"}),
    case("config-is-dir", ("traces", "list", U, REFUSED), 2, r"Is a directory",
         env={"TRACE_TUI_CONFIG_FILE": "{tmp}"}),
    case("config-inf-int", ("traces", "list", U, REFUSED), 2, r"buffer_size",
         env={"TRACE_TUI_CONFIG_FILE": "{tmp}/inf.toml"}),
    case("data-dir-is-file", "traces list", 2, r"data dir .*afile is a file",
         env={"TRACE_TUI_DATA_DIR": "{tmp}/afile"}),
    case("data-dir-in-proc", "traces list", 2, r"cannot create data dir /proc/",
         env={"TRACE_TUI_DATA_DIR": "/proc/trace-tui-nope/data"}),
    case("data-dir-read-only", "traces list", 2, r"not writable \(Read-only file system\)",
         env={"TRACE_TUI_DATA_DIR": "{ro}"}, needs="mount"),
    case("server-full-disk", "server", 2, r"not writable \(No space left on device\)",
         env={"TRACE_TUI_DATA_DIR": "{full}"}, needs="mount"),
    # ---------------------------------------------------------------- policy files
    case("policy-missing", ("sample", "-p", "{tmp}/none.toml", U, REFUSED), 2, r"none\.toml"),
    case("policy-deep", ("sample", "-p", "{tmp}/deep.toml", U, REFUSED), 2,
         r"deep\.toml: nested too deeply"),
    case("policy-not-toml", ("report", "-p", "{tmp}/bad.toml", U, REFUSED), 2, r"bad\.toml"),
    case("policy-binary", ("eval", "-p", "{tmp}/binary.toml", U, REFUSED), 2, r"binary\.toml"),
    case("policy-is-dir", ("sample", "-p", "{tmp}", U, REFUSED), 2, r"Is a directory|toml"),
    case("policy-unknown-experiment-id", ("sample", "-p", "{tmp}/bad-id.toml", "--dry-run",
                                          U, "{mlflow}"), 2,
         r"experiment '987654321' does not exist"),
    case("policy-unknown-experiment-name", ("sample", "-p", "{tmp}/bad-name.toml",
                                            "--dry-run", U, "{mlflow}"), 2,
         r"no experiment named .*no-such-experiment-x"),
    # ---------------------------------------------------------------- not (quite) MLflow
    case("server-html-page", ("traces", "list", "-x", "e", U, "{html}"), 3,
         r"\*\*\*@127.0.0.1:\d+ is not an MLflow server .*HTML"),
    case("server-html-404", ("traces", "list", "-x", "e", U, "{html404}"), 3,
         r"is not an MLflow server .*404 with an HTML page"),
    case("server-empty-json", ("traces", "list", "-x", "e", U, "{empty}"), 3,
         r"is not an MLflow server .*without 'experiment'"),
    case("server-plain-text", ("traces", "show", "tr-0123", U, "{text}"), 3,
         r"is not an MLflow server .*not JSON"),
    case("server-json-list", ("traces", "list", "-x", "e", U, "{list}"), 3,
         r"is not an MLflow server"),
    case("server-502", ("traces", "list", "-x", "e", U, "{e502}"), 3,
         r"unavailable \(HTTP 502 error page\)"),
    case("server-503", ("traces", "tail", "-x", "e", U, "{e503}"), 3,
         r"unavailable \(HTTP 503 error page\)"),
    case("server-504", ("report", "-p", str(DEMO_POLICY), U, "{e504}"), 3,
         r"unavailable \(HTTP 504 error page\)"),
    case("server-500", ("traces", "list", "-x", "e", U, "{e500}"), 3, r"unavailable \(HTTP 500"),
    case("server-never-answers", ("traces", "list", "-x", "e", U, "{silent}"), 3,
         r"unreachable \(no answer within the timeout\)"),
    case("server-refused", ("traces", "list", U, REFUSED), 3, r"unreachable"),
]


@dataclass
class World:
    values: dict[str, str]
    mounted: bool


def _mount_tmpfs(path: Path, *opts: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=256k", *opts)),
                           "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "bad.toml").write_text("name = = 'x'\n[[[\n")
    (tmp / "deep.toml").write_text("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n")
    (tmp / "binary.toml").write_bytes(b"\xff\xfe\x00name = 'x'\x9c")
    (tmp / "inf.toml").write_text("buffer_size = inf\n")
    (tmp / "afile").write_text("not a directory")
    demo = DEMO_POLICY.read_text()
    source = re.search(r"\[source\]\n(.*?)\n\n", demo, re.S)
    assert source is not None
    (tmp / "bad-id.toml").write_text(demo.replace(
        source.group(1), 'experiment_ids = ["987654321"]'))
    (tmp / "bad-name.toml").write_text(demo.replace(
        source.group(1), 'experiment_name = "no-such-experiment-x"'))
    fakes = {mode: FakeWeb(mode) for mode in BODIES}
    silent = Silent()
    ro, full = tmp / "ro", tmp / "full"
    mounted = _mount_tmpfs(ro, "ro") and _mount_tmpfs(full)
    if mounted:  # fill the disk to the last byte
        with contextlib.suppress(OSError), open(full / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    values = {"tmp": str(tmp), "mlflow": mlflow_uri, "refused": str(free_port()),
              "silent": silent.uri, "silent_port": silent.uri.rsplit(":", 1)[1],
              "ro": str(ro), "full": str(full)}
    for mode, fake in fakes.items():  # every fake is called with a password in its URI
        key = mode if not mode[0].isdigit() else "e" + mode
        values[key] = fake.uri.replace("http://", f"http://bob:{SECRET}@")
    yield World(values, mounted)
    for fake in fakes.values():
        fake.close()
    silent.close()
    for path in (ro, full):
        subprocess.run(["umount", str(path)], capture_output=True)


def test_at_least_60_bad_inputs() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code(bad: Case, world: World,
                                                  tmp_path: Path) -> None:
    if bad.needs == "mount" and not world.mounted:
        pytest.skip("needs root to mount a tmpfs")
    args = [a.format(**world.values) for a in bad.args]
    env = {**os.environ, "TRACE_TUI_DATA_DIR": str(tmp_path / "data")}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update({k: v.format(**world.values) for k, v in bad.env.items()})
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "trace_tui", *args], capture_output=True,
                         text=True, env=env, stdin=subprocess.DEVNULL, timeout=DEADLINE_S + 30)
    elapsed = time.monotonic() - started
    lines = out.stderr.splitlines()
    errors = [line for line in lines if line.startswith("trace-tui: error: ")]
    assert out.returncode == bad.code, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert len(errors) == 1 and lines[-1] == errors[0], out.stderr
    assert all(line.startswith("trace-tui: ") for line in lines), out.stderr
    assert re.search(bad.needle, errors[0]), errors[0]
    assert SECRET not in out.stderr + out.stdout
    assert elapsed < DEADLINE_S
    if bad.id == "server-full-disk":  # the mlflow child was never started
        left = subprocess.run(["pgrep", "-f", world.values["full"]], capture_output=True)
        assert left.stdout == b""
