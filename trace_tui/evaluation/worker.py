"""The evaluation worker: queued traces -> MLflow judges -> assessments on the original traces.

Exactly once per (trace, judge), even when killed at any moment: before judging, the worker
re-reads the trace and skips judges whose verdict (an LLM_JUDGE assessment carrying this
policy's name) already exists; the trace is marked done only after every verdict landed.
A crash between the two leaves the trace queued, and the next run only finishes the tag.
Judge calls are bounded (no MLflow-internal retry storms); transient failures are retried
here with backoff, and a trace that keeps failing is marked failed with the error.

Budgets are limits: a trace's judge calls start only once the budget is reserved for them
(the trace itself, and each call's estimated tokens and dollars: the mean of that judge's
calls so far). The overshoot is at most what the calls already in flight use beyond their
estimates. With ``follow``, an unreachable server is waited for, never a reason to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import TraceInfo
from trace_tui.core.retry import Backoff
from trace_tui.evaluation import queue
from trace_tui.evaluation.budget import Budget

NOT_STARTED = "not_started"


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
    reconnect_max_s: float = 15.0  # longest wait between two checks of a lost server


@dataclass
class TraceOutcome:
    """What happened to one queued trace (one progress event)."""

    trace_id: str
    state: str  # done | failed | skipped | not_started (the budget ran out first)
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
                 on_connection: Callable[[str, str], None] | None = None,
                 ) -> None:
        self.client = client
        self.policy = policy
        self.judges = judges
        self.experiment_ids = list(experiment_ids)
        self.options = options
        self.on_outcome = on_outcome
        self.on_connection = on_connection
        self.summary = EvalSummary()
        self.budget = Budget(options)
        self._stop = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency),
                                        thread_name_prefix="judge")
        self._judge_gate = asyncio.Semaphore(max(1, options.concurrency))

    def stop(self) -> None:
        self._stop.set()

    async def queued(self) -> list[TraceInfo]:
        """This shard's queued traces, oldest first."""
        infos = await queue.search_policy_traces(self.client, self.experiment_ids,
                                                 self.policy.name, queue.QUEUED)
        o = self.options
        return [i for i in infos if queue.in_shard(i.trace_id, o.shard, o.shards)]

    async def run(self) -> EvalSummary:
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    batch = await self.queued()
                    if batch:
                        await self._drain(batch)
                except MlflowUnavailableError as exc:
                    if not self.options.follow:
                        raise
                    await self._wait_for_server(str(exc))
                    continue
                if not self.options.follow or self.summary.stopped_by_budget:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.options.poll_interval_s)
        finally:
            self.summary.elapsed_s = time.monotonic() - started
            self._pool.shutdown(wait=False, cancel_futures=True)
        return self.summary

    async def _wait_for_server(self, error: str) -> None:
        """Follow mode: report the loss, poll /health with backoff until it answers."""
        if self.on_connection is not None:
            self.on_connection("reconnecting", error)
        backoff = Backoff(first_s=0.5, max_s=self.options.reconnect_max_s, jitter=0.0)
        tries = 0
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff.delay(tries))
            tries += 1
            if await self.client.health():
                if self.on_connection is not None:
                    self.on_connection("reconnected", "")
                return

    async def _drain(self, batch: list[TraceInfo]) -> None:
        """Fetch the batch in chunks (one batchGet each, fresh tags and assessments included)
        and judge as chunks arrive; judge calls in flight stay within ``concurrency``."""
        total = len(batch)
        chunk = 25
        chunks = [batch[i:i + chunk] for i in range(0, total, chunk)]
        fetch_ahead = asyncio.Semaphore(2 + self.options.concurrency // chunk)

        def halted() -> bool:
            return self._stop.is_set() or self.summary.stopped_by_budget is not None

        async def one(payload: dict[str, Any]) -> None:
            if halted():
                return
            outcome = await self.evaluate_payload(payload)
            if outcome.state == NOT_STARTED:
                return
            self._account(outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome, self.summary, total)

        async def run_chunk(infos: list[TraceInfo]) -> None:
            async with fetch_ahead:
                if halted():
                    return
                payloads = await self.client.batch_get_raw([i.trace_id for i in infos])
                await _all(one(p) for p in payloads)

        await _all(run_chunk(c) for c in chunks)

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
        if queue.queue_state(info.tags, name) != queue.QUEUED:
            return TraceOutcome(trace_id, "skipped")
        facts = queue.SampleFacts.from_tags(info.tags, name)
        wanted = (list(facts.judges) or list(self.judges)) if facts is not None else []
        unknown = sorted(set(wanted) - set(self.judges))
        # Verdicts are shared: a judge another policy already ran on this trace is not rerun.
        pending = [] if unknown else [j for j in wanted if queue.verdict_of(info, j) is None]
        reservation = await self.budget.reserve(pending)
        if reservation is None:
            self.summary.stopped_by_budget = self.budget.reason
            return TraceOutcome(trace_id, NOT_STARTED)
        try:
            return await self._evaluate_reserved(payload, info, facts, unknown, pending)
        finally:
            self.budget.release(reservation)

    async def _evaluate_reserved(self, payload: dict[str, Any], info: TraceInfo,
                                 facts: queue.SampleFacts | None, unknown: list[str],
                                 pending: list[str]) -> TraceOutcome:
        trace_id = info.trace_id
        if facts is None:
            return await self._fail(info, TraceOutcome(trace_id, queue.FAILED),
                                    "sampling tags missing or unreadable "
                                    f"({queue.state_tag(info.tags, self.policy.name)})")
        if unknown:
            return await self._fail(info, TraceOutcome(trace_id, queue.FAILED),
                                    f"judges not in the policy: {', '.join(unknown)}")
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
        name = self.policy.name
        await self.client.set_trace_tag(trace_id, queue.state_tag(info.tags, name), queue.DONE)
        if queue.error_tag(info.tags, name) in info.tags:
            await self.client.delete_trace_tag(trace_id, queue.error_tag(info.tags, name))
        return outcome

    async def _judge_once(self, info: TraceInfo, facts: queue.SampleFacts, trace: Any,
                          judge: LoadedJudge, outcome: TraceOutcome) -> str | None:
        """Judge with retries, then write the verdict; returns an error message or None."""
        from trace_tui.judging import run_judge

        loop = asyncio.get_running_loop()
        call = functools.partial(run_judge, judge.scorer, trace,
                                 timeout_s=self.options.judge_timeout_s)
        verdict = None
        backoff = Backoff(first_s=self.options.backoff_s, max_s=60.0, jitter=0.5)
        for attempt in range(self.options.attempts):
            if attempt:
                outcome.retries += 1
                await asyncio.sleep(backoff.delay(attempt - 1))
            async with self._judge_gate:
                verdict = await loop.run_in_executor(self._pool, call)
            tokens = (verdict.input_tokens or 0) + (verdict.output_tokens or 0)
            outcome.tokens += tokens
            outcome.cost_usd += verdict.cost_usd or 0.0
            self.budget.spend(judge.name, tokens, verdict.cost_usd or 0.0)
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
        except MlflowApiError as exc:
            # Unknown whether it landed: the next run re-reads the trace before judging again.
            return f"{judge.name}: verdict not written ({exc})"
        # MlflowUnavailableError propagates: the trace stays queued for the next pass.
        outcome.verdicts[judge.name] = verdict.value
        return None

    async def _fail(self, info: TraceInfo, outcome: TraceOutcome, error: str) -> TraceOutcome:
        outcome.state = queue.FAILED
        outcome.error = error
        name = self.policy.name
        await self.client.set_trace_tag(info.trace_id, queue.error_tag(info.tags, name),
                                        error[:4000])
        await self.client.set_trace_tag(info.trace_id, queue.state_tag(info.tags, name),
                                        queue.FAILED)
        return outcome


def _json_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


async def _all(coros: Iterable[Awaitable[None]]) -> None:
    """Run concurrently; on the first error cancel the rest and raise that error itself
    (an unreachable server first: follow mode waits for it)."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)  # type: ignore[arg-type]
    except BaseExceptionGroup as errors:
        leaves = list(_leaves(errors))
        raise next((e for e in leaves if isinstance(e, MlflowUnavailableError)),
                   leaves[0]) from None


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
