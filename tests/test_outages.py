"""Outages survived the same way everywhere: a reverse proxy in front of the real MLflow
server answers 502 (as nginx does while MLflow restarts), a server accepts connections and
never answers. Reads retry within a stated budget, then report the server unavailable
(exit 3); the live stream and `traces tail` reconnect and resume without losing a trace."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.fakes import Silent, SwitchProxy
from tests.test_cli import LineReader
from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import MlflowUnavailableError
from trace_tui.core.retry import Backoff
from trace_tui.core.stream import LiveStream, StreamBatch
from trace_tui.demo.traffic import seed_bulk


@pytest.fixture
def proxy(mlflow_uri: str) -> Iterator[SwitchProxy]:
    proxy = SwitchProxy(mlflow_uri)
    yield proxy
    proxy.close()


async def test_a_short_502_is_retried_away(proxy: SwitchProxy, seeded) -> None:
    proxy.fail_next = 2
    async with MlflowClient(proxy.uri) as client:
        exp = await client.resolve_experiment(seeded.experiment_name)
    assert exp.experiment_id == seeded.experiment_id and proxy.failed == 2


async def test_a_lasting_502_is_unavailable_within_the_budget(proxy: SwitchProxy) -> None:
    proxy.failing = True
    started = time.monotonic()
    async with MlflowClient(proxy.uri) as client:
        with pytest.raises(MlflowUnavailableError, match=r"unavailable \(HTTP 502 error page\)"):
            await client.search_experiments()
    assert proxy.failed == 4  # the first try and 3 retries
    assert time.monotonic() - started < 5


async def test_writes_are_sent_once(proxy: SwitchProxy, seeded) -> None:
    proxy.fail_next = 1
    async with MlflowClient(proxy.uri) as client:
        with pytest.raises(MlflowUnavailableError):
            await client.create_assessment(seeded.trace_ids[0], "x", True)
    assert proxy.failed == 1 and proxy.passed == 0


async def test_a_server_that_never_answers_is_given_up_on_in_bounded_time() -> None:
    silent = Silent()
    try:
        started = time.monotonic()
        async with MlflowClient(silent.uri, timeout_s=1.0, retry_budget_s=2.0) as client:
            with pytest.raises(MlflowUnavailableError, match="no answer within the timeout"):
                await client.search_experiments()
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert 1.0 <= elapsed < 4.0  # read timeout 1 s, no retry starts after the 2 s budget


async def test_stream_reconnects_after_a_proxy_502_and_misses_nothing(
        proxy: SwitchProxy, mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    _, exp = fresh_experiment
    async with MlflowClient(proxy.uri, backoff=Backoff(first_s=0.05)) as client:
        stream = LiveStream(client, [exp], since_ms=int(time.time() * 1000) - 1000,
                            poll_interval_s=0.1, settle_ms=0, max_backoff_s=0.5)
        batches = aiter(stream)
        before = set(seed_bulk(mlflow_uri, exp, 3, seed=31, start_ms=int(time.time() * 1000)))
        seen: set[str] = set()
        while not before <= seen:
            batch: StreamBatch = await asyncio.wait_for(anext(batches), 30)
            seen |= {t.trace_id for t in batch.traces}
        proxy.failing = True
        down = await asyncio.wait_for(anext(batches), 30)
        assert not down.connected and "HTTP 502" in (down.error or "")
        during = set(seed_bulk(mlflow_uri, exp, 3, seed=32, start_ms=int(time.time() * 1000)))
        proxy.failing = False
        while not during <= seen:
            batch = await asyncio.wait_for(anext(batches), 30)
            seen |= {t.trace_id for t in batch.traces}
        stream.close()
    assert batch.connected


def test_tail_says_reconnecting_through_a_502_and_resumes(
        proxy: SwitchProxy, mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    name, exp = fresh_experiment
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "traces", "tail", "-x", name, "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": proxy.uri})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = LineReader(proc.stdout), LineReader(proc.stderr)
        assert "tailing experiment" in err.next(30)
        proxy.failing = True
        assert "unavailable (HTTP 502 error page); reconnecting" in err.next(30)
        down_at = time.monotonic()
        new = seed_bulk(mlflow_uri, exp, 3, seed=33, start_ms=int(time.time() * 1000))
        while time.monotonic() - down_at < 12:  # longer than the client's retry budget
            assert proc.poll() is None, "tail exited during the outage"
            time.sleep(0.2)
        proxy.failing = False
        back_at = time.monotonic()
        assert err.next(30).strip() == "trace-tui: reconnected"
        rows = [json.loads(out.next(30)) for _ in new]
        resumed_s = time.monotonic() - back_at
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert [r["trace_id"] for r in rows] == new
    assert resumed_s < 8  # the stream's backoff is capped at 5 s


async def test_explorer_shows_reconnecting_through_a_502_and_comes_back_live(
        proxy: SwitchProxy, mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    from tests.test_tui_pilot import SIZE, make_app, wait_for

    name, exp = fresh_experiment
    app = make_app(proxy.uri, name)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        proxy.failing = True
        await wait_for(pilot, lambda: app.conn_state == "reconnecting", 30, "reconnecting")
        assert "HTTP 502" in app.conn_error
        during = seed_bulk(mlflow_uri, exp, 2, seed=34, start_ms=int(time.time() * 1000))
        proxy.failing = False
        back_at = time.monotonic()
        await wait_for(pilot, lambda: app.conn_state == "live", 15, "live again")
        live_after_s = time.monotonic() - back_at
        await wait_for(pilot, lambda: {r.trace_id for r in app.buffer.rows} >= set(during),
                       30, "the traces logged during the outage")
    assert live_after_s < 8  # no `r` needed: the stream's backoff is capped at 5 s
