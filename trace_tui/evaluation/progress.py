"""Progress of the evaluation worker: a bar with rate and ETA on a TTY, JSON lines otherwise."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from trace_tui.evaluation.worker import EvalSummary, TraceOutcome


class Progress:
    """``update`` per finished trace; ``finish`` prints the summary as one JSON line.

    On a terminal a ``rich.progress`` bar (counts, rate, ETA) on ``tty``; otherwise one JSON
    line per trace on ``out``."""

    def __init__(self, tty: TextIO | None, out: TextIO) -> None:
        self.tty = tty
        self.out = out
        self.started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def update(self, outcome: TraceOutcome, summary: EvalSummary, total: int) -> None:
        if self.tty is None:
            self._line({"trace_id": outcome.trace_id, "state": outcome.state,
                        "verdicts": outcome.verdicts, "error": outcome.error,
                        "retries": outcome.retries})
            return
        finished = summary.done + summary.failed + summary.skipped
        bar = self._ensure_bar()
        bar.update(self._task, completed=finished, total=max(total, finished),
                   done=summary.done, failed=summary.failed)

    def _ensure_bar(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                ProgressColumn,
                Task,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )
            from rich.text import Text

            class RateColumn(ProgressColumn):
                def render(self, task: Task) -> Text:
                    return Text(f"{task.speed or 0.0:5.1f} traces/s")

            self._bar = RichProgress(
                TextColumn("judging"), BarColumn(), MofNCompleteColumn(),
                TextColumn("done {task.fields[done]}  failed {task.fields[failed]}"),
                RateColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(file=self.tty, highlight=False), transient=False)
            self._task = self._bar.add_task("judging", total=None, done=0, failed=0)
            self._bar.start()
        return self._bar

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def connection(self, state: str, detail: str) -> None:
        """Follow mode lost or regained the server: one line on stderr, as `traces tail`."""
        line = f"{detail}; reconnecting" if state == "reconnecting" else state
        if self._bar is not None:
            self._bar.console.print(f"trace-tui: {line}", markup=False, highlight=False)
            return
        sys.stderr.write(f"trace-tui: {line}\n")
        sys.stderr.flush()

    def finish(self, summary: EvalSummary) -> None:
        self._stop_bar()
        self._line({"summary": {
            "done": summary.done, "failed": summary.failed, "skipped": summary.skipped,
            "assessments": summary.assessments,
            "retries": summary.retries, "judge_tokens": summary.tokens,
            "judge_cost_usd": round(summary.cost_usd, 6),
            "elapsed_s": round(summary.elapsed_s, 2),
            "stopped_by_budget": summary.stopped_by_budget}})

    def _line(self, doc: dict[str, Any]) -> None:
        self.out.write(json.dumps(doc, default=str) + "\n")
        self.out.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


_SAMPLE_PHASES = {"reading": "reading traces", "tagging": "queueing selected traces"}


class SampleProgress:
    """`sample` on a terminal: one status line rewritten in place (nothing when piped)."""

    def __init__(self, tty: TextIO | None) -> None:
        self.tty = tty
        self.started = time.monotonic()

    def note(self, text: str) -> None:
        self._write(text)

    def update(self, phase: str, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        self._write(f"{_SAMPLE_PHASES.get(phase, phase)}: {done}/{total}  ({_clock(elapsed)})")

    def finish(self) -> None:
        if self.tty is not None:
            self.tty.write("\r\x1b[K")
            self.tty.flush()

    def _write(self, text: str) -> None:
        if self.tty is not None:
            self.tty.write(f"\r\x1b[K{text}")
            self.tty.flush()
