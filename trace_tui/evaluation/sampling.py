"""`trace-tui sample`: run a policy over an experiment's traces and queue the selected ones.

Durable state lives in MLflow, in one run per policy (``policy:<name>``): an artifact
``state-<replica>.json`` with the population counts (every decision, drops included), the
cursor and the ids decided near it. A restarted sampler resumes from it without counting a
trace twice; samplers sharing a replica id decide identically, so their saves agree.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from samplers import Decision, Policy, PopulationCounts, Sampler, TraceRecord
from trace_tui.core.client import MlflowClient
from trace_tui.core.model import TraceInfo
from trace_tui.core.stream import LiveStream
from trace_tui.evaluation import queue
from trace_tui.evaluation.records import record_from_info

RUN_TAG = "trace_tui.policy_run"
REPLICAS_TAG = "trace_tui.replicas"
FINISHED = "trace.status IN ('OK', 'ERROR')"


def needs_spans(policy: Policy) -> bool:
    """Whether any rule looks at span types, names or models (then spans must be fetched)."""
    from samplers.fields import parse_field

    for rule in policy.rules:
        paths = [c.field for c in rule.conditions] + [k.field for k in rule.key_fields]
        if any(parse_field(p).set_valued for p in paths):
            return True
    return False


def source_filter(policy: Policy, extra: str | None = None) -> str:
    parts = [FINISHED]
    if policy.source.filter_string:
        parts.append(policy.source.filter_string)
    if extra:
        parts.append(extra)
    return " AND ".join(parts)


async def resolve_policy_experiments(client: MlflowClient, policy: Policy,
                                     flag: str | None) -> list[str]:
    """--experiment, else the policy's [source] experiment ids or name."""
    if flag:
        return [(await client.resolve_experiment(flag)).experiment_id]
    if policy.source.experiment_ids:
        return list(policy.source.experiment_ids)
    return [(await client.resolve_experiment(policy.source.experiment_name)).experiment_id]


async def records_for(client: MlflowClient, policy: Policy,
                      infos: Sequence[TraceInfo]) -> list[TraceRecord]:
    if not infos:
        return []
    if not needs_spans(policy):
        return [record_from_info(i) for i in infos]
    trees = {t.trace_id: t for t in await client.batch_get_traces([i.trace_id for i in infos])}
    return [record_from_info(i, trees.get(i.trace_id)) for i in infos]


# --------------------------------------------------------------------------- durable state


@dataclass
class PolicyState:
    """Counts + cursor of one sampler replica, stored as a run artifact."""

    counts: PopulationCounts
    cursor_ms: int | None = None
    recent: dict[str, int] = field(default_factory=dict)  # trace id -> timestamp near cursor

    def to_json(self) -> bytes:
        return json.dumps({"counts": self.counts.to_dict(), "cursor_ms": self.cursor_ms,
                           "recent": self.recent}).encode()

    @classmethod
    def from_json(cls, raw: bytes, replica: str) -> PolicyState:
        data = json.loads(raw)
        counts = PopulationCounts.from_dict(data["counts"], replica_id=replica)
        return cls(counts, data.get("cursor_ms"), dict(data.get("recent") or {}))


async def policy_run(client: MlflowClient, experiment_id: str, policy: Policy) -> str:
    """The run that holds a policy's state (the oldest one, should two have raced)."""
    runs = await client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{policy.name}'")
    if runs:
        runs.sort(key=lambda r: int(r["info"].get("start_time") or 0))
        return str(runs[0]["info"]["run_id"])
    return await client.create_run(experiment_id, f"policy:{policy.name}",
                                   tags={RUN_TAG: policy.name,
                                         "trace_tui.policy_version": policy.version})


async def load_state(client: MlflowClient, run_id: str, policy: Policy,
                     replica: str) -> PolicyState:
    raw = await client.download_artifact(run_id, f"state-{replica}.json")
    if raw is None:
        return PolicyState(PopulationCounts(policy.budget.window_ms, replica))
    return PolicyState.from_json(raw, replica)


async def save_state(client: MlflowClient, run_id: str, replica: str,
                     state: PolicyState) -> None:
    await client.upload_artifact(run_id, f"state-{replica}.json", state.to_json())
    run = await client.get_run(run_id)
    tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
    replicas = set(filter(None, tags.get(REPLICAS_TAG, "").split(",")))
    if replica not in replicas:
        await client.set_run_tag(run_id, REPLICAS_TAG, ",".join(sorted(replicas | {replica})))


async def load_all_counts(client: MlflowClient, run_id: str) -> PopulationCounts | None:
    """Every replica's counts, merged (what the report estimates from)."""
    run = await client.get_run(run_id)
    tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
    merged: PopulationCounts | None = None
    for replica in filter(None, tags.get(REPLICAS_TAG, "").split(",")):
        raw = await client.download_artifact(run_id, f"state-{replica}.json")
        if raw is None:
            continue
        counts = PolicyState.from_json(raw, replica).counts
        merged = counts if merged is None else merged.merge(counts)
    return merged


# --------------------------------------------------------------------------- the sampler loop


@dataclass
class SampleStats:
    decided: int = 0
    selected: int = 0
    queued: int = 0  # tags written by this run (already-queued traces are not re-tagged)
    by_rule: dict[str, int] = field(default_factory=dict)


class SampleRunner:
    """Decide every new finished trace once; tag the selected ones into the queue."""

    def __init__(self, client: MlflowClient, policy: Policy, experiment_ids: Sequence[str],
                 run_id: str, state: PolicyState, replica: str, *, since_ms: int,
                 lookback_ms: int = 120_000, poll_interval_s: float = 2.0,
                 on_batch: Callable[[list[Decision], SampleStats], None] | None = None) -> None:
        self.client = client
        self.policy = policy
        self.run_id = run_id
        self.state = state
        self.replica = replica
        self.sampler = Sampler(policy, counts=state.counts)
        self._writes = asyncio.Semaphore(max(1, client.concurrency // 2))  # traces in flight
        self.stats = SampleStats()
        self.on_batch = on_batch
        start = state.cursor_ms if state.cursor_ms is not None else since_ms
        self.stream = LiveStream(client, experiment_ids, filter_string=source_filter(policy),
                                 since_ms=start, lookback_ms=lookback_ms,
                                 poll_interval_s=poll_interval_s)
        # Traces decided before a restart must not be counted again.
        self.stream.cursor.accept_seen(state.recent)

    async def decide(self, infos: Sequence[TraceInfo]) -> list[Decision]:
        infos = sorted(infos, key=lambda i: (i.request_time_ms, i.trace_id))
        records = await records_for(self.client, self.policy, infos)
        decisions = [self.sampler.decide(r) for r in records]
        by_id = {i.trace_id: i for i in infos}
        writes = []
        for decision in decisions:
            self.stats.decided += 1
            self.stats.by_rule[decision.rule] = self.stats.by_rule.get(decision.rule, 0) + 1
            if not decision.selected:
                continue
            self.stats.selected += 1
            if by_id[decision.trace_id].tags.get(queue.POLICY) == self.policy.name:
                continue  # queued before (a restart, or another sampler): keep its state
            writes.append(self.tag(decision))
        results = await asyncio.gather(*writes)
        self.stats.queued += sum(results)
        for info in infos:
            self.state.recent[info.trace_id] = info.request_time_ms
        return decisions

    async def tag(self, decision: Decision) -> int:
        facts = queue.SampleFacts(
            policy=self.policy.name, stratum=decision.stratum, probability=decision.probability,
            rule=decision.rule, weight=decision.weight,
            window_start_ms=decision.window_start_ms, judges=dict(decision.judges),
            policy_version=self.policy.version)
        tags = facts.tags()
        state = tags.pop(queue.QUEUE)
        async with self._writes:
            await asyncio.gather(*(self.client.set_trace_tag(decision.trace_id, k, v)
                                   for k, v in tags.items()))
            # The queue state goes last: a trace is only 'queued' once its facts are there.
            await self.client.set_trace_tag(decision.trace_id, queue.QUEUE, state)
        return 1

    async def checkpoint(self) -> None:
        cursor = self.stream.cursor
        self.state.cursor_ms = cursor.cursor_ms
        floor = cursor.query_from_ms()
        self.state.recent = {k: v for k, v in self.state.recent.items() if v >= floor}
        await save_state(self.client, self.run_id, self.replica, self.state)

    async def run_once(self) -> SampleStats:
        """One pass: everything finished since the cursor, then save."""
        batch = await self.stream.poll_once()
        decisions = await self.decide(batch.traces)
        if self.stream.cursor.settling:  # just-finished traces: give their tags time to land
            await asyncio.sleep(self.stream.cursor.settle_ms / 1000)
            batch = await self.stream.poll_once()
            decisions += await self.decide(batch.traces)
        await self.checkpoint()
        if self.on_batch:
            self.on_batch(decisions, self.stats)
        return self.stats

    async def follow(self, checkpoint_every_s: float = 10.0) -> SampleStats:
        last = time.monotonic()
        try:
            async for batch in self.stream:
                if not batch.connected:
                    continue
                decisions = await self.decide(batch.traces)
                if self.on_batch:
                    self.on_batch(decisions, self.stats)
                if time.monotonic() - last >= checkpoint_every_s:
                    await self.checkpoint()
                    last = time.monotonic()
        finally:
            await self.checkpoint()
        return self.stats


def feed_outcomes(sampler: Sampler, infos: Iterable[TraceInfo], policy: str) -> int:
    """Past verdicts -> the sampler's Neyman variances (they only shape later windows)."""
    fed = 0
    for info in infos:
        facts = queue.SampleFacts.from_tags(info.tags)
        if facts is None or facts.window_start_ms is None:
            continue
        for assessment in info.assessments:
            if assessment.metadata.get(queue.POLICY) == policy and assessment.error is None:
                fed += sampler.observe_outcome(facts.stratum, assessment.name, assessment.value,
                                               facts.window_start_ms)
    return fed
