"""The ``trace-tui`` command: the explorer by default, plus headless commands for scripts/SSH.

Keep this module light: textual is imported only when the explorer starts and mlflow only
in the subprocesses and commands that need it (``import mlflow`` costs seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from trace_tui import __version__
from trace_tui.config import flags
from trace_tui.core.errors import ConfigError, MlflowApiError, MlflowUnavailableError, TraceTuiError
from trace_tui.core.uri import redact_uri

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEMO_EXPERIMENT = "trace-tui-demo"

DESCRIPTION = """\
Explore, sample and judge GenAI traces stored in MLflow, from a terminal.

With no command, opens the explorer: traces stream in from the MLflow server,
Enter opens one as a span waterfall with latency and tokens, ? lists the keys.
"""

EPILOG = """\
which server:
  --tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded server: trace-tui
  starts `mlflow server` on 127.0.0.1 (SQLite under the user data dir) and stops
  it on exit; `trace-tui server` keeps one running for other terminals to share.
  Auth: $MLFLOW_TRACKING_TOKEN (bearer) or $MLFLOW_TRACKING_USERNAME/PASSWORD.

examples:
  trace-tui demo                                   embedded server + demo traffic + explorer
  trace-tui --tracking-uri http://127.0.0.1:5000 --experiment my-agent
  trace-tui --filter "trace.status = 'ERROR' AND tags.route = 'search'"
  trace-tui traces list --limit 20 --format json | jq .
  trace-tui traces show tr-0123... --format tree
  trace-tui traces tail --filter "trace.execution_time_ms > 5000"   (| jq: JSON lines)

over SSH, use `ssh -t host trace-tui` (a TTY is needed), or the headless
`traces` commands. Exit codes: 0 ok, 1 error, 2 usage, 3 server unreachable.

timeouts: 3 s to connect, 10 s to read (read_timeout_s in config.toml or
$TRACE_TUI_READ_TIMEOUT_S; batchGet 3x); reads are retried 3 times (0.25, 0.5,
1 s) within 12 s on no connection, timeouts, 429 and 5xx (a proxy's 502/503/504
too), then the server counts as unavailable (exit 3). See docs/reliability.md.
"""


# --------------------------------------------------------------------------- parser


def build_parser(commands: bool = True) -> argparse.ArgumentParser:
    """One dispatch style: every command sets ``handler``; the connection flags come from
    one parent parser; values are checked by ``trace_tui.config.flags`` at parse time.
    ``commands=False``: the top level only (no help, no subcommands), see ``parse_args``."""
    fmt = argparse.RawDescriptionHelpFormatter
    conn = flags.connection_parent()
    # Its own copy: `parents` shares action objects, and set_defaults below changes them.
    parser = flags.Parser(prog="trace-tui", description=DESCRIPTION, epilog=EPILOG,
                          formatter_class=fmt, parents=[flags.connection_parent()],
                          add_help=commands)
    parser.add_argument("--version", action="version", version=f"trace-tui {__version__}")
    parser.add_argument("--filter", "-f", metavar="F",
                        help="MLflow filter string, e.g. \"trace.status = 'ERROR'\"")
    parser.add_argument("--theme", metavar="T", help="Textual theme, e.g. nord, gruvbox")
    parser.add_argument("--no-mouse", action="store_true",
                        help="do not capture the mouse (saves bandwidth over SSH)")
    parser.add_argument("--policy", "-p", type=Path, metavar="FILE",
                        help="sampling policy for the s/e screens (see docs/policy.md)")
    parser.set_defaults(handler=run_explorer, tracking_uri=None, experiment=None,
                        open_review=run_review_explorer)
    if not commands:
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", formatter_class=fmt, help="explorer on live demo traffic",
                          parents=[conn],
                          description="Start the embedded MLflow server (or use --tracking-uri), "
                          "seed demo traces, keep logging new ones, and open the explorer.")
    demo.add_argument("--rate", type=flags.positive_float, default=1.5,
                      help="demo traces per second")
    demo.add_argument("--no-mouse", action="store_true", help="do not capture the mouse")
    demo.add_argument("--theme", metavar="T", help="Textual theme")
    demo.add_argument("--policy", "-p", type=Path, metavar="FILE",
                      help="sampling policy (default: the bundled demo policy)")
    demo.set_defaults(handler=run_demo)

    server = sub.add_parser("server", help="run the embedded MLflow server in the foreground",
                            description="Run the embedded MLflow server until Ctrl-C and print "
                            "its URI; other trace-tui commands on this machine reuse it.")
    server.add_argument("--port", type=flags.port, default=None,
                        help="port 1-65535 (default: a free one)")
    server.add_argument("--backend-store-uri", metavar="URI",
                        help="MLflow's database, e.g. postgresql://USER@HOST:5432/DB (default: "
                        "SQLite under the user data dir); see docs/deploy.md")
    server.add_argument("--workers", type=flags.positive_int, default=1, metavar="N",
                        help="server worker processes (default: 1)")
    server.set_defaults(handler=run_server)

    traces = sub.add_parser("traces", help="headless trace commands (JSON for scripts)",
                            formatter_class=fmt)
    tsub = traces.add_subparsers(dest="traces_command", metavar="ACTION", required=True)
    tlist = tsub.add_parser("list", help="list traces, newest first", parents=[conn])
    tlist.add_argument("--filter", "-f", metavar="F", help="MLflow filter string")
    tlist.add_argument("--limit", "-n", type=flags.non_negative_int, default=50,
                       help="at most N traces (0 = all)")
    tlist.add_argument("--format", choices=("table", "json"), default="table")
    tlist.set_defaults(handler=run_traces, action=_traces_list)
    tshow = tsub.add_parser("show", help="one trace's span tree", parents=[conn])
    tshow.add_argument("trace_id", metavar="TRACE_ID", type=_trace_id)
    tshow.add_argument("--format", choices=("tree", "json"), default="tree")
    tshow.add_argument("--full", action="store_true",
                       help="with --format json: include inputs, outputs, attributes, events")
    tshow.set_defaults(handler=run_traces, action=_traces_show)
    ttail = tsub.add_parser("tail", help="stream finished traces as they finish",
                            parents=[conn],
                            description="Print traces as they finish, one a line: a readable "
                            "row on a terminal, a JSON object when piped (--format overrides). "
                            "While the server is unreachable (or a proxy answers 502/503/504) "
                            "it says `reconnecting` once, retries with backoff up to 5 s apart, "
                            "and resumes where it stopped.")
    ttail.add_argument("--filter", "-f", metavar="F", help="MLflow filter string")
    ttail.add_argument("--since", type=flags.lookback_seconds, default=None, metavar="SECONDS",
                       help="also print traces from the last SECONDS (default: only new ones)")
    ttail.add_argument("--interval", type=flags.interval, default=1.0, metavar="SECONDS",
                       help=f"poll interval in seconds (>= {flags.MIN_INTERVAL_S:g})")
    ttail.add_argument("--format", choices=("auto", "line", "json"), default="auto",
                       help="auto (default): line on a terminal, json when piped")
    ttail.set_defaults(handler=run_traces, action=_traces_tail)

    _add_evaluation_commands(sub, fmt, conn)
    return parser


def _trace_id(text: str) -> str:
    """A trace id goes into a URL path: refuse what cannot be one (slashes, spaces)."""
    if not text or any(c in text for c in "/?#%") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a trace id like tr-0123abcd..., got {text!r}")
    return text


def _add_evaluation_commands(sub: Any, fmt: type[argparse.HelpFormatter],
                             conn: argparse.ArgumentParser) -> None:
    try:
        from trace_tui.evaluation.cli import add_commands
    except ImportError:
        return
    add_commands(sub, fmt, conn, open_designer=_open_designer)


def _open_designer(args: argparse.Namespace) -> int:
    """`trace-tui policy new`: the app opened on the policy designer."""
    _require_tty()
    from trace_tui.tui.screens.designer import open_designer

    return open_designer(args)


# --------------------------------------------------------------------------- entry


def _exit_on_signal(signum: int, _frame: object) -> None:
    # A closed SSH session (SIGHUP) or a `kill` (SIGTERM) must still run the cleanup in
    # `finally` blocks: stop the embedded server and the demo's helper processes.
    raise SystemExit(128 + signum)


class _NotTopLevel(Exception):
    pass


def _not_top_level(message: str) -> NoReturn:
    raise _NotTopLevel(message)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, parsed. The explorer's (no command, only top-level flags) is tried
    on a parser without the subcommands first: building every command's parser costs ~15 ms
    before the first frame (argparse makes a help formatter per argument). Anything that
    parser does not take as a whole (a command, -h, an unknown or bad flag) is parsed by the
    full parser, so results, help and errors are the full parser's."""
    light = build_parser(commands=False)
    light.error = _not_top_level  # type: ignore[method-assign]
    try:
        args, extra = light.parse_known_args(argv)
    except _NotTopLevel:
        extra = ["?"]
    if not extra:
        return args
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, _exit_on_signal)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `trace-tui traces list | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except MlflowUnavailableError as exc:
        _error(str(exc))
        return EXIT_UNAVAILABLE
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (MlflowApiError, TraceTuiError) as exc:
        _error(str(exc))
        return EXIT_ERROR
    except RecursionError:
        _error("input nested too deeply")
        return EXIT_USAGE
    except Exception as exc:  # the last resort: one line, never a traceback
        if os.environ.get("TRACE_TUI_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {_one_line(exc)} "
               "(TRACE_TUI_DEBUG=1 shows the traceback)")
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _error(message: str) -> None:
    print(f"trace-tui: error: {message}", file=sys.stderr)


def with_client(uri: str, fn: Callable[[Any], Awaitable[int]]) -> int:
    from trace_tui.config.settings import Settings
    from trace_tui.core.client import run_with_client

    return run_with_client(uri, fn, timeout_s=Settings.load().read_timeout_s)


# --------------------------------------------------------------------------- explorer


def _require_tty() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("the explorer needs a terminal (over SSH use `ssh -t`); for scripts "
                          "use the headless commands: trace-tui traces list|show|tail")


def _explorer(uri: str, args: argparse.Namespace, *, experiment: str | None,
              server_label: str, policy: Path | None = None, start_hook: str = "") -> int:
    from trace_tui.tui.startup import FirstPageFetch, first_page_rows, settings_from_args

    settings, mouse = settings_from_args(args)
    filter_string = (getattr(args, "filter", None) or "").strip()
    # Started before Textual is imported: the server looks up the experiment and searches
    # while this process imports and paints (docs/performance.md, first paint).
    first_page = FirstPageFetch(uri, experiment or settings.last_experiment or None,
                                filter_string, timeout_s=settings.read_timeout_s,
                                rows=first_page_rows()).start()

    from trace_tui.tui.app import TraceExplorerApp
    from trace_tui.tui.screens.judging import judge_screen_hooks

    app = TraceExplorerApp(uri, experiment=experiment, filter_string=getattr(args, "filter", None),
                           settings=settings, mouse=mouse, server_label=server_label,
                           screen_hooks=judge_screen_hooks(policy, experiment),
                           first_page=first_page)
    app.start_hook = start_hook
    app.run(mouse=mouse)
    return int(app.return_code or 0)


def run_explorer(args: argparse.Namespace) -> int:
    from trace_tui.server.connect import connect

    _require_tty()
    with connect(args.tracking_uri) as conn:
        return _explorer(conn.uri, args, experiment=args.experiment,
                         server_label=f"{redact_uri(conn.uri)} ({conn.source})",
                         policy=args.policy)


def run_review_explorer(args: argparse.Namespace) -> int:
    """`trace-tui review --policy F`: the explorer, opened on the review screen."""
    from trace_tui.server.connect import connect

    _require_tty()
    with connect(args.tracking_uri) as conn:
        return _explorer(conn.uri, args, experiment=args.experiment,
                         server_label=f"{redact_uri(conn.uri)} ({conn.source})",
                         policy=args.policy, start_hook="review")


def run_demo(args: argparse.Namespace) -> int:
    """Embedded server + seeded history + live demo traffic (a subprocess) + the explorer."""
    from trace_tui.config import paths
    from trace_tui.demo.launcher import DEMO_POLICY, check_judge_port, demo_hint, start_fake_judge
    from trace_tui.demo.traffic import ensure_experiment, seed_bulk
    from trace_tui.server.connect import connect
    from trace_tui.server.lifeline import child_env

    check_judge_port()  # a second demo would judge against the first one's fake judge
    _require_tty()
    experiment = args.experiment or DEMO_EXPERIMENT
    log_dir = paths.private_dir(paths.data_dir())
    with connect(args.tracking_uri) as conn:
        exp_id = ensure_experiment(conn.uri, experiment)
        if not _has_traces(conn.uri, exp_id):
            print("trace-tui: seeding 300 demo traces ...", file=sys.stderr, flush=True)
            seed_bulk(conn.uri, exp_id, 300, seed=int(time.time()),  # the last hour
                      start_ms=int(time.time() * 1000) - 3_600_000, spacing_ms=12_000)
        traffic_log = paths.open_private(log_dir / "demo-traffic.log")
        traffic = subprocess.Popen(
            [sys.executable, "-m", "trace_tui.demo.traffic", "--tracking-uri", conn.uri,
             "--experiment", experiment, "--rate", str(args.rate), "--seed",
             str(int(time.time()))],
            stdout=traffic_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=child_env({**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}))
        judge = None
        try:
            judge = start_fake_judge(log_dir / "fake-judge.log")
            print(f"trace-tui: {demo_hint(redact_uri(conn.uri))}", file=sys.stderr, flush=True)
            return _explorer(conn.uri, args, experiment=experiment,
                             server_label=f"{redact_uri(conn.uri)} ({conn.source}, demo)",
                             policy=args.policy or DEMO_POLICY)
        finally:
            if judge is not None:
                judge.terminate()
            traffic.terminate()
            try:
                traffic.wait(timeout=10)
            except subprocess.TimeoutExpired:
                traffic.kill()
            traffic_log.close()


def _has_traces(uri: str, exp_id: str) -> bool:
    async def probe(client: Any) -> int:
        found = await client.search_traces([exp_id], max_results=1)
        return len(found)

    return with_client(uri, probe) > 0


def run_server(args: argparse.Namespace) -> int:
    from trace_tui.config import paths
    from trace_tui.server.connect import forget, remember, running_embedded
    from trace_tui.server.embedded import EmbeddedServer, check_backend_store_uri

    if args.backend_store_uri is not None:
        check_backend_store_uri(args.backend_store_uri)
    if running_embedded():
        raise ConfigError(f"an embedded server already runs at {running_embedded()}")
    server = EmbeddedServer(paths.data_dir(), port=args.port, workers=args.workers,
                            backend_store_uri=args.backend_store_uri)
    print(f"trace-tui: starting mlflow server (data: {server.store_label}) ...",
          file=sys.stderr, flush=True)
    server.start()  # checks the data dir is writable first; stops its child on failure
    try:
        remember(server)
        print(server.uri, flush=True)
        print(f"trace-tui: export MLFLOW_TRACKING_URI={server.uri}  (Ctrl-C stops it)",
              file=sys.stderr, flush=True)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
        _error("the server exited; see " + str(server.log_path))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        server.stop()
        forget(server)


# --------------------------------------------------------------------------- traces


def run_traces(args: argparse.Namespace) -> int:
    """``traces list|show|tail``: ``args.action`` is the coroutine of the one chosen."""
    from trace_tui.server.connect import connect

    with connect(args.tracking_uri) as conn:
        return with_client(conn.uri, lambda c: args.action(c, args))


async def _traces_list(client: Any, args: argparse.Namespace) -> int:
    from trace_tui.core.export import info_to_dict, list_header, list_row

    exp = await client.resolve_experiment(args.experiment)
    infos = await client.search_traces([exp.experiment_id], filter_string=args.filter,
                                       max_results=args.limit or None)
    if args.format == "json":
        json.dump([info_to_dict(i) for i in infos], sys.stdout, indent=1)
        print()
        return EXIT_OK
    print(list_header())
    for info in infos:
        print(list_row(info))
    print(f"{len(infos)} traces in experiment {exp.name!r} ({exp.experiment_id})",
          file=sys.stderr)
    return EXIT_OK


async def _traces_show(client: Any, args: argparse.Namespace) -> int:
    from trace_tui.core.export import tree_to_dict, tree_to_text

    tree = await client.get_trace(args.trace_id)
    if args.format == "json":
        json.dump(tree_to_dict(tree, full=args.full), sys.stdout, indent=1, default=str)
        print()
    else:
        width = os.get_terminal_size().columns if sys.stdout.isatty() else 120
        print(tree_to_text(tree, width=width))
    return EXIT_OK


async def _traces_tail(client: Any, args: argparse.Namespace) -> int:
    from trace_tui.core.export import info_to_dict, list_header, tail_line
    from trace_tui.core.stream import LiveStream

    as_json = args.format == "json" or (args.format == "auto" and not sys.stdout.isatty())

    def emit(infos: Any) -> None:
        for info in infos:
            sys.stdout.write((json.dumps(info_to_dict(info)) if as_json else tail_line(info))
                             + "\n")
        sys.stdout.flush()

    exp = await client.resolve_experiment(args.experiment)
    since = None if args.since is None else int((time.time() - args.since) * 1000)
    stream = LiveStream(client, [exp.experiment_id], filter_string=args.filter, since_ms=since,
                        poll_interval_s=args.interval, skip_existing=args.since is None)
    first = await stream.poll_once()  # also marks what already existed as seen
    if not as_json:
        print(list_header() + "  feedback")
    emit(first.traces)
    print(f"trace-tui: tailing experiment {exp.name!r} at {client.display_uri} "
          "(Ctrl-C stops)", file=sys.stderr, flush=True)
    was_down = False
    async for batch in stream:
        if not batch.connected:
            if not was_down:
                print(f"trace-tui: {batch.error}; reconnecting", file=sys.stderr, flush=True)
            was_down = True
            continue
        if was_down:
            print("trace-tui: reconnected", file=sys.stderr, flush=True)
            was_down = False
        emit(batch.traces)
    return EXIT_OK
