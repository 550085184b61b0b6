"""Evaluation benchmark: `trace-tui eval` against the server's own write ceiling, on SQLite and
on PostgreSQL, in one run (same machine, same judge, same fake endpoint).

For each server (SQLite `--workers 1`, the embedded default; PostgreSQL with `--workers 1`
and `--workers 2`, a throwaway cluster from tests/postgres.py):
- write ceiling: what a judged trace costs the server, by plain REST and nothing else: one
  assessment POST + one queue-tag PATCH per trace, ``--concurrency`` in flight, on traces of
  their own; reported as traces/s and writes/s;
- `trace-tui eval --concurrency C` as a user runs it (its own process) on N fresh traces
  queued by an `always` policy, then (PostgreSQL) as 2 `--shard I/2` processes;
  throughput = judged traces per second of the slowest process's work time, plus the eval
  processes' and the server's CPU seconds per judged trace;
- optionally (``--mlflow-evaluate``) `mlflow.genai.evaluate` on the SQLite traces.

The fake OpenAI-compatible judge runs as its own process with a fixed latency (0.2 s), so
the ideal is concurrency / latency judged traces per second per process.

    .venv/bin/python bench/eval.py [--traces 400] [--concurrency 32] [--latency 0.2]
                                   [--servers sqlite,pg1,pg2] [--mlflow-evaluate]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.postgres: the throwaway cluster helper

from trace_tui.demo.traffic import ensure_experiment, seed_bulk  # noqa: E402
from trace_tui.server.embedded import EmbeddedServer, free_port  # noqa: E402

JUDGE_INSTRUCTIONS = "Is the answer in {{ outputs }} a direct answer to {{ inputs }}?"

EVALUATE_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import mlflow
    from mlflow.genai.judges import make_judge
    uri, exp, judge_url, name = sys.argv[1:5]
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=exp)  # else evaluate copies the traces
    judge = make_judge(name=name, instructions=os.environ["JUDGE_INSTRUCTIONS"],
                       model="openai:/fake-judge", feedback_value_type=bool,
                       base_url=judge_url)
    t0 = time.perf_counter()
    data = mlflow.search_traces(locations=[exp], max_results=100000)
    t1 = time.perf_counter()
    mlflow.genai.evaluate(data=data, scorers=[judge])
    t2 = time.perf_counter()
    print(json.dumps({"traces": len(data), "search_s": t1 - t0, "evaluate_s": t2 - t1}))
""")


def policy_text(exp: str, judge_url: str) -> str:
    return textwrap.dedent(f"""
        name = "bench-eval"
        [source]
        experiment_ids = ["{exp}"]
        [[judge]]
        name = "direct"
        scorer = "make_judge"
        instructions = "{JUDGE_INSTRUCTIONS}"
        feedback_value_type = "bool"
        model = "openai:/fake-judge"
        base_url = "{judge_url}"
        [[policy]]
        name = "all"
        type = "always"
        judges = ["direct"]
    """)


async def write_ceiling(uri: str, exp: str, n: int, concurrency: int) -> float:
    """Trace-tag writes per second at ``concurrency`` (kept for bench/postgres.py)."""
    from trace_tui.core.client import MlflowClient

    async with MlflowClient(uri, concurrency=concurrency) as client:
        ids = [i.trace_id for i in await client.search_traces([exp], max_results=n)]
        gate = asyncio.Semaphore(concurrency)

        async def one(trace_id: str) -> None:
            async with gate:
                await client.set_trace_tag(trace_id, "bench.write", "1")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in ids))
        return len(ids) / (time.perf_counter() - t0)


async def judged_trace_ceiling(uri: str, exp: str, concurrency: int) -> tuple[float, float]:
    """(traces/s, writes/s) of the writes one judged trace costs, by plain REST: an
    LLM_JUDGE assessment and a queue tag per trace, ``concurrency`` traces in flight."""
    from trace_tui.core.client import MlflowClient

    async with MlflowClient(uri, concurrency=concurrency) as client:
        ids = [i.trace_id for i in await client.search_traces([exp], max_results=100_000)]
        gate = asyncio.Semaphore(concurrency)
        meta = {"trace_tui.policy": "bench-ceiling", "trace_tui.stratum": "all"}

        async def one(trace_id: str) -> None:
            async with gate:
                await client.create_assessment(trace_id, "direct", True,
                                               source_type="LLM_JUDGE", source_id="fake-judge",
                                               rationale="bench", metadata=meta)
                await client.set_trace_tag(trace_id, "trace_tui.queue.bench-ceiling", "done")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in ids))
        rate = len(ids) / (time.perf_counter() - t0)
        return rate, 2 * rate


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(cpu.get(p, 0.0) for p in tree)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class EvalRun:
    done: int
    wall_s: float
    work_s: float  # the slowest process's own work time
    eval_cpu_s: float
    server_cpu_s: float

    @property
    def rate(self) -> float:
        return self.done / self.work_s if self.work_s else 0.0


def run_eval(uri: str, policy: Path, shards: int, concurrency: int, env: dict[str, str],
             server_pid: int | None = None) -> EvalRun:
    """`trace-tui eval` in ``shards`` processes at once; server CPU only with its pid."""
    cmd = [sys.executable, "-m", "trace_tui", "eval", "--policy", str(policy),
           "--concurrency", str(concurrency)]
    run_env = {**env, "MLFLOW_TRACKING_URI": uri}
    cpu0 = children_cpu_s()
    server0 = tree_cpu_s(server_pid) if server_pid is not None else 0.0
    t0 = time.perf_counter()
    procs = [subprocess.Popen([*cmd, "--shard", f"{i}/{shards}"], env=run_env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(shards)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    done, work = 0, 0.0
    for proc, (out, err) in zip(procs, outs, strict=True):
        if proc.returncode:
            raise SystemExit(f"trace-tui eval failed: {err.strip()[-2000:]}")
        summary = json.loads(out.strip().splitlines()[-1])["summary"]
        done += summary["done"]
        work = max(work, summary["elapsed_s"])
    server_cpu = tree_cpu_s(server_pid) - server0 if server_pid is not None else 0.0
    return EvalRun(done, wall, work, children_cpu_s() - cpu0, server_cpu)


def queue_policy(uri: str, exp: str, name: str, judge_url: str, tmp: Path,
                 env: dict[str, str]) -> Path:
    policy = tmp / f"policy-{name}.toml"
    policy.write_text(policy_text(exp, judge_url).replace('"bench-eval"', f'"{name}"'))
    sample = subprocess.run([sys.executable, "-m", "trace_tui", "sample", "--policy",
                             str(policy)], env={**env, "MLFLOW_TRACKING_URI": uri},
                            capture_output=True, text=True)
    if sample.returncode:
        raise SystemExit(f"trace-tui sample failed: {sample.stderr.strip()[-2000:]}")
    return policy


def bench_server(label: str, server: EmbeddedServer, args: argparse.Namespace,
                 judge_url: str, env: dict[str, str], tmp: Path,
                 shard_counts: tuple[int, ...]) -> dict[str, float]:
    """Ceiling and eval figures on one server; returns {run label: traces/s}."""
    uri = server.uri
    assert server.process is not None
    pid = server.process.pid
    seed_bulk(uri, ensure_experiment(uri, "bench-warm-up"), 40, seed=2)  # warm the workers
    ceiling_exp = ensure_experiment(uri, "bench-ceiling")
    seed_bulk(uri, ceiling_exp, args.traces, seed=5)
    traces_s, writes_s = asyncio.run(judged_trace_ceiling(uri, ceiling_exp, args.concurrency))
    print(f"{label}: write ceiling {traces_s:.1f} judged traces/s = {writes_s:.0f} writes/s "
          f"(assessment POST + tag PATCH per trace, {args.concurrency} in flight); "
          f"load {os.getloadavg()[0]:.1f}")
    out = {"ceiling": traces_s}
    for shards in shard_counts:
        name = f"bench-{label.replace('/', '-')}-{shards}"
        exp = ensure_experiment(uri, name)
        seed_bulk(uri, exp, args.traces, seed=10 + shards)
        policy = queue_policy(uri, exp, name, judge_url, tmp, env)
        run = run_eval(uri, policy, shards, args.concurrency, env, pid)
        how = "1 process" if shards == 1 else f"{shards} shard processes"
        print(f"{label}: trace-tui eval, {how}: {run.done} traces, {run.rate:.1f}/s over "
              f"{run.work_s:.1f} s of work ({run.wall_s:.1f} s wall) = "
              f"{run.rate / traces_s:.0%} of the write ceiling; CPU per judged trace: eval "
              f"{1000 * run.eval_cpu_s / max(1, run.done):.1f} ms, server "
              f"{1000 * run.server_cpu_s / max(1, run.done):.1f} ms; load "
              f"{os.getloadavg()[0]:.1f}")
        out[f"eval{shards}"] = run.rate
    return out


def mlflow_evaluate(uri: str, exp: str, judge_url: str, concurrency: int,
                    env: dict[str, str], tmp: Path) -> None:
    script = tmp / "evaluate.py"
    script.write_text(EVALUATE_SCRIPT)
    for label, workers in (("defaults", None), (f"{concurrency} workers", concurrency)):
        run_env = {**env, "MLFLOW_TRACKING_URI": uri}
        if workers:
            run_env["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = str(workers)
        res = subprocess.run([sys.executable, str(script), uri, exp, judge_url,
                              f"direct_{workers or 'default'}"], env=run_env,
                             capture_output=True, text=True)
        if res.returncode:
            print(f"mlflow.genai.evaluate ({label}) failed: {res.stderr.strip()[-400:]}")
            continue
        doc = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"mlflow.genai.evaluate ({label}): {doc['traces']} traces in "
              f"{doc['evaluate_s']:.2f} s (+{doc['search_s']:.2f} s search_traces) = "
              f"{doc['traces'] / doc['evaluate_s']:.1f}/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--servers", default="sqlite,pg1,pg2",
                        help="comma list of sqlite, pg1 (PostgreSQL, 1 worker), pg2")
    parser.add_argument("--mlflow-evaluate", action="store_true",
                        help="also time mlflow.genai.evaluate on the SQLite server")
    parser.add_argument("--skip-mlflow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OPENAI_API_KEY": "sk-bench",
           "MLFLOW_MODEL_CATALOG_URI": "", "JUDGE_INSTRUCTIONS": JUDGE_INSTRUCTIONS}
    env.pop("MLFLOW_TRACKING_URI", None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    port = free_port()
    judge = subprocess.Popen([sys.executable, "-m", "trace_tui.demo.fake_judge",
                              "--port", str(port), "--latency", str(args.latency)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    judge_url = f"http://127.0.0.1:{port}/v1/chat/completions"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.traces} "
          f"traces per run; fake judge {args.latency * 1000:.0f} ms; ideal per eval process "
          f"{args.concurrency / args.latency:.0f} traces/s")
    results: dict[str, dict[str, float]] = {}
    try:
        if "sqlite" in servers:
            with EmbeddedServer(tmp / "sqlite") as sqlite:
                results["sqlite"] = bench_server("sqlite/1w", sqlite, args, judge_url, env,
                                                 tmp, (1,))
                if args.mlflow_evaluate:
                    exp = ensure_experiment(sqlite.uri, "bench-sqlite-1w-1")
                    mlflow_evaluate(sqlite.uri, exp, judge_url, args.concurrency, env, tmp)
        pg_workers = [int(s[2:]) for s in servers if s.startswith("pg")]
        if pg_workers:
            from tests.postgres import PgCluster

            with PgCluster.start_new(durable=True) as cluster:
                for workers in pg_workers:
                    store = cluster.create_database(f"mlflow_w{workers}")
                    with EmbeddedServer(tmp / f"pg{workers}", workers=workers,
                                        backend_store_uri=store) as pg:
                        results[f"pg{workers}"] = bench_server(
                            f"postgresql/{workers}w", pg, args, judge_url, env, tmp, (1, 2))
    finally:
        judge.terminate()
        judge.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    base = results.get("sqlite", {}).get("eval1")
    for key, figures in results.items():
        if key == "sqlite" or not base:
            continue
        best = max(v for k, v in figures.items() if k.startswith("eval"))
        print(f"{key}: best trace-tui eval {best:.1f}/s = {best / base:.2f}x SQLite's "
              f"{base:.1f}/s (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
