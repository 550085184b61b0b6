"""`trace-tui sample | eval | report`: the judge loop, headless (SSH, tmux, cron)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trace_tui.core.errors import ConfigError

SAMPLE_EPILOG = """\
examples:
  trace-tui sample --policy trace_tui/demo/policy.toml --dry-run --since 24h
  trace-tui sample --policy policy.toml             # decide what finished since last run
  trace-tui sample --policy policy.toml --follow    # keep deciding as traces arrive

Selected traces get tags trace_tui.policy / .queue=queued / .stratum / .probability /
.weight. Population counts (drops included) are saved in the MLflow run 'policy:<name>'.
"""

EVAL_EPILOG = """\
examples:
  trace-tui eval --policy policy.toml --concurrency 16
  trace-tui eval --policy policy.toml --follow --shard 0/4   # one of 4 workers

Each verdict becomes an assessment on the original trace (visible in the MLflow UI); the
trace's trace_tui.queue tag becomes done or failed. Killed and restarted, it never writes a
second verdict for the same (trace, judge). Scale out with --shard and an MLflow server on
PostgreSQL or MySQL.
"""

REPORT_EPILOG = """\
Post-stratified estimate per judge (pass rate or mean score) with a confidence interval,
overall and per stratum, weighted by the population counts the sampler saved.
"""


def add_commands(sub: Any, fmt: type[argparse.HelpFormatter],
                 common: Callable[[argparse.ArgumentParser], None],
                 open_designer: Callable[[argparse.Namespace], int] | None = None) -> None:
    sample = sub.add_parser("sample", help="run a sampling policy, queue traces for judges",
                            formatter_class=fmt, epilog=SAMPLE_EPILOG,
                            description="Decide which traces are judged, by a policy file.")
    common(sample)
    sample.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    sample.add_argument("--follow", action="store_true", help="keep running on new traces")
    sample.add_argument("--dry-run", action="store_true",
                        help="print the per-stratum plan for recent traces; write nothing")
    sample.add_argument("--since", default="24h", metavar="DURATION",
                        help="first run / dry run: look back this far (e.g. 30m, 24h, 7d)")
    sample.add_argument("--replica", default="main",
                        help="replica id (samplers sharing one see the same traces)")
    sample.add_argument("--format", choices=("table", "json"), default="table")
    sample.set_defaults(handler=run_sample)

    ev = sub.add_parser("eval", help="judge queued traces, write assessments",
                        formatter_class=fmt, epilog=EVAL_EPILOG,
                        description="Run the policy's judges on queued traces.")
    common(ev)
    ev.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    ev.add_argument("--follow", action="store_true", help="keep waiting for queued traces")
    ev.add_argument("--concurrency", "-c", type=int, default=8, help="judge calls in flight")
    ev.add_argument("--shard", default="0/1", metavar="I/N", help="take shard I of N")
    ev.add_argument("--timeout", type=float, default=60.0, help="seconds per judge call")
    ev.add_argument("--attempts", type=int, default=4, help="tries per judge call")
    ev.add_argument("--backoff", type=float, default=1.0, metavar="S",
                    help="first retry delay in seconds (doubles, with jitter)")
    ev.add_argument("--max-traces", type=int, help="stop after N traces")
    ev.add_argument("--max-tokens", type=int, help="stop after N judge tokens")
    ev.add_argument("--max-usd", type=float, help="stop after this judge spend")
    ev.add_argument("--retry-failed", action="store_true",
                    help="re-queue this policy's failed traces first")
    ev.set_defaults(handler=run_eval)

    rep = sub.add_parser("report", help="population estimates with confidence intervals",
                         formatter_class=fmt, epilog=REPORT_EPILOG)
    common(rep)
    rep.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    rep.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rep.set_defaults(handler=run_report)

    from trace_tui.evaluation.policy_cli import add_policy_commands

    add_policy_commands(sub, fmt, common, open_designer)


# --------------------------------------------------------------------------- helpers


def parse_duration_s(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ConfigError(f"--since: expected a duration like 30m, 24h or 7d, got {text!r}")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * unit


def parse_shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise ConfigError(f"--shard: expected I/N with 0 <= I < N, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _run(args: argparse.Namespace, body: Callable[[Any], Any]) -> int:
    from trace_tui.core.client import run_with_client
    from trace_tui.server.connect import connect

    with connect(args.tracking_uri) as conn:
        return run_with_client(conn.uri, body)


def _stop_on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


# --------------------------------------------------------------------------- sample


def run_sample(args: argparse.Namespace) -> int:
    from trace_tui.evaluation.loop import JudgeLoop, load_policy_checked

    load_policy_checked(args.policy)  # fail on a bad file before connecting
    since_s = parse_duration_s(args.since)

    async def body(client: Any) -> int:
        loop = await JudgeLoop.open(client, args.policy, args.experiment)
        if args.dry_run:
            frame, totals = await loop.dry_run(since_s)
            if args.format == "json":
                _print_json({"strata": json.loads(frame.to_json(orient="records")),
                             "totals": totals})
            else:
                with _pandas_wide():
                    print(frame.to_string(index=False))
                print("\n" + "  ".join(f"{k}={_fmt(v)}" for k, v in totals.items()))
            return 0
        runner = await loop.runner(since_s, args.replica)
        if args.follow:
            runner.on_batch = lambda d, s: _print_json(
                {"decided": s.decided, "selected": s.selected, "queued": s.queued})
            _stop_on_signals(runner.stream.close)
            stats = await runner.follow()
        else:
            stats = await runner.run_once()
        _print_json({"policy": loop.policy.name, "run_id": runner.run_id,
                     "decided": stats.decided, "selected": stats.selected,
                     "queued": stats.queued, "by_rule": stats.by_rule})
        return 0

    return _run(args, body)


# --------------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    from trace_tui.evaluation.loop import JudgeLoop, load_policy_checked

    load_policy_checked(args.policy)
    shard, shards = parse_shard(args.shard)
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")

    async def body(client: Any) -> int:
        from trace_tui.evaluation.progress import Progress
        from trace_tui.evaluation.worker import EvalOptions

        loop = await JudgeLoop.open(client, args.policy, args.experiment)
        await loop.judges()  # a judge that cannot be built fails before any work
        if args.retry_failed:
            await loop.requeue_failed()
        options = EvalOptions(
            concurrency=args.concurrency, shard=shard, shards=shards, follow=args.follow,
            judge_timeout_s=args.timeout, attempts=max(1, args.attempts), backoff_s=args.backoff,
            max_traces=args.max_traces, max_tokens=args.max_tokens, max_usd=args.max_usd)
        progress = Progress(sys.stderr if sys.stderr.isatty() else None, sys.stdout)
        _stop_on_signals(loop.stop)
        summary = await loop.evaluate(options, on_outcome=progress.update)
        progress.finish(summary)
        return 1 if summary.failed and not summary.done else 0

    return _run(args, body)


# --------------------------------------------------------------------------- report


def run_report(args: argparse.Namespace) -> int:
    from trace_tui.evaluation.loop import JudgeLoop, load_policy_checked

    load_policy_checked(args.policy)

    async def body(client: Any) -> int:
        report = await (await JudgeLoop.open(client, args.policy, args.experiment)).report()
        if args.format == "json":
            _print_json(report.to_dict())
        elif args.format == "csv":
            report.to_frame().to_csv(sys.stdout, index=False)
        else:
            print(report.to_text())
        return 0

    return _run(args, body)


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, default=str) + "\n")
    sys.stdout.flush()


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _pandas_wide() -> Any:
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 50,
                             "display.max_colwidth", 60)
