"""`trace-tui sample`: run a policy over an experiment's traces and queue the selected ones.

Durable state lives in MLflow, in one run per policy (``policy:<name>``): run tags (written
through the tracking REST API, so every server layout holds them, whatever its artifact
store) with the population counts (every decision, drops included), the cursor and the ids
decided near it. State saved as a ``state-<replica>.json`` artifact by earlier versions is
still read. A restarted sampler resumes from it without counting a
trace twice; samplers sharing a replica id decide identically, so their saves agree.

Over 500 lines on purpose: the state format, the runner and its pipelined ``follow`` share
one invariant (a saved decision is tagged on the server), kept in one place to read.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from samplers import Decision, Policy, PopulationCounts, Sampler, TraceRecord
from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import ConfigError, MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import TraceInfo
from trace_tui.core.retry import Backoff
from trace_tui.core.stream import LiveStream, PollStats
from trace_tui.evaluation import queue
from trace_tui.evaluation.records import record_from_info

RUN_TAG = "trace_tui.policy_run"
REPLICAS_TAG = "trace_tui.replicas"
FINISHED = "trace.status IN ('OK', 'ERROR')"
_PROGRESS_CHUNK = 200  # traces read per step when progress is reported


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
    """Counts + cursor of one sampler replica, stored in the policy's run."""

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
    run = await client.get_run(run_id)
    raw = read_state_tags(run_tags(run), replica)
    if raw is None:
        raw = await _legacy_artifact(client, run_id, replica)
    if raw is None:
        return PolicyState(PopulationCounts(policy.budget.window_ms, replica))
    return PolicyState.from_json(raw, replica)


async def save_state(client: MlflowClient, run_id: str, replica: str,
                     state: PolicyState) -> None:
    """Write the state as run tags (every server holds them: no artifact store involved)."""
    await save_state_raw(client, run_id, replica, state.to_json())


async def save_state_raw(client: MlflowClient, run_id: str, replica: str, raw: bytes) -> None:
    """``save_state`` for a state already serialised (``PolicyState.to_json``)."""
    run = await client.get_run(run_id)
    for batch in state_tag_batches(run_tags(run), replica, raw):
        await client.set_run_tags(run_id, batch)


async def load_all_counts(client: MlflowClient, run_id: str) -> PopulationCounts | None:
    """Every replica's counts, merged (what the report estimates from)."""
    tags = run_tags(await client.get_run(run_id))
    replicas = {json.loads(v).get("replica", "") for k, v in tags.items()
                if k.startswith(STATE_PREFIX) and k.count(".") == STATE_PREFIX.count(".")}
    replicas |= set(filter(None, tags.get(REPLICAS_TAG, "").split(",")))
    merged: PopulationCounts | None = None
    for replica in sorted(replicas):
        raw = read_state_tags(tags, replica)
        if raw is None:
            raw = await _legacy_artifact(client, run_id, replica)
        if raw is None:
            continue
        counts = PolicyState.from_json(raw, replica).counts
        merged = counts if merged is None else merged.merge(counts)
    return merged


# The state as run tags. ``trace_tui.state.<replica>`` is the head: JSON naming the slot, the
# number of chunks and their checksum; the chunks (zlib + base64, cut below MLflow's 8000-char
# tag value limit, which the server truncates to silently) sit in ``...<replica>.<slot>.<i>``.
# Two slots alternate: the new chunks go to the slot the head does not name, and the head
# moves last, so a reader sees either the old state or the new one, never a mix.
STATE_PREFIX = "trace_tui.state."
CHUNK_CHARS = 7000
TAGS_PER_CALL = 100  # MLflow's limit per runs/log-batch


def run_tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}


def _replica_key(replica: str) -> str:
    from trace_tui.core.tags import policy_key

    return STATE_PREFIX + policy_key(replica)


def read_state_tags(tags: dict[str, str], replica: str) -> bytes | None:
    head_raw = tags.get(_replica_key(replica))
    if head_raw is None:
        return None
    head = json.loads(head_raw)
    base = f"{_replica_key(replica)}.{head['slot']}."
    text = "".join(tags.get(f"{base}{i}", "") for i in range(int(head["chunks"])))
    if hashlib.sha256(text.encode()).hexdigest() != head["sha256"]:
        raise ConfigError(f"the saved sampler state of replica {replica!r} is damaged "
                          f"(checksum mismatch in run tags {base}*)")
    return zlib.decompress(base64.b64decode(text))


def state_tag_batches(current: dict[str, str], replica: str,
                      raw: bytes) -> list[dict[str, str]]:
    """The log-batch calls that save ``raw``: the chunks first, the head in the last call."""
    key = _replica_key(replica)
    old = json.loads(current[key]) if key in current else None
    slot = "b" if old is not None and old.get("slot") == "a" else "a"
    text = base64.b64encode(zlib.compress(raw, 6)).decode()
    chunks = [text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    tags = {f"{key}.{slot}.{i}": c for i, c in enumerate(chunks)}
    head = json.dumps({"replica": replica, "slot": slot, "chunks": len(chunks),
                       "sha256": hashlib.sha256(text.encode()).hexdigest(),
                       "saved_ms": int(time.time() * 1000)}, separators=(",", ":"))
    items = list(tags.items())
    batches = [dict(items[i:i + TAGS_PER_CALL]) for i in range(0, len(items), TAGS_PER_CALL)]
    if len(batches[-1]) < TAGS_PER_CALL:
        batches[-1][key] = head  # one call for the usual small state; the head goes last
    else:
        batches.append({key: head})
    return batches


async def _legacy_artifact(client: MlflowClient, run_id: str, replica: str) -> bytes | None:
    """State saved by earlier versions as ``state-<replica>.json``, where the server serves
    artifacts; on other layouts there never was one."""
    try:
        return await client.download_artifact(run_id, f"state-{replica}.json")
    except MlflowApiError:
        return None


# --------------------------------------------------------------------------- the sampler loop


@dataclass
class SampleStats:
    decided: int = 0
    selected: int = 0
    queued: int = 0  # tags written by this run (already-queued traces are not re-tagged)
    by_rule: dict[str, int] = field(default_factory=dict)
    tag_s: float = 0.0  # seconds spent writing one selected trace's tags, summed over traces


# follow's queue: a poll's traces, the cursor it left, what the poll cost.
_Batch = tuple[list[TraceInfo], int, PollStats | None]


@dataclass
class _Snapshot:
    """A state to save once the tag writes it depends on have landed."""

    raw: bytes
    windows: set[int]
    writes: list[asyncio.Task[int]]


class SampleRunner:
    """Decide every new finished trace once; tag the selected ones into the queue.

    ``follow`` polls and decides in two tasks joined by a bounded queue of batches, so the
    next poll runs while tags are written; tag writes run in the background, at most
    ``tag_concurrency`` traces at a time. A checkpoint saves the state as it was between two
    batches, and only once every tag write started before it has landed: a saved decision is
    always on the server, so a restarted sampler neither loses a trace (decided, never
    tagged) nor counts one twice.
    """

    def __init__(self, client: MlflowClient, policy: Policy, experiment_ids: Sequence[str],
                 run_id: str, state: PolicyState, replica: str, *, since_ms: int,
                 lookback_ms: int = 120_000, poll_interval_s: float = 2.0,
                 tag_concurrency: int | None = None, queued_batches: int = 4,
                 on_batch: Callable[[list[Decision], SampleStats], None] | None = None,
                 on_progress: Callable[[str, int, int], None] | None = None) -> None:
        self.client = client
        self.policy = policy
        self.run_id = run_id
        self.state = state
        self.replica = replica
        self.sampler = Sampler(policy, counts=state.counts)
        # Traces whose tags are being written at once, one request each: 12 of the client's
        # 16 connections by default, the rest left to polls and checkpoints. On a server busy
        # with ingest a tag write waits ~1 s for the store, so writes per second grow with
        # the requests in flight (docs/performance.md).
        self._writes = asyncio.Semaphore(
            tag_concurrency or max(1, client.concurrency * 3 // 2))
        self._in_flight: set[asyncio.Task[int]] = set()
        self._started_writes = 0  # tag writes started by this run (progress total)
        self._write_error: BaseException | None = None
        # In ``follow``, a tag write the server left unanswered (a server saturated by ingest
        # answers in more than the read timeout now and then) is retried until it lands:
        # setting a tag to the value it may already have is harmless. A pass fails instead.
        self._outlast: Backoff | None = None
        self.max_pending_tags = 1000  # selected traces waiting for tags before deciding waits
        self.drain_s = 120.0  # how long a stopping ``follow`` waits for its tag writes
        self.queued_batches = max(1, queued_batches)
        self.stats = SampleStats()
        self.on_batch = on_batch
        self.batch_poll: PollStats | None = None  # follow: the poll of the batch just decided
        self.on_progress = on_progress  # (phase, done, total): reading | tagging
        start = state.cursor_ms if state.cursor_ms is not None else since_ms
        self.stream = LiveStream(client, experiment_ids, filter_string=source_filter(policy),
                                 since_ms=start, lookback_ms=lookback_ms,
                                 poll_interval_s=poll_interval_s)
        # Traces decided before a restart must not be counted again.
        self.stream.cursor.accept_seen(state.recent)
        self._windows: set[int] = set()  # windows decided by this run, not yet recorded
        self._recorded: set[int] = set()

    async def decide(self, infos: Sequence[TraceInfo], *,
                     wait_for_tags: bool = True) -> list[Decision]:
        """Decide ``infos`` and start tagging the selected ones; with ``wait_for_tags``
        return once those tags are written (else they land in the background)."""
        infos = sorted(infos, key=lambda i: (i.request_time_ms, i.trace_id))
        records = await self._records(infos)
        # ~2.5 us a decision: a backfill over a week decides millions; off the event loop,
        # so the explorer's keys stay live while it runs (the sampler is not shared meanwhile).
        decisions = (await asyncio.to_thread(self._decide_all, records) if len(records) > 2000
                     else self._decide_all(records))
        by_id = {i.trace_id: i for i in infos}
        writes = []
        for decision in decisions:
            self.stats.decided += 1
            self._windows.add(decision.window_start_ms)
            self.stats.by_rule[decision.rule] = self.stats.by_rule.get(decision.rule, 0) + 1
            if not decision.selected:
                continue
            self.stats.selected += 1
            if queue.queue_state(by_id[decision.trace_id].tags, self.policy.name):
                continue  # queued before (a restart, or another sampler): keep its state
            writes.append(self._start_tag(decision))
        for info in infos:
            self.state.recent[info.trace_id] = info.request_time_ms
        if wait_for_tags and writes:
            await asyncio.gather(*writes)
        return decisions

    def _decide_all(self, records: Sequence[TraceRecord]) -> list[Decision]:
        return [self.sampler.decide(r) for r in records]

    async def _records(self, infos: Sequence[TraceInfo]) -> list[TraceRecord]:
        """``records_for`` in chunks, so a long first pass reports its progress."""
        if self.on_progress is None or not needs_spans(self.policy):
            return await records_for(self.client, self.policy, infos)
        out: list[TraceRecord] = []
        for start in range(0, len(infos), _PROGRESS_CHUNK):
            self.on_progress("reading", start, len(infos))
            out += await records_for(self.client, self.policy,
                                     infos[start:start + _PROGRESS_CHUNK])
        self.on_progress("reading", len(infos), len(infos))
        return out

    def _start_tag(self, decision: Decision) -> asyncio.Task[int]:
        task = asyncio.create_task(self.tag(decision))
        self._in_flight.add(task)
        self._started_writes += 1
        task.add_done_callback(self._tag_done)
        return task

    def _tag_done(self, task: asyncio.Task[int]) -> None:
        """Count a finished tag write (and report the run's queueing so far)."""
        self._in_flight.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._write_error = self._write_error or error
            return
        self.stats.queued += task.result()
        if self.on_progress is not None:
            self.on_progress("tagging", self.stats.queued, self._started_writes)

    async def tag(self, decision: Decision) -> int:
        facts = queue.SampleFacts(
            policy=self.policy.name, stratum=decision.stratum, probability=decision.probability,
            rule=decision.rule, weight=decision.weight,
            window_start_ms=decision.window_start_ms, judges=dict(decision.judges),
            policy_version=self.policy.version)
        tags = facts.tags()
        state_key = next(reversed(tags))
        state = tags.pop(state_key)
        async with self._writes:
            started = time.monotonic()
            # MLflow sets trace tags one per call (no batch route), one call at a time: the
            # facts, then the queue state (a trace is only 'queued' once its facts are there).
            for key, value in tags.items():
                await self._set_tag(decision.trace_id, key, value)
            await self._set_tag(decision.trace_id, state_key, state)
            self.stats.tag_s += time.monotonic() - started
        return 1

    async def _set_tag(self, trace_id: str, key: str, value: str) -> None:
        failures = 0
        while True:
            try:
                return await self.client.set_trace_tag(trace_id, key, value)
            except MlflowUnavailableError:
                if self._outlast is None:
                    raise
                await asyncio.sleep(self._outlast.delay(failures))
                failures += 1

    def _snapshot(self, cursor_ms: int) -> _Snapshot:
        """The state now (call it between batches, never while one is being decided), and
        the tag writes it waits for."""
        self.state.cursor_ms = cursor_ms
        floor = max(0, cursor_ms - self.stream.cursor.lookback_ms)
        self.state.recent = {k: v for k, v in self.state.recent.items() if v >= floor}
        return _Snapshot(self.state.to_json(), self._windows - self._recorded,
                         list(self._in_flight))

    async def _save(self, snapshot: _Snapshot) -> None:
        # A failed write raises here: that state is not saved (it would lose its trace).
        await asyncio.gather(*snapshot.writes)
        if self._outlast is not None:  # follow: a checkpoint missed is taken by the next one
            with contextlib.suppress(MlflowUnavailableError):
                await self._write_state(snapshot)
            return
        await self._write_state(snapshot)

    async def _write_state(self, snapshot: _Snapshot) -> None:
        await save_state_raw(self.client, self.run_id, self.replica, snapshot.raw)
        new = sorted(snapshot.windows)
        for i in range(0, len(new), 40):  # log-batch takes 100 tags; two per window
            await self.client.set_run_tags(self.run_id, window_version_tags(self.policy,
                                                                            new[i:i + 40]))
        self._recorded.update(new)

    async def checkpoint(self) -> None:
        """Save the state (at the stream's cursor) once the tags written so far landed."""
        await self._save(self._snapshot(self.stream.cursor.cursor_ms))

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

    async def _poll_into(self, batches: asyncio.Queue[_Batch]) -> None:
        """The stream's batches, each with the cursor it left (the state to save once the
        batch is decided); waits while the queue is full, so the cursor never runs far
        ahead of the decisions."""
        async for batch in self.stream:
            if batch.connected and batch.traces:
                await batches.put((batch.traces, self.stream.cursor.cursor_ms, batch.poll))

    async def follow(self, checkpoint_every_s: float = 10.0) -> SampleStats:
        """Decide new traces as they settle until the stream is closed; the next poll runs
        while this one's traces are decided and tagged."""
        batches: asyncio.Queue[_Batch] = asyncio.Queue(self.queued_batches)
        self._outlast = Backoff(first_s=0.5, max_s=5.0)
        poller = asyncio.create_task(self._poll_into(batches))
        saving: asyncio.Task[None] | None = None
        cursor_ms = self.stream.cursor.cursor_ms
        last = time.monotonic()
        landed = True
        try:
            while True:
                if poller.done():  # closed (or failed): decide what it queued, then stop
                    if batches.empty():
                        break
                    traces, batch_cursor_ms, self.batch_poll = batches.get_nowait()
                else:
                    getter = asyncio.ensure_future(batches.get())
                    await asyncio.wait({getter, poller}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        continue
                    traces, batch_cursor_ms, self.batch_poll = getter.result()
                while len(self._in_flight) >= self.max_pending_tags:  # tagging fell behind
                    await asyncio.wait(set(self._in_flight),
                                       return_when=asyncio.FIRST_COMPLETED)
                decisions = await self.decide(traces, wait_for_tags=False)
                cursor_ms = batch_cursor_ms  # the cursor of the last batch decided
                if self.on_batch:
                    self.on_batch(decisions, self.stats)
                self._raise_failures(saving)
                if time.monotonic() - last >= checkpoint_every_s and (
                        saving is None or saving.done()):
                    saving = asyncio.create_task(self._save(self._snapshot(cursor_ms)))
                    last = time.monotonic()
            poller.result()  # a bad filter, say: raise it
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            # Every write started is awaited (bounded: the server may be gone); the last
            # state is saved only if they all landed, else the last checkpoint stands and a
            # restart decides the rest again (a trace already queued is not tagged twice).
            if self._in_flight:
                _, late = await asyncio.wait(set(self._in_flight), timeout=self.drain_s)
                for task in late:
                    task.cancel()
                landed = not late
            if saving is not None:
                await asyncio.gather(saving, return_exceptions=True)
            if landed and self._write_error is None:
                self._outlast = None  # the last save must land, or say why not
                await self._save(self._snapshot(cursor_ms))
        self._raise_failures(saving)
        if not landed:
            raise MlflowUnavailableError(
                f"tag writes still unanswered after {self.drain_s:.0f} s; the sampler state "
                "was kept at its last checkpoint (the next run decides the rest again)")
        return self.stats

    def _raise_failures(self, saving: asyncio.Task[None] | None) -> None:
        if self._write_error is not None:
            raise self._write_error
        if saving is not None and saving.done() and not saving.cancelled() \
                and saving.exception() is not None:
            raise saving.exception()  # type: ignore[misc]


WINDOW_TAG = "trace_tui.window."  # + <window_start_ms>.policy_version / .policy_sha256


def policy_sha256(policy: Policy) -> str:
    """First 16 hex of sha256 of the policy file's bytes (its fingerprint if not a file)."""
    try:
        with open(policy.path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:16]
    except OSError:
        return policy.fingerprint[:16]


def window_version_tags(policy: Policy, windows: Iterable[int]) -> dict[str, str]:
    """Run tags saying which policy version (and file hash) decided each window."""
    return window_version_tags_for(policy.version, policy_sha256(policy), windows)


def window_version_tags_for(version: str, sha: str, windows: Iterable[int]) -> dict[str, str]:
    tags = {}
    for w in windows:
        tags[f"{WINDOW_TAG}{w}.policy_version"] = version
        tags[f"{WINDOW_TAG}{w}.policy_sha256"] = sha
    return tags


def window_versions(tags: dict[str, str]) -> dict[int, tuple[str, str]]:
    """window_start_ms -> (policy version, sha256 prefix) from a policy run's tags."""
    out: dict[int, tuple[str, str]] = {}
    for key, value in tags.items():
        if key.startswith(WINDOW_TAG) and key.endswith(".policy_version"):
            w = key[len(WINDOW_TAG):-len(".policy_version")]
            if w.lstrip("-").isdigit():
                sha = tags.get(f"{WINDOW_TAG}{w}.policy_sha256", "")
                out[int(w)] = (value, sha)
    return out


def feed_outcomes(sampler: Sampler, infos: Iterable[TraceInfo], policy: str,
                  judges: Iterable[str]) -> int:
    """Past verdicts -> the sampler's Neyman variances (they only shape later windows)."""
    fed = 0
    for info in infos:
        facts = queue.SampleFacts.from_tags(info.tags, policy)
        if facts is None or facts.window_start_ms is None:
            continue
        for judge in judges:
            verdict = queue.verdict_of(info, judge)
            if verdict is not None:
                fed += sampler.observe_outcome(facts.stratum, judge, verdict.value,
                                               facts.window_start_ms)
    return fed
