"""The judge loop as one object (policy, experiment, sample, queue, eval, report), shared by the
headless commands and the explorer's sampling and evaluation screens. No textual here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import ConfigError
from trace_tui.evaluation import queue, sampling
from trace_tui.evaluation.report import PolicyReport, build_report
from trace_tui.evaluation.worker import EvalOptions, EvalSummary, EvalWorker, TraceOutcome


def load_policy_checked(path: Path) -> Any:
    """The policy with its judges validated (no mlflow import); one-line ConfigErrors."""
    from samplers import PolicyError, load_policy
    from trace_tui.judging import policy_judge_specs

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    policy_judge_specs(policy)
    return policy


@dataclass
class QueueCounts:
    queued: int = 0
    done: int = 0
    failed: int = 0


class JudgeLoop:
    """One policy against one MLflow server."""

    def __init__(self, client: MlflowClient, policy: Any, experiment_ids: list[str]) -> None:
        self.client = client
        self.policy = policy
        self.experiment_ids = experiment_ids
        self.worker: EvalWorker | None = None
        self._judges: dict[str, Any] | None = None

    @classmethod
    async def open(cls, client: MlflowClient, path: Path,
                   experiment: str | None = None) -> JudgeLoop:
        policy = load_policy_checked(path)
        exps = await sampling.resolve_policy_experiments(client, policy, experiment)
        return cls(client, policy, exps)

    async def dry_run(self, since_s: float) -> tuple[Any, dict[str, Any]]:
        """(per-stratum frame, totals) for the traces of the last ``since_s`` seconds."""
        from samplers import dry_run, dry_run_totals

        since_ms = int((time.time() - since_s) * 1000)
        infos = await self.client.search_traces(
            self.experiment_ids,
            filter_string=sampling.source_filter(self.policy,
                                                 f"trace.timestamp_ms >= {since_ms}"))
        records = await sampling.records_for(self.client, self.policy, infos)

        def plan() -> tuple[Any, dict[str, Any]]:
            frame = dry_run(self.policy, records)
            return frame, dry_run_totals(frame, self.policy)

        return await asyncio.to_thread(plan)  # seconds over a 7-day window: not on the loop

    async def runner(self, since_s: float, replica: str = "main") -> sampling.SampleRunner:
        run_id = await sampling.policy_run(self.client, self.experiment_ids[0], self.policy)
        state = await sampling.load_state(self.client, run_id, self.policy, replica)
        runner = sampling.SampleRunner(
            self.client, self.policy, self.experiment_ids, run_id, state, replica,
            since_ms=int((time.time() - since_s) * 1000))
        judged = await self.policy_traces(queue.DONE)
        sampling.feed_outcomes(runner.sampler, judged, self.policy.name,
                               [j.name for j in self.policy.judges])
        return runner

    async def policy_traces(self, state: str | None = None) -> list[Any]:
        """This policy's sampled traces (its own tags and legacy ones), ``state`` only if set."""
        return await queue.search_policy_traces(self.client, self.experiment_ids,
                                                self.policy.name, state)

    async def sample_once(self, since_s: float = 86_400,
                          on_runner: Callable[[sampling.SampleRunner], None] | None = None,
                          ) -> sampling.SampleStats:
        runner = await self.runner(since_s)
        if on_runner is not None:
            on_runner(runner)  # a UI reads its stats and stream cursor as progress
        return await runner.run_once()

    async def queue_counts(self) -> QueueCounts:
        counts = QueueCounts()
        for info in await self.policy_traces():
            state = queue.queue_state(info.tags, self.policy.name) or ""
            if hasattr(counts, state):
                setattr(counts, state, getattr(counts, state) + 1)
        return counts

    async def requeue_failed(self) -> int:
        failed = await self.policy_traces(queue.FAILED)
        for info in failed:
            await self.client.set_trace_tag(info.trace_id,
                                            queue.state_tag(info.tags, self.policy.name),
                                            queue.QUEUED)
        return len(failed)

    async def judges(self) -> dict[str, Any]:
        """The policy's judges built into MLflow scorers (the first call imports mlflow)."""
        if self._judges is None:
            from trace_tui.evaluation.worker import load_judges

            judges: dict[str, Any] = await asyncio.to_thread(load_judges, self.policy.judges)
            self._judges = judges
            return judges
        return self._judges

    async def evaluate(self, options: EvalOptions,
                       on_outcome: Callable[[TraceOutcome, EvalSummary, int], None] | None = None,
                       on_connection: Callable[[str, str], None] | None = None,
                       ) -> EvalSummary:
        self.worker = EvalWorker(self.client, self.policy, await self.judges(),
                                 self.experiment_ids, options, on_outcome=on_outcome,
                                 on_connection=on_connection)
        try:
            return await self.worker.run()
        finally:
            self.worker = None

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    async def report(self) -> PolicyReport:
        return await build_report(self.client, self.policy, self.experiment_ids)
