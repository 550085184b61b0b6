"""The PostgreSQL slice: a throwaway PostgreSQL 15 cluster, `mlflow server --workers 2` on it,
and what trace-tui does against it over real HTTP: the client's round trips, the live stream
under concurrent logging, sample -> sharded eval -> report with the shards as separate
processes, a shard killed mid-run, and `trace-tui server --backend-store-uri` itself.

Assertions go through what a user sees (the CLI's JSON and the assessments on the traces),
not through the queue's internal tag names."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PgCluster, PostgresUnavailable
from tests.test_cli import LineReader
from tests.test_evaluation import cli, seed_known_population, write_policy
from tests.test_stream import collect, make_traces
from trace_tui.core.client import MlflowClient
from trace_tui.core.stream import LiveStream, StreamBatch
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.demo.traffic import ensure_experiment, post_otlp, seed_bulk
from trace_tui.server.embedded import EmbeddedServer, free_port

JUDGES = ("quality", "safe")
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the session, started only when a test here asks for it."""
    try:
        cluster = PgCluster.start_new()
    except PostgresUnavailable as exc:
        pytest.skip(f"cannot start a PostgreSQL cluster here: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_server(pg_cluster: PgCluster,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """`mlflow server --backend-store-uri postgresql://... --workers 2` on 127.0.0.1."""
    server = EmbeddedServer(tmp_path_factory.mktemp("mlflow-pg"), workers=2,
                            backend_store_uri=pg_cluster.create_database("mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    base, stop = run_in_thread(latency_s=0.05)
    yield base
    stop()


def new_experiment(uri: str) -> str:
    return ensure_experiment(uri, f"pg-{uuid.uuid4().hex[:10]}")


async def verdicts(uri: str, exp: str) -> Counter[tuple[str, str]]:
    """Judge assessments per (trace, judge name) over the whole experiment."""
    async with MlflowClient(uri) as client:
        infos = await client.search_traces([exp])
    return Counter((i.trace_id, a.name) for i in infos for a in i.assessments
                   if a.name in JUDGES and a.source_type == "LLM_JUDGE")


def start_eval(uri: str, policy: Path, shard: str, concurrency: int = 4) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "eval", "--policy", str(policy), "--shard", shard,
         "--concurrency", str(concurrency)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, stdin=subprocess.DEVNULL, env={**os.environ, "MLFLOW_TRACKING_URI": uri})


def summary_of(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])["summary"]


# --------------------------------------------------------------------------- client


async def test_client_round_trips_on_postgres(pg_server: EmbeddedServer) -> None:
    uri = pg_server.uri
    exp = new_experiment(uri)
    ids = seed_bulk(uri, exp, 60, seed=31)
    async with MlflowClient(uri, batch_size=25, concurrency=4) as client:
        infos = await client.search_traces([exp])
        pages = [len(p) async for p in client.iter_trace_pages([exp], page_size=25)]
        errors = await client.search_traces([exp], filter_string="trace.status = 'ERROR'")
        trees = await client.batch_get_traces([*ids[:40], "tr-" + "0" * 32])

        trace_id = ids[-1]
        await client.set_trace_tag(trace_id, "reviewed", "yes")
        tagged = await client.get_trace_info(trace_id)
        await client.delete_trace_tag(trace_id, "reviewed")
        untagged = await client.get_trace_info(trace_id)
        created = await client.create_assessment(
            trace_id, "helpfulness", True, source_type="HUMAN", source_id="alice",
            rationale="clear", metadata={"k": 1})
        updated = await client.update_assessment(trace_id, created.assessment_id, value=False,
                                                 rationale="on reflection, no")
        with_assessment = await client.get_trace_info(trace_id)
        await client.delete_assessment(trace_id, created.assessment_id)
        after = await client.get_trace_info(trace_id)

    assert {i.trace_id for i in infos} == set(ids)  # search: every trace, paged by the server
    assert pages == [25, 25, 10]
    times = [i.request_time_ms for i in infos]
    assert times == sorted(times, reverse=True)
    assert errors and all(i.state == "ERROR" for i in errors)
    assert [t.trace_id for t in trees] == ids[:40]  # batchGet: order kept, unknown id left out
    assert all(t.info.tokens is not None and t.tokens == t.info.tokens for t in trees)
    assert tagged.tags["reviewed"] == "yes" and "reviewed" not in untagged.tags
    assert created.metadata == {"k": "1"} and updated.value is False
    found = [a for a in with_assessment.assessments if a.assessment_id == created.assessment_id]
    assert found and found[0].value is False and found[0].rationale == "on reflection, no"
    assert all(a.assessment_id != created.assessment_id for a in after.assessments)


# --------------------------------------------------------------------------- stream


async def test_stream_under_concurrent_logging_on_postgres(pg_server: EmbeddedServer) -> None:
    """Two producers log at once (through both server workers) while a LiveStream polls;
    every fifth trace lands children-first and gets its root later, like the SDK's export."""
    uri = pg_server.uri
    exp = new_experiment(uri)
    traces = make_traces(120, seed=32)
    want = {t[0] for t in traces}

    def produce(part: list[tuple[str, list[dict], dict]]) -> None:
        late: list[dict] = []
        for start in range(0, len(part), 10):
            spans: list[dict] = []
            for i, (_, children, root) in enumerate(part[start:start + 10]):
                spans.extend(children)
                (late if i % 5 == 0 else spans).append(root)
            post_otlp(uri, exp, spans)
            if start % 30 == 20:
                post_otlp(uri, exp, late)
                late = []
        if late:
            post_otlp(uri, exp, late)

    async with MlflowClient(uri) as client:
        stream = LiveStream(client, [exp], since_ms=int(time.time() * 1000) - 1000,
                            poll_interval_s=0.1)
        batches: list[StreamBatch] = []
        loop = asyncio.get_running_loop()
        producers = [loop.run_in_executor(None, produce, traces[k::2]) for k in (0, 1)]
        seen = await collect(stream, want, 90, batches)
        await asyncio.gather(*producers)
        extra = await stream.poll_once()  # everything has landed: nothing comes twice
    assert any(b.pending for b in batches), "in-progress traces should have been seen"
    assert len(seen) == len(set(seen)), "a trace was emitted twice"
    assert set(seen) == want
    assert extra.traces == []


# --------------------------------------------------------------------------- evaluation


async def test_sharded_eval_on_postgres_one_verdict_per_trace_and_judge(
        pg_server: EmbeddedServer, judge_url: str, tmp_path: Path) -> None:
    uri = pg_server.uri
    exp = new_experiment(uri)
    truth = seed_known_population(uri, exp, 60, seed=33)
    policy = tmp_path / "policy.toml"
    write_policy(policy, exp, judge_url, rate=1.0, judges=",".join(JUDGES))
    sample = cli("sample", "--policy", str(policy), uri=uri)
    assert sample.returncode == 0, sample.stderr
    assert json.loads(sample.stdout)["selected"] == 60

    shards = [start_eval(uri, policy, f"{i}/2") for i in range(2)]  # concurrently
    outs = [p.communicate(timeout=240) for p in shards]
    assert [p.returncode for p in shards] == [0, 0], [err[-2000:] for _, err in outs]
    done = [summary_of(out)["done"] for out, _ in outs]
    assert sum(done) == 60 and min(done) > 0  # both shards worked, no trace twice

    counts = await verdicts(uri, exp)
    assert counts == Counter({(t, j): 1 for t in truth for j in JUDGES})

    report = cli("report", "--policy", str(policy), "--format", "json", uri=uri)
    assert report.returncode == 0, report.stderr
    quality = next(j for j in json.loads(report.stdout)["judges"] if j["judge"] == "quality")
    assert quality["population"] == 60 and quality["n_judged"] == 60
    # Every trace judged: the estimate is the census pass rate.
    assert quality["estimate"] == pytest.approx(sum(truth.values()) / len(truth))


@pytest.mark.slow
async def test_killed_shard_on_postgres_never_writes_a_verdict_twice(
        pg_server: EmbeddedServer, tmp_path: Path) -> None:
    uri = pg_server.uri
    exp = new_experiment(uri)
    truth = seed_known_population(uri, exp, 40, seed=34)
    base, stop = run_in_thread(latency_s=0.25)
    try:
        policy = tmp_path / "policy.toml"
        write_policy(policy, exp, base, rate=1.0, judges=",".join(JUDGES))
        assert cli("sample", "--policy", str(policy), uri=uri).returncode == 0
        victim, other = (start_eval(uri, policy, f"{i}/2", concurrency=2) for i in range(2))
        assert victim.stdout is not None
        lines = LineReader(victim.stdout)
        for _ in range(3):  # a few traces done, the rest in flight or queued: kill it
            assert json.loads(lines.next(120))["state"] == "done"
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        _, err = other.communicate(timeout=240)
        assert other.returncode == 0, err[-2000:]
        partial = await verdicts(uri, exp)
        assert 3 * len(JUDGES) <= sum(partial.values()) < len(truth) * len(JUDGES)
        rerun = start_eval(uri, policy, "0/2")
        out, err = rerun.communicate(timeout=240)
        assert rerun.returncode == 0, err[-2000:]
        assert summary_of(out)["done"] > 0  # the kill left work behind, the rerun did it
    finally:
        stop()
    assert await verdicts(uri, exp) == Counter({(t, j): 1 for t in truth for j in JUDGES})


# --------------------------------------------------------------------------- trace-tui server


@pytest.mark.slow  # starts a second mlflow server
def test_server_command_passes_the_database_through(pg_cluster: PgCluster,
                                                    tmp_path: Path) -> None:
    """`trace-tui server --backend-store-uri postgresql://... --workers 2`: MLflow's data lands
    in that database; the URI's password is not printed, nor spread to the server processes'
    command lines (`ps`: only the command the user typed carries it)."""
    import psycopg2

    pg_cluster.create_database("cli_server")
    secret = "s3cret-pw"  # trust auth: accepted and ignored
    store = pg_cluster.uri("cli_server").replace("postgres@", f"postgres:{secret}@")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace_tui", "server", "--backend-store-uri", store,
         "--workers", "2", "--port", str(free_port())], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = LineReader(proc.stdout), LineReader(proc.stderr)
        announced = err.next(30)
        uri = out.next(120).strip()
        assert uri.startswith("http://127.0.0.1:")
        exp = ensure_experiment(uri, "made-through-trace-tui-server")
        pids = _server_pids(proc.pid)
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not [pid for pid in pids if _alive(pid)]  # SIGTERM stopped the whole server
    assert "postgres:***@" in announced and secret not in announced
    assert len(cmdlines) >= 2  # mlflow server and its workers
    assert not any(secret.encode() in c for c in cmdlines)
    with psycopg2.connect(pg_cluster.uri("cli_server")) as conn, conn.cursor() as cur:
        cur.execute("SELECT experiment_id FROM experiments WHERE name = %s",
                    ("made-through-trace-tui-server",))
        assert [str(r[0]) for r in cur.fetchall()] == [exp]


def _server_pids(leader: int) -> list[int]:
    """Every process of the server's own process group (started by trace-tui ``leader``)."""
    ps = subprocess.run(["ps", "-eo", "pid=,ppid=,pgid="], capture_output=True, text=True)
    rows = [tuple(int(x) for x in line.split()) for line in ps.stdout.splitlines()]
    children = {pid for pid, ppid, _ in rows if ppid == leader}
    groups = {pgid for pid, _, pgid in rows if pid in children}
    return [pid for pid, _, pgid in rows if pgid in groups]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; its reaper may be a PID 1 that never reaps


def test_server_command_rejects_a_bad_store_or_workers_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    cases = ((["--backend-store-uri", "http://u:hunter2@[db:5432/mlflow"], "'http://u:***@[db"),
             (["--backend-store-uri", "postgres://u:hunter2@db/x"], "'postgres://u:***@db/x'"),
             (["--backend-store-uri", "postgresql://u:hunter2@db/x", "--workers", "0"],
              "--workers: expected an integer >= 1, got '0'"))
    for args, culprit in cases:
        out = subprocess.run([sys.executable, "-m", "trace_tui", "server", *args],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 2 and culprit in out.stderr, out.stderr
        assert out.stderr.count("\n") == 1 and "hunter2" not in out.stderr
