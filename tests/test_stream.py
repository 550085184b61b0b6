"""The live stream under concurrent logging, with in-progress traces and a server restart."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid

import pytest

from trace_tui.core.client import MlflowClient
from trace_tui.core.retry import Backoff
from trace_tui.core.stream import LiveStream, StreamBatch
from trace_tui.demo.traffic import plan_request, plan_to_otlp_spans, post_otlp, seed_bulk
from trace_tui.server.embedded import EmbeddedServer

from .counting_proxy import counting_proxy

SEARCH = "/api/3.0/mlflow/traces/search"


def make_traces(n: int, seed: int) -> list[tuple[str, list[dict], dict]]:
    """(trace id, child spans, root span) for n demo requests starting now."""
    rng = random.Random(seed)
    out = []
    now_ns = time.time_ns()
    for i in range(n):
        trace_hex = uuid.uuid4().hex  # unique across the suite
        spans = plan_to_otlp_spans(plan_request(rng, i), trace_hex, now_ns + i * 1_000_000, rng)
        root = next(s for s in spans if "parentSpanId" not in s)
        out.append(("tr-" + trace_hex, [s for s in spans if s is not root], root))
    return out


async def collect(stream: LiveStream, want: set[str], timeout_s: float,
                  batches: list[StreamBatch]) -> list[str]:
    seen: list[str] = []

    async def run() -> None:
        async for batch in stream:
            batches.append(batch)
            seen.extend(t.trace_id for t in batch.traces)
            if want <= set(seen):
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout_s)
    return seen


async def test_concurrent_logging_no_miss_no_repeat(mlflow_uri: str,
                                                    fresh_experiment: tuple[str, str]) -> None:
    _, exp = fresh_experiment
    traces = make_traces(150, seed=3)
    want = {t[0] for t in traces}

    def produce() -> None:
        # Some traces arrive whole; every fifth arrives children-first (IN_PROGRESS on the
        # server) and gets its root a few batches later, as the SDK's async export does.
        late_roots: list[dict] = []
        for start in range(0, len(traces), 10):
            chunk = traces[start:start + 10]
            spans: list[dict] = []
            for i, (_, children, root) in enumerate(chunk):
                spans.extend(children)
                (late_roots if i % 5 == 0 else spans).append(root)
            post_otlp(mlflow_uri, exp, spans)
            if start % 30 == 20:
                post_otlp(mlflow_uri, exp, late_roots)
                late_roots = []
        if late_roots:
            post_otlp(mlflow_uri, exp, late_roots)

    async with MlflowClient(mlflow_uri) as client:
        stream = LiveStream(client, [exp], since_ms=int(time.time() * 1000) - 1000,
                            poll_interval_s=0.1)
        batches: list[StreamBatch] = []
        producer = asyncio.get_running_loop().run_in_executor(None, produce)
        seen = await collect(stream, want, 90, batches)
        await producer
        assert any(b.pending for b in batches), "in-progress traces should have been seen"
        # One more poll after everything landed must not repeat anything.
        extra = await stream.poll_once()
    assert len(seen) == len(set(seen)), "a trace was emitted twice"
    assert set(seen) == want
    assert extra.traces == []


async def test_filter_is_combined_with_the_cursor(mlflow_uri: str,
                                                  fresh_experiment: tuple[str, str]) -> None:
    _, exp = fresh_experiment
    traces = make_traces(40, seed=5)
    post_otlp(mlflow_uri, exp, [s for _, children, root in traces for s in [*children, root]])
    async with MlflowClient(mlflow_uri) as client:
        errors = {i.trace_id for i in await client.search_traces(
            [exp], filter_string="trace.status = 'ERROR'")}
        stream = LiveStream(client, [exp], filter_string="trace.status = 'OK'",
                            since_ms=int(time.time() * 1000) - 60_000, settle_ms=0)
        batch = await stream.poll_once()
        skipping = LiveStream(client, [exp], since_ms=int(time.time() * 1000),
                              skip_existing=True)
        first = await skipping.poll_once()
    got = {t.trace_id for t in batch.traces}
    assert got == {t[0] for t in traces} - errors
    assert first.traces == []  # tail semantics: only traces finishing after the start


async def test_steady_polls_read_the_edge_and_sweeps_find_late_finishers(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    """Polls at steady state cost one search each, however full the look-back window is (it
    used to be re-read whole every poll: one search per 500 rows, seconds on a busy server);
    a trace that first shows up behind the edge is still emitted, once, by the next sweep."""
    _, exp = fresh_experiment
    now_ms = int(time.time() * 1000)
    # 520 traces over the last 100 s to 22 s: two search pages in the look-back window, a
    # few dozen rows at the edge.
    old = set(seed_bulk(mlflow_uri, exp, 520, seed=21, start_ms=now_ms - 100_000,
                        spacing_ms=150.0))
    async with counting_proxy(mlflow_uri) as proxy, MlflowClient(proxy.uri) as client:
        stream = LiveStream(client, [exp], since_ms=now_ms - 110_000, lookback_ms=120_000,
                            settle_ms=0, sweep_every=5)
        first = await stream.poll_once()
        assert {t.trace_id for t in first.traces} == old and proxy.counts[SEARCH] == 2
        proxy.reset()
        steady = [await stream.poll_once() for _ in range(3)]
        assert [b.traces for b in steady] == [[], [], []]
        assert proxy.counts[SEARCH] == 3, "a steady poll re-read the whole look-back window"
        late = seed_bulk(mlflow_uri, exp, 1, seed=22, start_ms=int(time.time() * 1000) - 60_000)
        fresh = seed_bulk(mlflow_uri, exp, 3, seed=23, start_ms=int(time.time() * 1000))
        emitted: list[str] = []
        for _ in range(stream.sweep_every):
            emitted += [t.trace_id for t in (await stream.poll_once()).traces]
    assert sorted(emitted) == sorted(late + fresh), "lost or repeated after the sweep"


async def test_edge_polls_keep_their_interval_while_a_sweep_is_slow(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    """A periodic sweep re-reads the whole look-back, page after page (seconds each on a server
    saturated by ingest); meanwhile the edge polls go on: a trace that finishes while a sweep
    is stuck is emitted by the next edge poll, not after the sweep. The sweep still finds late
    finishers, and nothing is emitted twice."""
    _, exp = fresh_experiment
    now_ms = int(time.time() * 1000)
    # 520 traces over the last 100 s to 22 s: the look-back is two search pages, the edge one.
    old = set(seed_bulk(mlflow_uri, exp, 520, seed=31, start_ms=now_ms - 100_000,
                        spacing_ms=150.0))
    async with counting_proxy(mlflow_uri) as proxy, MlflowClient(proxy.uri) as client:
        stream = LiveStream(client, [exp], since_ms=now_ms - 110_000, lookback_ms=120_000,
                            settle_ms=0, poll_interval_s=0.2, sweep_every=2)
        batches: list[StreamBatch] = []
        first = await collect(stream, old, 60, batches)  # the first sweep: both pages
        assert sorted(first) == sorted(old)
        # From now on a sweep's second page waits until released (a slow sweep); the edge
        # poll reads one page and is never held.
        proxy.hold = lambda path, body: path == SEARCH and b'"page_token"' in body
        polling = asyncio.ensure_future(collect(stream, set(), 120, batches))
        await asyncio.wait_for(proxy.held.wait(), 30)  # a sweep is stuck on its second page
        fresh = seed_bulk(mlflow_uri, exp, 1, seed=32, start_ms=int(time.time() * 1000))
        polling.cancel()
        during = await collect(stream, set(fresh), 30, batches)
        assert set(fresh) <= set(during), "the edge polls waited for the sweep"
        assert not proxy.release.is_set()
        # Released, the sweeps go on: a trace behind the edge is found by one, once.
        late = seed_bulk(mlflow_uri, exp, 1, seed=33, start_ms=int(time.time() * 1000) - 60_000)
        proxy.release.set()
        after = await collect(stream, set(late), 60, batches)
    emitted = first + during + after
    assert set(late) <= set(after), "the sweep did not find a late finisher"
    assert len(emitted) == len(set(emitted)), "a trace was emitted twice"


async def test_a_settled_trace_is_emitted_when_it_comes_due_not_a_poll_later(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    """A finished trace is held ``settle_ms`` from first sight, then the stream polls again
    at once: it does not wait out the poll interval (120 s here)."""
    _, exp = fresh_experiment
    now_ms = int(time.time() * 1000)
    ids = set(seed_bulk(mlflow_uri, exp, 5, seed=24, start_ms=now_ms))
    async with counting_proxy(mlflow_uri) as proxy, MlflowClient(proxy.uri) as client:
        stream = LiveStream(client, [exp], since_ms=now_ms - 5_000, lookback_ms=60_000,
                            settle_ms=300, poll_interval_s=120.0)
        batches: list[StreamBatch] = []
        seen = await collect(stream, ids, 60, batches)
    assert sorted(seen) == sorted(ids), "not emitted before the next poll (120 s)"
    assert proxy.counts[SEARCH] == 2  # the first sight, then the poll when they came due


@pytest.mark.slow
async def test_stream_survives_a_server_restart(server_handle: EmbeddedServer,
                                                fresh_experiment: tuple[str, str]) -> None:
    _, exp = fresh_experiment
    uri = server_handle.uri
    async with MlflowClient(uri, read_retries=1, backoff=Backoff(first_s=0.05),
                            timeout_s=5) as client:
        stream = LiveStream(client, [exp], since_ms=int(time.time() * 1000) - 1000,
                            poll_interval_s=0.1, max_backoff_s=0.5)
        before = make_traces(5, seed=8)
        post_otlp(uri, exp, [s for _, c, r in before for s in [*c, r]])
        batches: list[StreamBatch] = []
        seen = await collect(stream, {t[0] for t in before}, 30, batches)
        assert set(seen) == {t[0] for t in before}
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, server_handle.stop)
        down = await anext(aiter(stream))
        assert not down.connected and "unreachable" in (down.error or "")
        await loop.run_in_executor(None, server_handle.start)
        after = make_traces(5, seed=9)
        post_otlp(uri, exp, [s for _, c, r in after for s in [*c, r]])
        seen_after = await collect(stream, {t[0] for t in after}, 60, batches)
    assert set(seen_after) == {t[0] for t in after}
    assert any(b.connected for b in batches[-3:])
