"""Fetch benchmark: every trace of an experiment, with spans, three ways, same server.

1. ``mlflow.search_traces(..., return_type="list")`` (the SDK: pages of 100 + batchGet x10)
2. trace-tui's client: search pages of 500, then concurrent chunked ``batchGet``, decoded into
   span trees (tokens rolled up, offsets computed)
3. bare concurrent ``batchGet`` calls that only read the bytes: the server's own limit
4. the client with the span cache: a first fetch into an empty cache, then a second fetch
   of the same traces (infos fresh from the search, spans from the cache)

Runs alternate (SDK, client, bare, SDK, ...) so drift on a shared machine hits all three.

    .venv/bin/python bench/fetch.py [--traces 2000] [--rounds 3] [--tracking-uri URI]
    (add --skip-sdk to leave out the slow SDK runs)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from trace_tui.core.client import MlflowClient
from trace_tui.core.span_cache import SpanCache
from trace_tui.demo.traffic import ensure_experiment, seed_bulk
from trace_tui.server.embedded import EmbeddedServer


def run_sdk(uri: str, exp: str) -> int:
    import mlflow

    mlflow.set_tracking_uri(uri)
    traces = mlflow.search_traces(locations=[exp], return_type="list", max_results=1_000_000)
    return len(traces)


async def run_client(uri: str, exp: str, batch: int, conc: int,
                     cache: SpanCache | None = None) -> int:
    async with MlflowClient(uri, batch_size=batch, concurrency=conc,
                            span_cache=cache if cache is not None else False) as client:
        infos = await client.search_traces([exp])
        trees = await client.batch_get_traces(infos)
    return sum(len(t.spans) > 0 for t in trees)


async def run_bare(uri: str, ids: list[str], batch: int, conc: int) -> int:
    gate = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession() as session:
        async def one(chunk: list[str]) -> int:
            async with gate, session.get(
                    f"{uri}/api/3.0/mlflow/traces/batchGet",
                    params=[("trace_ids", t) for t in chunk]) as resp:
                return len(await resp.read())

        sizes = await asyncio.gather(*(one(ids[i:i + batch])
                                       for i in range(0, len(ids), batch)))
    return sum(sizes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="ids per batchGet call")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tracking-uri", help="use this server instead of a fresh one")
    parser.add_argument("--skip-sdk", action="store_true", help="leave out mlflow.search_traces")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn workers of the fresh server (the embedded default is 1)")
    args = parser.parse_args()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

    server = None
    uri = args.tracking_uri
    if not uri:
        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="bench-fetch-")),
                                workers=args.workers)
        uri = server.start()
    try:
        exp = ensure_experiment(uri, f"bench-fetch-{args.traces}")
        t0 = time.perf_counter()
        ids = seed_bulk(uri, exp, args.traces, seed=1)
        print(f"seeded {len(ids)} traces in {time.perf_counter() - t0:.1f} s via OTLP")
        times: dict[str, list[float]] = {"sdk": [], "client": [], "bare": [],
                                         "cache_first": [], "cache_second": []}
        for r in range(args.rounds):
            t = time.perf_counter()
            n_sdk = len(ids) if args.skip_sdk else run_sdk(uri, exp)
            times["sdk"].append(time.perf_counter() - t)
            t = time.perf_counter()
            n_client = asyncio.run(run_client(uri, exp, args.batch, args.concurrency))
            times["client"].append(time.perf_counter() - t)
            t = time.perf_counter()
            size = asyncio.run(run_bare(uri, ids, args.batch, args.concurrency))
            times["bare"].append(time.perf_counter() - t)
            cache = SpanCache(Path(tempfile.mkdtemp(prefix="bench-cache-")), 1 << 30)
            for key in ("cache_first", "cache_second"):
                t = time.perf_counter()
                n_cached = asyncio.run(run_client(uri, exp, args.batch, args.concurrency, cache))
                times[key].append(time.perf_counter() - t)
                assert n_cached == len(ids), (key, n_cached)
            assert n_sdk == n_client == len(ids), (n_sdk, n_client, len(ids))
            print(f"round {r + 1}: sdk {times['sdk'][-1]:.2f} s, client "
                  f"{times['client'][-1]:.2f} s, bare batchGet {times['bare'][-1]:.2f} s "
                  f"({size / 1e6:.1f} MB), cached client first {times['cache_first'][-1]:.2f}"
                  f" s, second {times['cache_second'][-1]:.2f} s ({cache.hits} hits)")
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nmedian of {args.rounds} rounds, {len(ids)} traces (batch {args.batch}, "
              f"concurrency {args.concurrency}, server workers {args.workers}):")
        for name, label in (("sdk", "mlflow.search_traces"), ("client", "trace-tui client"),
                            ("bare", "bare batchGet (no decoding)")):
            if name != "sdk" or not args.skip_sdk:
                print(f"  {label:<30} {med[name]:7.2f} s  {len(ids) / med[name]:7.0f} "
                      "traces/s")
        if not args.skip_sdk:
            print(f"  speed-up vs mlflow.search_traces: {med['sdk'] / med['client']:.2f}x "
                  "(target >= 3x)")
        print(f"  share of bare batchGet throughput: {med['bare'] / med['client']:.0%} "
              "(target >= 80%)")
        print(f"  span cache: first fetch {med['cache_first']:.2f} s, second "
              f"{med['cache_second']:.2f} s: {med['cache_first'] / med['cache_second']:.1f}x "
              "faster (target >= 5x)")
    finally:
        if server:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
