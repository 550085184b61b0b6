"""State behind the explorer's sampling and evaluation screens (no textual here): the open
policy, the last dry run, the running evaluation and its recent verdicts. It outlives the
screens, so an evaluation keeps running while the user browses traces."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the evaluation chain loads aiohttp and numpy: not on the start path
    from trace_tui.core.client import MlflowClient
    from trace_tui.evaluation.loop import JudgeLoop, QueueCounts
    from trace_tui.evaluation.report import PolicyReport
    from trace_tui.evaluation.worker import EvalSummary, TraceOutcome
    from trace_tui.tui.sources import TraceSource

DRY_RUN_WINDOWS = (("1h", 3600.0), ("6h", 21_600.0), ("24h", 86_400.0), ("7d", 604_800.0))


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
