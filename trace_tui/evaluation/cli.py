"""`trace-tui sample | eval | report`: the judge loop, headless (SSH, tmux, cron)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trace_tui.config import flags
from trace_tui.core.errors import ConfigError, MlflowApiError

SAMPLE_EPILOG = """\
examples:
  trace-tui sample --policy trace_tui/demo/policy.toml --dry-run --since 24h
  trace-tui sample --policy policy.toml             # decide what finished since last run
  trace-tui sample --policy policy.toml --follow    # keep deciding as traces arrive

Selected traces get tags of the policy's own: trace_tui.sample.<policy> (JSON facts:
stratum, probability, weight, judges), trace_tui.stratum.<policy> and
trace_tui.queue.<policy>=queued (filter on it in the MLflow UI). The sampler's state
(population counts with drops included, cursor) lives in the tags of the MLflow run
'policy:<name>'. On a terminal, progress goes to stderr; the result is one JSON line.
"""

EVAL_EPILOG = """\
examples:
  trace-tui eval --policy policy.toml --concurrency 16
  trace-tui eval --policy policy.toml --follow --shard 0/4   # one of 4 workers

Each verdict becomes an assessment on the original trace (visible in the MLflow UI); the
trace's trace_tui.queue.<policy> tag becomes done or failed (the error in
trace_tui.error.<policy>). Killed and restarted, it never writes a second verdict for the
same (trace, judge). Scale out with --shard and an MLflow server on PostgreSQL or MySQL.
"""

REPORT_EPILOG = """\
Post-stratified estimate per judge (pass rate or mean score) with a confidence interval,
overall and per stratum, weighted by the population counts the sampler saved.
"""


def add_commands(sub: Any, fmt: type[argparse.HelpFormatter],
                 conn: argparse.ArgumentParser,
                 open_designer: Callable[[argparse.Namespace], int] | None = None) -> None:
    """``sample``, ``eval``, ``report``, ``policy``; ``conn`` is the parent parser of the
    connection flags. Values are checked at parse time (``trace_tui.config.flags``): a bad
    one exits 2. ``open_designer`` runs the app on the policy designer (this package imports
    no Textual, so the CLI passes it in)."""
    sample = sub.add_parser("sample", help="run a sampling policy, queue traces for judges",
                            formatter_class=fmt, epilog=SAMPLE_EPILOG, parents=[conn],
                            description="Decide which traces are judged, by a policy file.")
    sample.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    sample.add_argument("--follow", action="store_true", help="keep running on new traces")
    sample.add_argument("--dry-run", action="store_true",
                        help="print the per-stratum plan for recent traces; write nothing")
    sample.add_argument("--since", type=flags.duration, default=flags.duration("24h"),
                        metavar="DURATION",
                        help="first run / dry run: look back this far (e.g. 30m, 24h, 7d)")
    sample.add_argument("--backfill", action="store_true",
                        help="one-shot over --since in two phases: a proportional pilot "
                             "(judge it with eval), then the rest by Neyman on its verdicts")
    sample.add_argument("--replica", default="main",
                        help="replica id (samplers sharing one see the same traces)")
    sample.add_argument("--format", choices=("table", "json"), default="table")
    sample.set_defaults(handler=run_sample)

    ev = sub.add_parser("eval", help="judge queued traces, write assessments",
                        formatter_class=fmt, epilog=EVAL_EPILOG, parents=[conn],
                        description="Run the policy's judges on queued traces.")
    ev.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    ev.add_argument("--follow", action="store_true", help="keep waiting for queued traces")
    ev.add_argument("--concurrency", "-c", type=flags.positive_int, default=8,
                    help="judge calls in flight (>= 1)")
    ev.add_argument("--shard", type=flags.shard, default=(0, 1), metavar="I/N",
                    help="take shard I of N (0 <= I < N)")
    ev.add_argument("--timeout", type=flags.positive_float, default=60.0,
                    help="seconds per judge call (> 0)")
    ev.add_argument("--attempts", type=flags.positive_int, default=4,
                    help="tries per judge call (>= 1)")
    ev.add_argument("--backoff", type=flags.non_negative_float, default=1.0, metavar="S",
                    help="first retry delay in seconds (doubles, with jitter)")
    ev.add_argument("--max-traces", type=flags.non_negative_int, help="stop after N traces")
    ev.add_argument("--max-tokens", type=flags.non_negative_int,
                    help="stop after N judge tokens")
    ev.add_argument("--max-usd", type=flags.non_negative_float,
                    help="stop after this judge spend")
    ev.add_argument("--retry-failed", action="store_true",
                    help="re-queue this policy's failed traces first")
    ev.set_defaults(handler=run_eval)

    rep = sub.add_parser("report", help="population estimates with confidence intervals",
                         formatter_class=fmt, epilog=REPORT_EPILOG, parents=[conn])
    rep.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    rep.add_argument("--format", choices=("table", "json", "csv"), default="table")
    rep.set_defaults(handler=run_report)

    from trace_tui.evaluation.policy_cli import add_policy_commands
    from trace_tui.evaluation.review_cli import add_review_commands

    add_policy_commands(sub, fmt, conn, open_designer)
    add_review_commands(sub, fmt, conn)


# --------------------------------------------------------------------------- helpers


def _load_policy(path: Path) -> Any:
    """The policy, checked before connecting; any unreadable file is one ConfigError."""
    from trace_tui.evaluation.loop import load_policy_checked

    try:
        return load_policy_checked(path)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: {' '.join(str(exc).split())[:200]}") from None


async def _open_loop(client: Any, args: argparse.Namespace) -> Any:
    """The judge loop, after checking the policy's experiments exist on this server (an
    unknown id would otherwise give an empty plan and exit 0)."""
    from trace_tui.evaluation.loop import JudgeLoop

    where = "--experiment" if args.experiment else f"{args.policy}: [source]"
    try:
        loop = await JudgeLoop.open(client, args.policy, args.experiment)
    except MlflowApiError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ConfigError(f"{where}: {exc.message} on {client.display_uri}") from None
    for exp_id in loop.experiment_ids:
        if await client.get_experiment(str(exp_id)) is None:
            raise ConfigError(f"{where}: experiment {exp_id!r} does not exist on "
                              f"{client.display_uri}")
    return loop


def _run(args: argparse.Namespace, body: Callable[[Any], Any]) -> int:
    from trace_tui.config.settings import Settings
    from trace_tui.core.client import run_with_client
    from trace_tui.server.connect import connect

    timeout_s = Settings.load().read_timeout_s
    with connect(args.tracking_uri) as conn:
        return run_with_client(conn.uri, body, timeout_s=timeout_s)


def _stop_on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)


# --------------------------------------------------------------------------- sample


def run_sample(args: argparse.Namespace) -> int:
    _load_policy(args.policy)  # fail on a bad file before connecting
    since_s = args.since

    async def body(client: Any) -> int:
        loop = await _open_loop(client, args)
        if args.dry_run:
            frame, totals = await loop.dry_run(since_s)
            if args.format == "json":
                _print_json({"strata": json.loads(frame.to_json(orient="records")),
                             "totals": totals})
            else:
                from trace_tui.evaluation.plan_table import render_table, render_totals

                print(render_table(frame.to_dict(orient="records")))
                print()
                print(render_totals(totals, frame.attrs.get("window_s")))
            return 0
        if args.backfill:
            from trace_tui.evaluation.backfill import backfill

            _print_json(await backfill(loop, since_s))
            return 0
        from trace_tui.evaluation.progress import SampleProgress

        progress = SampleProgress(sys.stderr if sys.stderr.isatty() else None)
        progress.note("reading the sampler state and past verdicts…")
        runner = await loop.runner(since_s, args.replica)
        runner.on_progress = progress.update
        progress.note("searching finished traces…")
        if args.follow:
            def batch_line(_: Any, s: Any) -> None:
                progress.finish()
                _print_json({"decided": s.decided, "selected": s.selected, "queued": s.queued,
                             "tag_s": round(s.tag_s, 3),
                             **_poll_fields(runner.batch_poll or runner.stream.last_poll),
                             "sweep_s": round(runner.stream.last_sweep.seconds, 3)})

            runner.on_batch = batch_line
            _stop_on_signals(runner.stream.close)
            stats = await runner.follow()
        else:
            stats = await runner.run_once()
        progress.finish()
        _print_json({"policy": loop.policy.name, "run_id": runner.run_id,
                     "decided": stats.decided, "selected": stats.selected,
                     "queued": stats.queued, "by_rule": stats.by_rule})
        return 0

    return _run(args, body)


# --------------------------------------------------------------------------- eval


def run_eval(args: argparse.Namespace) -> int:
    _load_policy(args.policy)
    shard, shards = args.shard

    async def body(client: Any) -> int:
        from trace_tui.evaluation.progress import Progress
        from trace_tui.evaluation.worker import EvalOptions

        loop = await _open_loop(client, args)
        await loop.judges()  # a judge that cannot be built fails before any work
        if args.retry_failed:
            await loop.requeue_failed()
        options = EvalOptions(
            concurrency=args.concurrency, shard=shard, shards=shards, follow=args.follow,
            judge_timeout_s=args.timeout, attempts=max(1, args.attempts), backoff_s=args.backoff,
            max_traces=args.max_traces, max_tokens=args.max_tokens, max_usd=args.max_usd)
        progress = Progress(sys.stderr if sys.stderr.isatty() else None, sys.stdout)
        _stop_on_signals(loop.stop)
        summary = await loop.evaluate(options, on_outcome=progress.update,
                                      on_connection=progress.connection)
        progress.finish(summary)
        return 1 if summary.failed else 0  # any trace left failed: the summary counts them

    return _run(args, body)


# --------------------------------------------------------------------------- report


def run_report(args: argparse.Namespace) -> int:
    _load_policy(args.policy)

    async def body(client: Any) -> int:
        report = await (await _open_loop(client, args)).report()
        if args.format == "json":
            _print_json(report.to_dict())
        elif args.format == "csv":
            report.to_frame().to_csv(sys.stdout, index=False)
        else:
            print(report.to_text())
        return 0

    return _run(args, body)


def _poll_fields(poll: Any) -> dict[str, Any]:
    """What the poll behind a batch cost, on ``sample --follow``'s lines (bench/
    sampler_follow.py reads them): seconds, whether it swept the look-back, searches."""
    return {"poll_s": round(poll.seconds, 3), "sweep": poll.sweep, "searches": poll.searches}


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, default=str) + "\n")
    sys.stdout.flush()

