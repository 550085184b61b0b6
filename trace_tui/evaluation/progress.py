"""Progress of the evaluation worker: a bar with rate and ETA on a TTY, JSON lines otherwise."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from trace_tui.evaluation.worker import EvalSummary, TraceOutcome


class Progress:
    """``update`` per finished trace; ``finish`` prints the summary as one JSON line."""

    def __init__(self, tty: TextIO | None, out: TextIO, width: int = 30) -> None:
        self.tty = tty
        self.out = out
        self.width = width
        self.started = time.monotonic()

    def update(self, outcome: TraceOutcome, summary: EvalSummary, total: int) -> None:
        if self.tty is None:
            self._line({"trace_id": outcome.trace_id, "state": outcome.state,
                        "verdicts": outcome.verdicts, "error": outcome.error,
                        "retries": outcome.retries})
            return
        finished = summary.done + summary.failed + summary.skipped
        elapsed = max(1e-6, time.monotonic() - self.started)
        rate = finished / elapsed
        remaining = max(0, total - finished)
        eta = remaining / rate if rate > 0 else 0.0
        filled = int(self.width * min(1.0, finished / max(1, total)))
        bar = "█" * filled + "·" * (self.width - filled)
        self.tty.write(f"\r{bar} {finished}/{total}  done {summary.done}  failed "
                       f"{summary.failed}  {rate:5.1f} traces/s  ETA {_clock(eta)}  ")
        self.tty.flush()

    def connection(self, state: str, detail: str) -> None:
        """Follow mode lost or regained the server: one line on stderr, as `traces tail`."""
        line = f"{detail}; reconnecting" if state == "reconnecting" else state
        if self.tty is not None:
            self.tty.write("\n")
        sys.stderr.write(f"trace-tui: {line}\n")
        sys.stderr.flush()

    def finish(self, summary: EvalSummary) -> None:
        if self.tty is not None:
            self.tty.write("\n")
            self.tty.flush()
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
