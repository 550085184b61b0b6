"""Benchmark of the policy designer: its window of 7 days of 10 traces/s, and preview time.

    python bench/designer.py                       # 7 days x 10 traces/s = 6,048,000 traces
    python bench/designer.py --days 1 --rate 2     # quick look
    python bench/designer.py --json results.json

1. Window: synthetic traces (10 routes x 4 tiers x 5 versions, Zipf sizes, 5% errors, past
   verdicts on 2% of them) streamed through `WindowBuilder`: the exact field profile of
   every trace plus a uniform reservoir of `--cap` records. Traces per second of build
   (records are generated outside the timing).
2. Preview: `preview()` of designer drafts over that window (what each keypress in the
   designer recomputes, off the event loop), median of --repeats, in the process and in
   the designer's worker process (the first call there includes its start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samplers import parse_policy
from samplers.synthetic import synthetic_population
from trace_tui.design import Draft, WindowBuilder
from trace_tui.design.preview import preview
from trace_tui.design.worker import PreviewProcess

CHUNK = 200_000
DRAFTS = {
    "uniform (no key)": (),
    "route": ("tags.route",),
    "route x tier": ("tags.route", "tags.tier"),
    "route x tier x version": ("tags.route", "tags.tier", "tags.version"),
    "route x latency bucket": ("tags.route", "bucket(duration_ms, [500, 1000, 2000])"),
}


def build_window(total: int, rate: float, cap: int, verdict_share: float):
    builder = WindowBuilder(cap=cap)
    start_ms = 1_700_002_800_000
    build_s = 0.0
    done = 0
    seed = 0
    while done < total:
        n = min(CHUNK, total - done)
        span_ms = int(n / rate * 1000)
        pop = synthetic_population(n, start_ms=start_ms, span_ms=span_ms, seed=seed)
        rng = np.random.default_rng(seed)
        judged = rng.random(n) < verdict_share
        passed = rng.random(n) < pop.pass_prob
        verdicts = [{"relevance": bool(p)} if j else None
                    for j, p in zip(judged, passed, strict=True)]
        t = time.perf_counter()
        for rec, v in zip(pop.records, verdicts, strict=True):
            builder.add(rec, v)
        build_s += time.perf_counter() - t
        done += n
        start_ms += span_ms
        seed += 1
        print(f"  {done:,} / {total:,} traces", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    t = time.perf_counter()
    window = builder.build()
    build_s += time.perf_counter() - t
    return window, build_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--rate", type=float, default=10.0, help="traces per second")
    ap.add_argument("--cap", type=int, default=20_000, help="records kept for previews")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    total = int(args.days * 86_400 * args.rate)
    print(f"designer benchmark: {total:,} traces ({args.days:g} days x {args.rate:g}/s), "
          f"cap {args.cap:,}, {platform.python_version()}, {os.cpu_count()} cpus")
    window, build_s = build_window(total, args.rate, args.cap, 0.02)
    print(f"window: built in {build_s:.1f} s ({total / build_s:,.0f} traces/s), "
          f"{len(window.profile.fields)} candidate fields, {window.profile.judged:,} judged")
    results: dict[str, dict[str, float]] = {}
    process = PreviewProcess(window)
    try:
        for label, keys in DRAFTS.items():
            text = Draft(name="bench", window="1h", budget=200, key_fields=keys).to_toml()
            policy = parse_policy(text)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                result = preview(policy, window)
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            process.compute(text, "<bench>", 0.9)
            worker_s = time.perf_counter() - t
            results[label] = {"median_s": statistics.median(times), "max_s": max(times),
                              "worker_s": worker_s, "strata": len(result.rows),
                              "half_width": result.half_width,
                              "uniform_half_width": result.uniform_half_width}
            print(f"preview {label:<24} {len(result.rows):>4} strata  median "
                  f"{statistics.median(times) * 1000:6.0f} ms  max {max(times) * 1000:6.0f} ms"
                  f"  worker {worker_s * 1000:6.0f} ms  ±{result.half_width:.2%} vs uniform "
                  f"±{result.uniform_half_width:.2%}")
    finally:
        process.close()
    if args.json:
        args.json.write_text(json.dumps({"traces": total, "cap": args.cap,
                                         "build_s": build_s, "previews": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
