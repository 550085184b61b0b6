"""The evaluation worker: queued traces -> MLflow judges -> assessments on the original traces.

Exactly once per (trace, judge), even when killed at any moment: before judging, the worker
re-reads the trace and skips judges whose verdict (an LLM_JUDGE assessment carrying this
policy's name) already exists; the trace is marked done only after every verdict landed.
A crash between the two leaves the trace queued, and the next run only finishes the tag.
Judge calls are bounded (no MLflow-internal retry storms); transient failures are retried
here with backoff, and a trace that keeps failing is marked failed with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import TraceInfo
from trace_tui.evaluation import queue


@dataclass(frozen=True)
class LoadedJudge:
    """A judge declared in the policy, built into an MLflow scorer."""

    name: str
    model: str
    scorer: Any


def load_judges(decls: Sequence[Any]) -> dict[str, LoadedJudge]:
    """Validate and build every judge of a policy (imports mlflow)."""
    from trace_tui.judging import JudgeSpec, build_judge

    out: dict[str, LoadedJudge] = {}
    for decl in decls:
        spec = JudgeSpec.from_decl(decl.name, decl.scorer, dict(decl.options))
        out[decl.name] = LoadedJudge(decl.name, spec.model, build_judge(spec))
    return out


@dataclass
class EvalOptions:
    concurrency: int = 8
    shard: int = 0
    shards: int = 1
    follow: bool = False
    poll_interval_s: float = 2.0
    judge_timeout_s: float = 60.0
    attempts: int = 4
    backoff_s: float = 1.0
    max_traces: int | None = None
    max_tokens: int | None = None
    max_usd: float | None = None


@dataclass
class TraceOutcome:
    """What happened to one queued trace (one progress event)."""

    trace_id: str
    state: str  # done | failed | skipped
    verdicts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    retries: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class EvalSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    assessments: int = 0
    retries: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    stopped_by_budget: str | None = None
    elapsed_s: float = 0.0


class EvalWorker:
    """Drain (or follow) a policy's queue with bounded concurrency."""

    def __init__(self, client: MlflowClient, policy: Any, judges: dict[str, LoadedJudge],
                 experiment_ids: Sequence[str], options: EvalOptions,
                 on_outcome: Callable[[TraceOutcome, EvalSummary, int], None] | None = None,
                 ) -> None:
        self.client = client
        self.policy = policy
        self.judges = judges
        self.experiment_ids = list(experiment_ids)
        self.options = options
        self.on_outcome = on_outcome
        self.summary = EvalSummary()
        self._stop = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency),
                                        thread_name_prefix="judge")
        self._judge_gate = asyncio.Semaphore(max(1, options.concurrency))

    def stop(self) -> None:
        self._stop.set()

    async def queued(self) -> list[TraceInfo]:
        """This shard's queued traces, oldest first."""
        infos = await self.client.search_traces(
            self.experiment_ids, filter_string=queue.queue_filter(self.policy.name, queue.QUEUED),
            order_by=["timestamp_ms ASC"])
        o = self.options
        return [i for i in infos if queue.in_shard(i.trace_id, o.shard, o.shards)]

    async def run(self) -> EvalSummary:
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                batch = await self.queued()
                if batch:
                    await self._drain(batch)
                if not self.options.follow or self.summary.stopped_by_budget:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.options.poll_interval_s)
        finally:
            self.summary.elapsed_s = time.monotonic() - started
            self._pool.shutdown(wait=False, cancel_futures=True)
        return self.summary

    async def _drain(self, batch: list[TraceInfo]) -> None:
        """Fetch the batch in chunks (one batchGet each, fresh tags and assessments included)
        and judge as chunks arrive; judge calls in flight stay within ``concurrency``."""
        total = len(batch)
        chunk = 25
        chunks = [batch[i:i + chunk] for i in range(0, total, chunk)]
        fetch_ahead = asyncio.Semaphore(2 + self.options.concurrency // chunk)

        async def one(payload: dict[str, Any]) -> None:
            if self._stop.is_set() or self._over_budget():
                return
            outcome = await self.evaluate_payload(payload)
            self._account(outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome, self.summary, total)

        async def run_chunk(infos: list[TraceInfo]) -> None:
            async with fetch_ahead:
                if self._stop.is_set() or self._over_budget():
                    return
                payloads = await self.client.batch_get_raw([i.trace_id for i in infos])
                await asyncio.gather(*(one(p) for p in payloads))

        await asyncio.gather(*(run_chunk(c) for c in chunks))

    def _over_budget(self) -> bool:
        o, s = self.options, self.summary
        done = s.done + s.failed
        reason = None
        if o.max_traces is not None and done >= o.max_traces:
            reason = f"max_traces={o.max_traces}"
        elif o.max_tokens is not None and s.tokens >= o.max_tokens:
            reason = f"max_tokens={o.max_tokens}"
        elif o.max_usd is not None and s.cost_usd >= o.max_usd:
            reason = f"max_usd={o.max_usd}"
        if reason:
            s.stopped_by_budget = reason
        return reason is not None

    def _account(self, outcome: TraceOutcome) -> None:
        s = self.summary
        if outcome.state == queue.DONE:
            s.done += 1
        elif outcome.state == queue.FAILED:
            s.failed += 1
        else:
            s.skipped += 1
        s.assessments += len(outcome.verdicts)
        s.retries += outcome.retries
        s.tokens += outcome.tokens
        s.cost_usd += outcome.cost_usd

    async def evaluate(self, trace_id: str) -> TraceOutcome:
        """Judge one trace by id (fetches it first)."""
        return await self.evaluate_payload(await self.client.get_trace_json(trace_id))

    async def evaluate_payload(self, payload: dict[str, Any]) -> TraceOutcome:
        """Run every pending judge on one fetched trace; tag it done or failed."""
        name = self.policy.name
        info = TraceInfo.from_json(payload["trace_info"])
        trace_id = info.trace_id
        if info.tags.get(queue.QUEUE) != queue.QUEUED or info.tags.get(queue.POLICY) != name:
            return TraceOutcome(trace_id, "skipped")
        facts = queue.SampleFacts.from_tags(info.tags)
        if facts is None:
            return await self._fail(info, TraceOutcome(trace_id, queue.FAILED),
                                    f"sampling tags missing or unreadable ({queue.SAMPLE})")
        wanted = list(facts.judges) or list(self.judges)
        unknown = sorted(set(wanted) - set(self.judges))
        if unknown:
            return await self._fail(info, TraceOutcome(trace_id, queue.FAILED),
                                    f"judges not in the policy: {', '.join(unknown)}")
        pending = [j for j in wanted if queue.verdict_of(info, name, j) is None]
        outcome = TraceOutcome(trace_id, queue.DONE)
        if pending:
            try:
                loop = asyncio.get_running_loop()
                from trace_tui.judging import trace_from_rest_json

                trace = await loop.run_in_executor(self._pool, trace_from_rest_json, payload)
            except ValueError as exc:
                return await self._fail(info, outcome, f"trace unreadable: {exc}")
            results = await asyncio.gather(*(self._judge_once(info, facts, trace,
                                                              self.judges[j], outcome)
                                             for j in pending))
            errors = [e for e in results if e]
            if errors:
                return await self._fail(info, outcome, "; ".join(errors))
        await self.client.set_trace_tag(trace_id, queue.QUEUE, queue.DONE)
        if queue.ERROR in info.tags:
            await self.client.delete_trace_tag(trace_id, queue.ERROR)
        return outcome

    async def _judge_once(self, info: TraceInfo, facts: queue.SampleFacts, trace: Any,
                          judge: LoadedJudge, outcome: TraceOutcome) -> str | None:
        """Judge with retries, then write the verdict; returns an error message or None."""
        from trace_tui.judging import run_judge

        loop = asyncio.get_running_loop()
        call = functools.partial(run_judge, judge.scorer, trace,
                                 timeout_s=self.options.judge_timeout_s)
        verdict = None
        for attempt in range(self.options.attempts):
            if attempt:
                outcome.retries += 1
                delay = self.options.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))
            async with self._judge_gate:
                verdict = await loop.run_in_executor(self._pool, call)
            outcome.tokens += (verdict.input_tokens or 0) + (verdict.output_tokens or 0)
            outcome.cost_usd += verdict.cost_usd or 0.0
            if verdict.ok or not verdict.retryable:
                break
        assert verdict is not None
        if not verdict.ok:
            return f"{judge.name}: {verdict.error}"
        metadata = {**facts.metadata(judge.name), "judge_model": judge.model,
                    "judge_input_tokens": verdict.input_tokens or 0,
                    "judge_output_tokens": verdict.output_tokens or 0}
        try:
            await self.client.create_assessment(
                info.trace_id, judge.name, _json_value(verdict.value), source_type="LLM_JUDGE",
                source_id=judge.model, rationale=verdict.rationale, metadata=metadata)
        except (MlflowApiError, MlflowUnavailableError) as exc:
            # Unknown whether it landed: the next run re-reads the trace before judging again.
            return f"{judge.name}: verdict not written ({exc})"
        outcome.verdicts[judge.name] = verdict.value
        return None

    async def _fail(self, info: TraceInfo, outcome: TraceOutcome, error: str) -> TraceOutcome:
        outcome.state = queue.FAILED
        outcome.error = error
        await self.client.set_trace_tag(info.trace_id, queue.ERROR, error[:4000])
        await self.client.set_trace_tag(info.trace_id, queue.QUEUE, queue.FAILED)
        return outcome


def _json_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
