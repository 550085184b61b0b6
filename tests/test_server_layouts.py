"""sample -> eval -> report on every MLflow server layout users run, through the CLI.

Three extra real servers, started once for the module and in parallel: run artifacts in a
local directory the server does not proxy (``--default-artifact-root DIR``, the common
self-hosted setup), proxied artifacts (``--artifacts-destination DIR``), and an artifact
root nobody here can write (``s3://`` without credentials). The sampler's state must not
depend on any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.test_cli import LineReader
from tests.test_evaluation import cli, policy_traces, seed_known_population, state_of, write_policy
from trace_tui.core.client import MlflowClient
from trace_tui.core.model import TraceInfo
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.demo.traffic import ensure_experiment
from trace_tui.evaluation import queue, sampling
from trace_tui.server.embedded import EmbeddedServer

LAYOUTS = {
    "local-root": lambda d: ["--default-artifact-root", str(d / "mlruns")],
    "proxied": lambda d: ["--artifacts-destination", str(d / "artifacts")],
    "unwritable-root": lambda d: ["--default-artifact-root", "s3://nonexistent-bucket/x"],
}


class LayoutServer(EmbeddedServer):
    """The embedded server with its artifact flags replaced by one layout's."""

    def __init__(self, data_dir: Path, layout: str) -> None:
        super().__init__(data_dir)
        self.layout = layout

    def command(self) -> list[str]:
        cmd = super().command()
        at = cmd.index("--artifacts-destination")
        return cmd[:at] + LAYOUTS[self.layout](self.data_dir) + cmd[at + 2:]


@pytest.fixture(scope="module")
def layout_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LayoutServer]]:
    servers = {name: LayoutServer(tmp_path_factory.mktemp(f"layout-{name}"), name)
               for name in LAYOUTS}
    with ThreadPoolExecutor(len(servers)) as pool:
        started = [pool.submit(s.start) for s in servers.values()]
        errors = [f.exception() for f in started]
    try:
        if any(errors):
            raise next(e for e in errors if e)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    base, stop = run_in_thread(latency_s=0.02)
    yield base
    stop()


@pytest.mark.parametrize("layout", list(LAYOUTS))
async def test_sample_eval_report_on_every_layout(layout: str, layout_servers, judge_url,
                                                  tmp_path: Path) -> None:
    uri = layout_servers[layout].uri
    exp = ensure_experiment(uri, f"layout-{layout}")
    truth = seed_known_population(uri, exp, 60, seed=21)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, judge_url, rate=0.5, judges="quality")

    sample = cli("sample", "--policy", str(policy_file), uri=uri)
    assert sample.returncode == 0, sample.stderr
    stats = json.loads(sample.stdout)
    assert stats["decided"] == 60 and 0 < stats["selected"] == stats["queued"]
    again = cli("sample", "--policy", str(policy_file), uri=uri)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["decided"] == 0  # the saved cursor was read back

    evaluated = cli("eval", "--policy", str(policy_file), uri=uri)
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout.strip().splitlines()[-1])["summary"]
    assert summary["done"] == stats["selected"] and summary["failed"] == 0

    report = cli("report", "--policy", str(policy_file), "--format", "json", uri=uri)
    assert report.returncode == 0, report.stderr
    quality = json.loads(report.stdout)["judges"][0]
    assert quality["population"] == 60 and quality["n_judged"] == stats["selected"]
    assert quality["ci_low"] <= sum(truth.values()) / 60 <= quality["ci_high"]
    infos = await policy_traces(uri, exp, name)
    assert all(state_of(i, name) == queue.DONE for i in infos)


async def test_state_saved_by_earlier_versions_is_still_read(layout_servers, judge_url,
                                                             tmp_path: Path) -> None:
    """Old data: a state-main.json artifact (proxied layout) and the single-policy tags."""
    uri = layout_servers["proxied"].uri
    exp = ensure_experiment(uri, "legacy-state")
    seed_known_population(uri, exp, 30, seed=22)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, judge_url, rate=1.0, judges="quality")
    from samplers import load_policy

    policy = load_policy(policy_file)
    async with MlflowClient(uri) as client:
        # What an earlier version left: state as an artifact, traces tagged the old way.
        run_id = await sampling.policy_run(client, exp, policy)
        runner = sampling.SampleRunner(client, policy, [exp], run_id,
                                       await sampling.load_state(client, run_id, policy, "main"),
                                       "main", since_ms=0)
        seen: dict[str, TraceInfo] = {}

        async def all_settled() -> None:  # fresh traces settle first: the stream's own waits
            async with contextlib.aclosing(aiter(runner.stream)) as batches:
                async for batch in batches:
                    seen.update((i.trace_id, i) for i in batch.traces)
                    if len(seen) >= 30:
                        return

        await asyncio.wait_for(all_settled(), timeout=60)
        assert len(seen) == 30
        infos = sorted(seen.values(), key=lambda i: (i.request_time_ms, i.trace_id))
        decisions = [runner.sampler.decide(r)
                     for r in await sampling.records_for(client, policy, infos)]
        for d in decisions:
            facts = queue.SampleFacts(policy=name, stratum=d.stratum, probability=d.probability,
                                      rule=d.rule, weight=d.weight,
                                      window_start_ms=d.window_start_ms, judges=dict(d.judges))
            sample = json.loads(facts.tags()[next(iter(facts.tags()))])
            old = {queue.POLICY: name, queue.STRATUM: d.stratum,
                   queue.PROBABILITY: repr(d.probability),
                   queue.SAMPLE: json.dumps({k: sample[k] for k in
                                             ("rule", "weight", "window", "judges")}),
                   queue.QUEUE: queue.QUEUED}
            for key, value in old.items():
                await client.set_trace_tag(d.trace_id, key, value)
        runner.state.cursor_ms = runner.stream.cursor.cursor_ms
        runner.state.recent = {i.trace_id: i.request_time_ms for i in infos}
        await client.upload_artifact(run_id, "state-main.json", runner.state.to_json())
        await client.set_run_tag(run_id, sampling.REPLICAS_TAG, "main")

    again = cli("sample", "--policy", str(policy_file), uri=uri)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["decided"] == 0  # resumed from the artifact's cursor
    evaluated = cli("eval", "--policy", str(policy_file), uri=uri)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["summary"]["done"] == 30
    report = cli("report", "--policy", str(policy_file), "--format", "json", uri=uri)
    assert report.returncode == 0, report.stderr
    quality = json.loads(report.stdout)["judges"][0]
    assert quality["population"] == 30 and quality["n_judged"] == 30
    infos = await policy_traces(uri, exp, name)
    assert len(infos) == 30 and all(i.tags[queue.QUEUE] == queue.DONE for i in infos)


@pytest.mark.slow
async def test_eval_follow_waits_for_a_restarted_server(layout_servers, tmp_path: Path) -> None:
    server = layout_servers["local-root"]
    uri = server.uri
    exp = ensure_experiment(uri, "follow-restart")
    seed_known_population(uri, exp, 12, seed=23)
    base, stop_judge = run_in_thread(latency_s=0.02)
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, base, rate=1.0, judges="quality")
    assert cli("sample", "--policy", str(policy_file), uri=uri).returncode == 0
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    worker = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "eval", "--policy", str(policy_file), "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL)
    try:
        assert worker.stdout is not None and worker.stderr is not None
        out, err = LineReader(worker.stdout), LineReader(worker.stderr)
        for _ in range(12):
            assert json.loads(out.next(120))["state"] == "done"
        server.stop()
        assert "reconnecting" in err.next(60)
        # Without --follow the same outage is an exit 3, in bounded time.
        started = time.monotonic()
        down = cli("eval", "--policy", str(policy_file), uri=uri, timeout=120)
        assert down.returncode == 3 and "Traceback" not in down.stderr
        assert time.monotonic() - started < 60
        assert worker.poll() is None  # still waiting, well past the old ~20 s exit
        server.start()
        assert err.next(60).strip() == "trace-tui: reconnected"
        seed_known_population(uri, exp, 6, seed=24)
        assert cli("sample", "--policy", str(policy_file), uri=uri).returncode == 0
        for _ in range(6):  # the traces queued after the restart get judged too
            assert json.loads(out.next(120))["state"] == "done"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        stop_judge()
    infos = await policy_traces(uri, exp, name)
    assert len(infos) == 18 and all(state_of(i, name) == queue.DONE for i in infos)
