"""Evaluation benchmark: judge throughput of `trace-tui eval` vs the ideal and vs
`mlflow.genai.evaluate`, same server, same traces, same judge, same fake endpoint.

- N traces (default 500) seeded through OTLP and queued by an `always` policy;
- the fake OpenAI-compatible judge runs as its own process with a fixed latency (0.2 s);
- ideal throughput = concurrency / latency judge calls per second;
- `trace-tui eval --concurrency C` runs as a user runs it (its own process);
- `mlflow.genai.evaluate(data=<search_traces frame>, scorers=[judge])` runs in its own process,
  once with defaults (MLFLOW_GENAI_EVAL_MAX_WORKERS=10) and once with C workers.

    .venv/bin/python bench/eval.py [--traces 500] [--concurrency 32] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from trace_tui.demo.traffic import ensure_experiment, seed_bulk
from trace_tui.server.embedded import EmbeddedServer, free_port

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
    """The server's own limit: trace-tag writes per second at the worker's concurrency."""
    from trace_tui.core.client import MlflowClient

    async with MlflowClient(uri) as client:
        ids = [i.trace_id for i in await client.search_traces([exp], max_results=n)]
        gate = asyncio.Semaphore(concurrency)

        async def one(trace_id: str) -> None:
            async with gate:
                await client.set_trace_tag(trace_id, "bench.write", "1")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in ids))
        return len(ids) / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=1, help="MLflow server workers")
    parser.add_argument("--skip-mlflow", action="store_true", help="only time trace-tui eval")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "OPENAI_API_KEY": "sk-bench",
           "MLFLOW_MODEL_CATALOG_URI": "", "JUDGE_INSTRUCTIONS": JUDGE_INSTRUCTIONS}
    tmp = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    server = EmbeddedServer(tmp / "mlflow", workers=args.workers)
    uri = server.start()
    env["MLFLOW_TRACKING_URI"] = uri
    port = free_port()
    judge = subprocess.Popen([sys.executable, "-m", "trace_tui.demo.fake_judge",
                              "--port", str(port), "--latency", str(args.latency)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    judge_url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        exp = ensure_experiment(uri, "bench-eval")
        seed_bulk(uri, exp, args.traces, seed=3)
        policy = tmp / "policy.toml"
        policy.write_text(policy_text(exp, judge_url))
        cli = [sys.executable, "-m", "trace_tui"]
        sample = subprocess.run([*cli, "sample", "--policy", str(policy)], env=env,
                                capture_output=True, text=True)
        if sample.returncode:
            raise SystemExit(f"trace-tui sample failed: {sample.stderr.strip()}")
        queued = json.loads(sample.stdout)["queued"]
        ideal = args.concurrency / args.latency
        print(f"{queued} traces queued; fake judge latency {args.latency * 1000:.0f} ms; "
              f"ideal at concurrency {args.concurrency}: {ideal:.0f} judge calls/s")

        t0 = time.perf_counter()
        out = subprocess.run([*cli, "eval", "--policy", str(policy), "--concurrency",
                              str(args.concurrency)], env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"trace-tui eval failed: {out.stderr.strip()[-2000:]}")
        wall = time.perf_counter() - t0
        summary = json.loads(out.stdout.strip().splitlines()[-1])["summary"]
        ours = summary["done"] / summary["elapsed_s"]
        print(f"trace-tui eval --concurrency {args.concurrency}: {summary['done']} traces in "
              f"{summary['elapsed_s']:.2f} s of work ({wall:.2f} s wall incl. start-up) = "
              f"{ours:.1f}/s, {ours / ideal:.0%} of ideal (target >= 85%)")
        writes = asyncio.run(write_ceiling(uri, exp, min(300, args.traces), args.concurrency))
        # Each judged trace costs the server two writes: the assessment and the queue tag.
        print(f"server write ceiling: {writes:.0f} writes/s = {writes / 2:.0f} traces/s at 2 "
              f"writes per trace; trace-tui eval reaches {ours / (writes / 2):.0%} of it")
        if args.skip_mlflow:
            return 0
        script = tmp / "evaluate.py"
        script.write_text(EVALUATE_SCRIPT)
        for label, workers in (("defaults", None), (f"{args.concurrency} workers",
                                                    args.concurrency)):
            run_env = dict(env)
            if workers:
                run_env["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = str(workers)
            res = subprocess.run([sys.executable, str(script), uri, exp, judge_url,
                                  f"direct_{workers or 'default'}"], env=run_env,
                                 capture_output=True, text=True)
            if res.returncode:
                print(f"mlflow.genai.evaluate ({label}) failed: {res.stderr.strip()[-400:]}")
                continue
            doc = json.loads(res.stdout.strip().splitlines()[-1])
            rate = doc["traces"] / doc["evaluate_s"]
            print(f"mlflow.genai.evaluate ({label}): {doc['traces']} traces in "
                  f"{doc['evaluate_s']:.2f} s (+{doc['search_s']:.2f} s search_traces) = "
                  f"{rate:.1f}/s; trace-tui eval is {ours / rate:.2f}x")
    finally:
        judge.terminate()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
