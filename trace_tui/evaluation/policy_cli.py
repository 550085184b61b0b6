"""`trace-tui policy new | lint | suggest | diff`: design policies from the data, headless."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trace_tui.config import flags
from trace_tui.core.errors import ConfigError

POLICY_EPILOG = """\
examples:
  trace-tui policy new --experiment my-agent           # the designer, over the last 24h
  trace-tui policy lint policy.toml                     # every problem, with file:line
  trace-tui policy suggest --experiment my-agent --budget 100/h --judge relevance
  trace-tui policy diff old.toml new.toml --since 7d   # rates, sample and cost, side by side
"""

EXIT_PROBLEMS = 2


def add_policy_commands(sub: Any, fmt: type[argparse.HelpFormatter],
                        conn: argparse.ArgumentParser,
                        open_designer: Callable[[argparse.Namespace], int] | None = None,
                        ) -> None:
    """Register `policy ...`; `open_designer(args)` runs the app on the designer (the app
    layer passes it: this package imports no Textual)."""
    pol = sub.add_parser("policy", help="design, lint, suggest and diff sampling policies",
                         formatter_class=fmt, epilog=POLICY_EPILOG,
                         description="Design sampling policies from the data.")
    psub = pol.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)

    new = psub.add_parser("new", help="open the policy designer over recent traces",
                          formatter_class=fmt, parents=[conn])
    new.add_argument("--since", default="24h", type=flags.duration, metavar="DURATION",
                     help="the window of traces to design from (e.g. 1h, 24h, 7d)")
    new.add_argument("--out", "-o", type=Path, default=Path("policy.toml"),
                     help="the file to write (an existing one is edited in place)")
    new.add_argument("--judge", default="relevance", metavar="NAME",
                     help="the first judge, from the designer's menu (j cycles it)")
    new.add_argument("--judge-model", default=None, metavar="URI",
                     help="its model, e.g. openai:/gpt-4o-mini")
    new.add_argument("--judge-base-url", default=None, metavar="URL",
                     help="an OpenAI-compatible endpoint for it")
    new.add_argument("--judge-key-env", default=None, metavar="NAME",
                     help="the environment variable holding its API key")
    new.set_defaults(handler=lambda a: _run_new(a, open_designer))

    lint = psub.add_parser("lint", help="check policy files: every problem, with file:line",
                           formatter_class=fmt)
    lint.add_argument("files", nargs="+", type=Path, metavar="FILE")
    lint.set_defaults(handler=run_lint)

    sug = psub.add_parser("suggest", help="print a policy recommended by the data",
                          formatter_class=fmt, parents=[conn])
    sug.add_argument("--budget", required=True, metavar="N/WINDOW",
                     help="per-window budget: 100/h traces, 50000tok/h tokens, $2/h dollars")
    sug.add_argument("--judge", metavar="NAME", help="a judge from the designer's menu")
    sug.add_argument("--since", default="24h", type=flags.duration, metavar="DURATION")
    sug.add_argument("--name", default="suggested", help="the policy's name")
    sug.add_argument("--out", "-o", type=Path, help="write to FILE instead of stdout")
    sug.set_defaults(handler=run_suggest)

    dif = psub.add_parser("diff", help="two policy versions over the same window",
                          formatter_class=fmt, parents=[conn])
    dif.add_argument("old", type=Path)
    dif.add_argument("new", type=Path)
    dif.add_argument("--since", default="24h", type=flags.duration, metavar="DURATION")
    dif.add_argument("--all", action="store_true", help="also list unchanged strata")
    dif.add_argument("--format", choices=("table", "json"), default="table")
    dif.set_defaults(handler=run_diff)


# --------------------------------------------------------------------------- handlers


def _run_new(args: argparse.Namespace, open_designer: Callable[..., int] | None) -> int:
    if open_designer is None:
        raise ConfigError("policy new: this build has no designer app; use "
                          "`trace-tui policy suggest` for a headless start")
    return int(open_designer(args))


def run_lint(args: argparse.Namespace) -> int:
    from trace_tui.design.lint import lint_file

    problems = [p for f in args.files for p in lint_file(f)]
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {len(args.files)} policy file{'s' if len(args.files) != 1 else ''}")
    return EXIT_PROBLEMS if problems else 0


def run_suggest(args: argparse.Namespace) -> int:
    from trace_tui.design.suggest import parse_budget, suggest
    from trace_tui.evaluation.cli import _run

    try:
        budget = parse_budget(args.budget)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    since_s = float(args.since)

    async def body(client: Any) -> int:
        from trace_tui.design.source import fetch_window

        exp = await client.resolve_experiment(args.experiment)
        window = await fetch_window(client, [exp.experiment_id], since_s)
        try:
            draft, reason = suggest(window, budget, judge=args.judge, experiment=exp.name,
                                    name=args.name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        text = draft.to_toml()
        print(f"# {reason}", file=sys.stderr)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
            print(f"wrote {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0

    return _run(args, body)


def run_diff(args: argparse.Namespace) -> int:
    from samplers import PolicyError, load_policy
    from trace_tui.evaluation.cli import _run

    try:
        old, new = load_policy(args.old), load_policy(args.new)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None
    since_s = float(args.since)

    async def body(client: Any) -> int:
        from trace_tui.design.diff import diff
        from trace_tui.design.source import fetch_window
        from trace_tui.evaluation.sampling import resolve_policy_experiments

        exps = await resolve_policy_experiments(client, new, args.experiment)
        window = await fetch_window(client, exps, since_s,
                                    filter_string=new.source.filter_string)
        result = diff(old, new, window)
        if args.format == "json":
            sys.stdout.write(json.dumps(result.to_dict(), default=str) + "\n")
        else:
            print(result.to_text(all_rows=args.all))
        return 0

    return _run(args, body)
