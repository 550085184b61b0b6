"""Scale-out benchmark: MLflow on PostgreSQL behind several workers vs the embedded SQLite
server, same machine, same traces, same fake judge, one invocation.

For each backend (SQLite with --workers 1, the embedded default; PostgreSQL 15 with
--workers W):
- start-up: (PostgreSQL) initdb + pg_ctl start, CREATE DATABASE, then `mlflow server` until
  /health answers (schema migrations included);
- ingest: N demo traces through OTLP (seed_bulk, 4 threads), after a 40-trace warm-up;
- write ceiling: concurrent trace-tag writes at the eval concurrency;
- eval: N traces queued by an `always` policy, judged by `trace-tui eval` as 1 process, then
  (on N fresh traces) as S `--shard I/S` processes started together. Throughput is judged
  traces per second of wall time from the first start to the last exit (process start-up
  included), and per second of the slowest shard's own work time.

The PostgreSQL cluster is durable (fsync on), unlike the test suite's throwaway one.

    .venv/bin/python bench/postgres.py [--traces 300] [--shards 2] [--workers 2]
                                       [--concurrency 16] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.postgres: the throwaway cluster helper

from eval import policy_text, run_eval, write_ceiling  # noqa: E402  (bench/eval.py)

from tests.postgres import PgCluster  # noqa: E402
from trace_tui.demo.traffic import ensure_experiment, seed_bulk  # noqa: E402
from trace_tui.server.embedded import EmbeddedServer, free_port  # noqa: E402


def bench_backend(label: str, uri: str, args: argparse.Namespace, judge_url: str,
                  env: dict[str, str], tmp: Path) -> None:
    cli = [sys.executable, "-m", "trace_tui"]
    # The first requests to fresh server workers are slow (lazy imports, store set-up): time
    # them apart, so the ingest figure below is the steady state.
    t0 = time.perf_counter()
    seed_bulk(uri, ensure_experiment(uri, "bench-pg-warm-up"), 40, seed=2)
    print(f"{label}: warm-up, first 40 traces into fresh workers: "
          f"{time.perf_counter() - t0:.1f} s")
    for shards in (1, args.shards):
        exp = ensure_experiment(uri, f"bench-pg-{shards}")
        t0 = time.perf_counter()
        seed_bulk(uri, exp, args.traces, seed=3 + shards)
        ingest = args.traces / (time.perf_counter() - t0)
        if shards == 1:
            print(f"{label}: ingest {args.traces} traces via OTLP: {ingest:.1f} traces/s")
            writes = asyncio.run(write_ceiling(uri, exp, args.traces, args.concurrency))
            print(f"{label}: write ceiling {writes:.0f} trace-tag writes/s at "
                  f"{args.concurrency} in flight = {writes / 2:.0f} traces/s at 2 writes each")
        policy = tmp / f"policy-{label.replace('/', '-')}-{shards}.toml"
        policy.write_text(policy_text(exp, judge_url).replace('"bench-eval"',
                                                               f'"bench-pg-{shards}"'))
        sample = subprocess.run([*cli, "sample", "--policy", str(policy)], capture_output=True,
                                text=True, env={**env, "MLFLOW_TRACKING_URI": uri})
        if sample.returncode:
            raise SystemExit(f"trace-tui sample failed: {sample.stderr.strip()[-2000:]}")
        run = run_eval(uri, policy, shards, args.concurrency, env)
        done, wall, work = run.done, run.wall_s, run.work_s
        how = "1 process" if shards == 1 else f"{shards} shard processes"
        print(f"{label}: eval, {how} x concurrency {args.concurrency}: {done} traces in "
              f"{wall:.1f} s wall = {done / wall:.1f} traces/s ({done / work:.1f}/s over "
              f"the slowest shard's {work:.1f} s of work)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=300, help="traces per eval run")
    parser.add_argument("--shards", type=int, default=2, help="eval shard processes")
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL server workers")
    parser.add_argument("--concurrency", type=int, default=16, help="per eval process")
    parser.add_argument("--latency", type=float, default=0.2, help="fake judge seconds")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OPENAI_API_KEY": "sk-bench",
           "MLFLOW_MODEL_CATALOG_URI": ""}
    env.pop("MLFLOW_TRACKING_URI", None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    port = free_port()
    judge = subprocess.Popen([sys.executable, "-m", "trace_tui.demo.fake_judge",
                              "--port", str(port), "--latency", str(args.latency)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    judge_url = f"http://127.0.0.1:{port}/v1/chat/completions"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; fake judge "
          f"{args.latency * 1000:.0f} ms; ideal per eval process "
          f"{args.concurrency / args.latency:.0f} traces/s")
    try:
        t0 = time.perf_counter()
        with EmbeddedServer(tmp / "sqlite") as sqlite:
            print(f"sqlite: mlflow server --workers 1 healthy in "
                  f"{time.perf_counter() - t0:.1f} s")
            bench_backend("sqlite", sqlite.uri, args, judge_url, env, tmp)

        t0 = time.perf_counter()
        with PgCluster.start_new(durable=True) as cluster:
            t1 = time.perf_counter()
            store = cluster.create_database("mlflow")
            t2 = time.perf_counter()
            with EmbeddedServer(tmp / "postgres", workers=args.workers,
                                backend_store_uri=store) as pg:
                t3 = time.perf_counter()
                print(f"postgresql: initdb + start {t1 - t0:.1f} s, CREATE DATABASE "
                      f"{t2 - t1:.2f} s, mlflow server --workers {args.workers} healthy "
                      f"(migrations included) {t3 - t2:.1f} s; total {t3 - t0:.1f} s")
                bench_backend(f"postgresql/{args.workers}w", pg.uri, args, judge_url, env, tmp)
    finally:
        judge.terminate()
        judge.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
