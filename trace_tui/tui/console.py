"""State behind the explorer's sampling and evaluation screens (no textual here): the open
policy, the last dry run, the running evaluation and its recent verdicts. It outlives the
screens, so an evaluation keeps running while the user browses traces."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from trace_tui.core.errors import TraceTuiError

if TYPE_CHECKING:  # the evaluation chain loads aiohttp and numpy: not on the start path
    from trace_tui.core.client import MlflowClient
    from trace_tui.evaluation.loop import JudgeLoop, QueueCounts
    from trace_tui.evaluation.report import PolicyReport
    from trace_tui.evaluation.sampling import SampleRunner, SampleStats
    from trace_tui.evaluation.worker import EvalSummary, TraceOutcome
    from trace_tui.tui.sources import TraceSource

DRY_RUN_WINDOWS = (("1h", 3600.0), ("6h", 21_600.0), ("24h", 86_400.0), ("7d", 604_800.0))


@dataclass
class SampleProgress:
    """One sampling run (``r`` on the sampling screen), read by the screens as it goes."""

    window: str
    started: float = field(default_factory=time.monotonic)
    runner: SampleRunner | None = None
    stats: SampleStats | None = None  # set when the run is over
    error: str = ""
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def counts(self) -> tuple[int, int, int]:
        """(decided, selected, queued) so far."""
        stats = self.stats or (self.runner.stats if self.runner is not None else None)
        return (stats.decided, stats.selected, stats.queued) if stats else (0, 0, 0)

    def describe(self) -> str:
        """One line: phase, counts so far, rate, elapsed."""
        decided, selected, queued = self.counts()
        clock = f"{self.elapsed_s:.0f}s"
        rate = f"{decided / max(self.elapsed_s, 1e-6):.1f} traces/s"
        if self.error:
            return f"sampling failed after {clock}: {self.error}"
        if not self.running:
            return (f"sampled the last {self.window}: decided {decided:,}, selected "
                    f"{selected:,}, queued {queued:,} new in {clock} ({rate})")
        if self.runner is None:
            return (f"sampling … preparing (policy run, saved state, past verdicts) {clock}")
        cursor = self.runner.stream.cursor
        read = len(cursor.settling) + len(cursor.pending)
        if decided == 0:
            what = f"reading traces: {read:,} so far" if read else "reading traces"
            return f"sampling … {what} · {clock}"
        return (f"sampling … decided {decided:,} · selected {selected:,} (tagging them into "
                f"the queue) · {rate} · {clock}")


@dataclass
class JudgeConsole:
    """One per app: the policy file and what was last done with it."""

    policy_path: Path | None = None
    experiment: str | None = None
    loop: JudgeLoop | None = None
    error: str = ""
    window_index: int = 2  # 24h
    dry_run: tuple[Any, dict[str, Any]] | None = None
    counts: QueueCounts | None = None
    report: PolicyReport | None = None
    running: bool = False
    summary: EvalSummary | None = None
    total: int = 0
    recent: deque[TraceOutcome] = field(default_factory=lambda: deque(maxlen=200))
    concurrency: int = 8
    sampling: SampleProgress | None = None

    @property
    def window(self) -> tuple[str, float]:
        return DRY_RUN_WINDOWS[self.window_index]

    def cycle_window(self) -> None:
        self.window_index = (self.window_index + 1) % len(DRY_RUN_WINDOWS)

    async def open(self, client: TraceSource, path: Path) -> JudgeLoop:
        """Load and validate a policy; on error keep the previous one and raise. Sampling and
        judging write runs and tags: they need the app's source to be an ``MlflowClient``
        (a static source fails at the first call the policy needs)."""
        from trace_tui.evaluation.loop import JudgeLoop

        loop = await JudgeLoop.open(cast("MlflowClient", client), path, self.experiment)
        self.policy_path, self.loop, self.error = path, loop, ""
        self.dry_run = self.counts = self.report = None
        return loop

    async def refresh_dry_run(self) -> None:
        assert self.loop is not None
        self.dry_run = await self.loop.dry_run(self.window[1])

    @property
    def sampling_running(self) -> bool:
        return self.sampling is not None and self.sampling.running

    def begin_sample(self) -> SampleProgress:
        """Mark a sampling run as started (shown at once, before its worker gets going)."""
        self.sampling = SampleProgress(self.window[0])
        return self.sampling

    async def run_sample(self, progress: SampleProgress | None = None) -> SampleProgress:
        """One sampling pass over the current window; progress in ``sampling`` meanwhile.
        The caller makes sure only one runs at a time (``sampling_running``)."""
        assert self.loop is not None
        seconds = self.window[1]
        if progress is None:
            progress = self.begin_sample()

        def started(runner: SampleRunner) -> None:
            progress.runner = runner

        try:
            progress.stats = await self.loop.sample_once(seconds, on_runner=started)
        except TraceTuiError as exc:
            progress.error = str(exc)
        finally:
            progress.finished = time.monotonic()
        if progress.stats is not None and self.counts is not None:
            self.counts.queued += progress.stats.queued
        return progress

    async def refresh_queue(self) -> None:
        assert self.loop is not None
        self.counts = await self.loop.queue_counts()

    async def refresh_report(self) -> None:
        assert self.loop is not None
        self.report = await self.loop.report()

    async def run_eval(self) -> EvalSummary:
        """Drain the queue once; progress lands in ``summary``/``recent`` as traces finish."""
        from trace_tui.evaluation.worker import EvalOptions, EvalSummary

        assert self.loop is not None
        self.running = True
        self.summary = EvalSummary()

        def on_outcome(outcome: TraceOutcome, summary: EvalSummary, total: int) -> None:
            self.summary, self.total = summary, total
            self.recent.appendleft(outcome)
            counts = self.counts
            if counts is not None and outcome.state in ("done", "failed"):
                counts.queued = max(0, counts.queued - 1)  # the queue as the worker moves it
                setattr(counts, outcome.state, getattr(counts, outcome.state) + 1)

        try:
            self.summary = await self.loop.evaluate(
                EvalOptions(concurrency=self.concurrency, follow=True, poll_interval_s=3.0),
                on_outcome=on_outcome)
            return self.summary
        finally:
            self.running = False

    def stop_eval(self) -> None:
        if self.loop is not None:
            self.loop.stop()
