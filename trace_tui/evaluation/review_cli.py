"""`trace-tui label | review | dataset add`: human labels and evaluation datasets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trace_tui.core.errors import ConfigError

REVIEW_EPILOG = """\
examples:
  trace-tui review --policy policy.toml --queue           # draw the review sample, print counts
  trace-tui review --policy policy.toml                   # label queued traces in the explorer
  trace-tui review --policy policy.toml --import labels.csv

labels.csv rows: trace_id,judge,value[,rationale,reviewer] (header optional). Each label is a
HUMAN assessment named like the judge, from the reviewer (setting `reviewer`, else the OS
user); re-importing the same file changes nothing.
"""

LABEL_EPILOG = """\
example:
  trace-tui label tr-0123abcd --judge safety --value y --rationale "cites the policy"
"""

DATASET_EPILOG = """\
examples:
  trace-tui dataset add regression --policy policy.toml              # the reviewed traces
  trace-tui dataset add slow --policy policy.toml --filter "trace.execution_time_ms > 5000"
  trace-tui dataset add picked --policy policy.toml --marked   # marked (space) in the explorer

Creates or extends an MLflow GenAI evaluation dataset: inputs from the trace, human labels as
expectations, the trace as source. Re-adding a trace updates its record.
"""


def add_review_commands(sub: Any, fmt: type[argparse.HelpFormatter],
                        conn: argparse.ArgumentParser) -> None:
    lab = sub.add_parser("label", help="write one human label on a trace", formatter_class=fmt,
                         epilog=LABEL_EPILOG, parents=[conn],
                         description="Label a trace for a judge (a HUMAN assessment).")
    lab.add_argument("trace_id", type=_trace_id)
    lab.add_argument("--judge", required=True, help="the judge's name")
    lab.add_argument("--value", required=True, help="y/n, a number or text (the judge's type)")
    lab.add_argument("--rationale", default="", help="why")
    lab.add_argument("--policy", "-p", type=Path,
                     help="policy TOML file (judge type and sampling facts)")
    lab.add_argument("--reviewer", help="source id (default: setting `reviewer`, OS user)")
    lab.set_defaults(handler=run_label)

    rev = sub.add_parser("review", help="human review of judged traces", formatter_class=fmt,
                         epilog=REVIEW_EPILOG, parents=[conn],
                         description="Queue judged traces for review and label them.")
    rev.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    rev.add_argument("--import", dest="import_csv", type=Path, metavar="CSV",
                     help="import labels made elsewhere")
    rev.add_argument("--queue", action="store_true",
                     help="draw the review sample and print counts (no explorer)")
    rev.add_argument("--reviewer", help="source id (default: setting `reviewer`, OS user)")
    rev.set_defaults(handler=run_review)

    ds = sub.add_parser("dataset", help="MLflow evaluation datasets", formatter_class=fmt)
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    add = ds_sub.add_parser("add", help="create or extend a dataset from traces",
                            formatter_class=fmt, epilog=DATASET_EPILOG, parents=[conn])
    add.add_argument("name", help="dataset name")
    add.add_argument("--policy", "-p", required=True, type=Path, help="policy TOML file")
    which = add.add_mutually_exclusive_group()
    which.add_argument("--reviewed", action="store_true",
                       help="the policy's reviewed traces (default)")
    which.add_argument("--filter", metavar="EXPR", help="an MLflow trace filter")
    which.add_argument("--marked", action="store_true",
                       help="the traces marked (space) in the explorer on this server")
    add.set_defaults(handler=run_dataset_add)


def _trace_id(text: str) -> str:
    """A trace id goes into a URL path: refuse what cannot be one (slashes, spaces)."""
    if not text or any(c in text for c in "/?#%") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a trace id like tr-0123abcd..., got {text!r}")
    return text


def _reviewer(args: argparse.Namespace) -> str:
    from trace_tui.config.settings import Settings

    return (args.reviewer or "").strip() or Settings.load().reviewer_id()


def _run(args: argparse.Namespace, body: Any) -> int:
    from trace_tui.evaluation.cli import _run as run

    return run(args, body)


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, default=str) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- label


def run_label(args: argparse.Namespace) -> int:
    from trace_tui.evaluation import labels
    from trace_tui.evaluation.cli import _load_policy

    policy = _load_policy(args.policy) if args.policy else None
    kind: labels.JudgeKind | None = None
    value: Any = None
    if policy is not None:
        kinds = labels.judge_kinds(policy)
        kind = kinds.get(args.judge)
        if kind is None:
            raise ConfigError(f"--judge {args.judge[:60]!r}: not a judge of {args.policy} "
                              f"(one of: {', '.join(sorted(kinds))})")
        value = labels.parse_value(kind, args.value)  # bad value: exit 2 before connecting
    reviewer = _reviewer(args)

    async def body(client: Any) -> int:
        info = await client.get_trace_info(args.trace_id)
        label_value = value
        if kind is None:  # no policy: the judge's type from its verdict on this trace
            verdict = next((a for a in info.assessments if a.name == args.judge
                            and a.source_type == "LLM_JUDGE" and a.error is None), None)
            if verdict is None:
                raise ConfigError(f"--judge {args.judge[:60]!r}: no verdict of it on "
                                  f"{args.trace_id}; pass --policy for its value type")
            label_value = labels.parse_value(labels.kind_from_value(args.judge, verdict.value),
                                             args.value)
        facts = labels.facts_for(info, policy.name if policy else None)
        outcome, written = await labels.write_label(client, info, args.judge, label_value,
                                                    reviewer, facts, rationale=args.rationale,
                                                    via="label")
        _print_json({"trace_id": args.trace_id, "judge": args.judge, "value": label_value,
                     "reviewer": reviewer, "result": outcome,
                     "assessment_id": written.assessment_id})
        return 0

    return _run(args, body)


# --------------------------------------------------------------------------- review


def run_review(args: argparse.Namespace) -> int:
    from trace_tui.evaluation import labels
    from trace_tui.evaluation.cli import _load_policy

    policy = _load_policy(args.policy)
    reviewer = _reviewer(args)
    if args.import_csv is not None:
        kinds = labels.judge_kinds(policy)
        rows = labels.validate_rows(args.import_csv, labels.read_labels_csv(args.import_csv),
                                    kinds)

        async def do_import(client: Any) -> int:
            counts = await labels.import_labels(client, policy.name, rows, reviewer)
            _print_json({"policy": policy.name, "rows": len(rows), **counts})
            return 0

        return _run(args, do_import)
    if args.queue:
        async def do_queue(client: Any) -> int:
            from samplers.verdicts import PassRule
            from trace_tui.evaluation import review
            from trace_tui.evaluation.cli import _open_loop

            loop = await _open_loop(client, args)
            stats = await review.queue_reviews(client, loop.policy, loop.experiment_ids)
            drawn = await review.review_queue(client, policy.name, loop.experiment_ids, None)
            kinds = labels.judge_kinds(policy)
            rules = {k.name: PassRule(k.value_type, k.pass_threshold) for k in kinds.values()}
            agreement = review.reviewer_agreement(drawn, review.reviewed_judges(policy), rules)
            _print_json({"policy": policy.name, "judged": stats.judged,
                         "newly_queued": stats.queued, "waiting": stats.waiting,
                         "reviewed": stats.reviewed,
                         "reviewers": [a.to_dict() for a in agreement]})
            return 0

        return _run(args, do_queue)
    return _open_review_explorer(args)


def _open_review_explorer(args: argparse.Namespace) -> int:
    """The explorer on the review screen: the app layer (trace_tui.cli) sets the opener."""
    opener = getattr(args, "open_review", None)
    if opener is None:
        raise ConfigError("the review screen needs the explorer; use --queue or --import")
    return int(opener(args))


# --------------------------------------------------------------------------- dataset add


def run_dataset_add(args: argparse.Namespace) -> int:
    from trace_tui.evaluation.cli import _load_policy

    policy = _load_policy(args.policy)
    if not args.name.strip():
        raise ConfigError("dataset name: must not be blank")

    async def body(client: Any) -> int:
        from trace_tui.evaluation import datasets
        from trace_tui.evaluation.cli import _open_loop
        from trace_tui.evaluation.review import review_queue, reviewed_judges

        loop = await _open_loop(client, args)
        if args.marked:
            from trace_tui.config.marks import load_marks

            ids = load_marks(client.tracking_uri)
        elif args.filter:
            infos = await client.search_traces(loop.experiment_ids, filter_string=args.filter)
            ids = [i.trace_id for i in infos]
        else:
            infos = await review_queue(client, policy.name, loop.experiment_ids, state=None)
            ids = [i.trace_id for i in infos]
        result = await datasets.add_traces(client, args.name.strip(), loop.experiment_ids, ids,
                                           reviewed_judges(policy))
        _print_json({"dataset": result.name, "dataset_id": result.dataset_id,
                     "created": result.created, "traces": len(ids),
                     "inserted": result.inserted, "updated": result.updated,
                     "same_inputs_as_another_trace": result.same_inputs})
        return 0

    return _run(args, body)
