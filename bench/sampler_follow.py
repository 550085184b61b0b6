"""Does `trace-tui sample --follow` keep up with production ingest?

Producers deliver demo traces through OTLP as fast as the server takes them (4 threads,
batches of 100, finished traces stamped "now") for ``--duration`` seconds, while
`trace-tui sample --follow` runs as a user runs it (its own process) on the same experiment
with a stratified policy (``tags.route``, 5% target rate). Reported:

- ingest: traces/s the server sustained while the sampler ran (the anchor);
- decision lag: for the k-th trace, the time the sampler's decided count reached k minus the
  time the producers had delivered k traces (both counts are monotone, so this is the queue
  delay of an in-order pipeline; a trace is delivered when its OTLP request returns);
  p50/p99/max against the target of two poll intervals. The sampler prints its counts as it
  decides (samplers from before the pipelined ``follow`` printed them after tagging);
- tag lag: for the j-th selected trace, selected count reaching j to queued count reaching j
  (the wait for its queue tag, seen at the resolution of the sampler's lines), and the
  seconds one trace's tag writes take;
- the decision lag split by the poll whose batch decided the trace (samplers whose lines say
  ``sweep``): a sweep poll, the two edge polls after one, the other edge polls; and the
  seconds of the sweeps run beside the edge polls (``sweep_s``);
- decided == ingested once producers stop (waited for, bounded);
- the sampler's CPU share: its CPU seconds / wall seconds, and per decided trace.

    .venv/bin/python bench/sampler_follow.py [--duration 120] [--probe sweep|edge]

``--probe`` also runs, in the bench's own process, a LiveStream with the sampler's settings
(120 s look-back, 2 s polls) on the same experiment and reports what its polls cost: searches,
rows and seconds per poll. ``sweep`` re-reads the whole look-back every poll (the stream
before the edge poll), ``edge`` is the stream as it is. It is a second poller on the server,
so compare lags only between runs without it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eval import tree_cpu_s  # noqa: E402

from tests.test_evaluation import write_policy  # noqa: E402
from trace_tui.core.client import MlflowClient  # noqa: E402
from trace_tui.core.stream import LiveStream  # noqa: E402
from trace_tui.demo.traffic import ensure_experiment, seed_bulk  # noqa: E402
from trace_tui.server.embedded import EmbeddedServer  # noqa: E402

if TYPE_CHECKING:  # not at run time: the bench also runs on trees from before PollStats
    from trace_tui.core.stream import PollStats

POLL_S = 2.0  # SampleRunner's default poll interval


def produce(uri: str, exp: str, until: float, log: list[tuple[float, int]]) -> None:
    """Rounds of 4 parallel OTLP requests of 100 finished traces until ``until``; log
    (time, cumulative) as each request returns. (Logging once a round, as this bench did
    before, dated every trace at the slowest request's return: the other requests' traces
    were visible seconds earlier, and the lag read seconds short.)"""
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def deliver(seed: int) -> None:
        now_ms = int(time.time() * 1000) - 2_000
        n = len(seed_bulk(uri, exp, 100, seed=seed, start_ms=now_ms, spacing_ms=2.5,
                          workers=1))
        with lock:
            log.append((time.monotonic(), log[-1][1] + n))

    seed = 1000
    with ThreadPoolExecutor(4) as pool:
        while time.monotonic() < until:
            list(pool.map(deliver, range(seed, seed + 4)))
            seed += 4


def probe(uri: str, exp: str, sweep_every: int, stop: threading.Event,
          out: list[PollStats]) -> None:
    """Poll as the sampler does (without deciding) and record each poll's cost."""

    async def run() -> None:
        async with MlflowClient(uri) as client:
            stream = LiveStream(client, [exp], since_ms=int(time.time() * 1000) - 600_000,
                                lookback_ms=120_000, poll_interval_s=POLL_S,
                                sweep_every=sweep_every)
            while not stop.is_set():
                await stream.poll_once()
                out.append(stream.last_poll)
                await asyncio.sleep(POLL_S)

    asyncio.run(run())


def report_probe(mode: str, polls: list[PollStats]) -> None:
    if not polls:
        print(f"probe ({mode}): no poll completed")
        return
    n = len(polls)
    searches = sum(p.searches for p in polls)
    seconds = sum(p.seconds for p in polls)
    print(f"probe ({mode}): {n} polls, {searches / n:.1f} searches/poll (max "
          f"{max(p.searches for p in polls)}), {sum(p.rows for p in polls) / n:.0f} rows/poll, "
          f"{seconds / n:.2f} s/poll (max {max(p.seconds for p in polls):.2f}), "
          f"{seconds / max(1, searches):.2f} s/search; {sum(p.sweep for p in polls)} sweeps")


def read_decisions(proc: subprocess.Popen[str], log: list[tuple[float, int]],
                   lines: list[tuple[float, dict[str, float]]]) -> None:
    """The sampler's JSON lines: (time, decided) in ``log``, every line in ``lines``."""
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "decided" in doc:
            now = time.monotonic()
            log.append((now, int(doc["decided"])))
            lines.append((now, doc))


def tag_lags(lines: list[tuple[float, dict[str, float]]], after: float) -> list[float]:
    """For the j-th trace selected after ``after``: when the queued count reached j minus
    when the selected count did (the selected traces' tags land in about the order they
    were decided). Unknown where the sampler prints no line after its last tags land."""
    selected = [(t, int(d["selected"])) for t, d in lines]
    queued = [(t, int(d["queued"])) for t, d in lines]
    first = next((c for t, c in selected if t >= after), None)
    if first is None or not selected:
        return []
    out = []
    for j in range(first + 1, selected[-1][1] + 1):
        t_sel, t_q = time_reached(selected, j), time_reached(queued, j)
        if t_sel is not None and t_q is not None:
            out.append(max(0.0, t_q - t_sel))
    return sorted(out)


def drain(stream: IO[str], tail: deque[str]) -> None:
    """Read the sampler's stderr as it comes: unread, a full pipe (64 KiB) blocks the sampler
    on its next write, and it stops deciding while looking idle."""
    for line in stream:
        tail.append(line)


def time_reached(log: list[tuple[float, int]], k: int) -> float | None:
    counts = [c for _, c in log]
    i = bisect.bisect_left(counts, k)
    return log[i][0] if i < len(log) else None


def by_kind(lines: list[tuple[float, dict[str, float]]], decided: list[tuple[float, int]],
            ingested: list[tuple[float, int]], pre: int, total: int, t0: float) -> None:
    """Batches and the lag of their traces, split by the poll that emitted them: one that
    swept the look-back or an edge poll (samplers whose lines carry ``sweep``)."""
    if not any("sweep" in d for _, d in lines):
        return
    kinds: dict[str, tuple[list[float], list[float]]] = {
        "sweep": ([], []), "edge, the 2 after a sweep": ([], []), "edge, others": ([], [])}
    prev, since_sweep = pre, 99
    for (t, doc), (_, count) in zip(lines, decided, strict=False):
        if t < t0 or "sweep" not in doc:
            prev = max(prev, count)
            continue
        since_sweep = 0 if doc["sweep"] else since_sweep + 1
        polls, lags = kinds["sweep" if doc["sweep"] else "edge, the 2 after a sweep"
                            if since_sweep <= 2 else "edge, others"]
        polls.append(float(doc["poll_s"]))
        for k in range(prev + 1, min(count, total) + 1):
            t_in = time_reached(ingested, k)
            if t_in is not None:
                lags.append(max(0.0, t - t_in))
        prev = max(prev, count)
    sweeps = sorted({float(d["sweep_s"]) for t, d in lines if t >= t0 and d.get("sweep_s")})
    if sweeps:
        print(f"sweeps beside the edge polls (distinct ones on the lines): {len(sweeps)}, "
              f"{sweeps[len(sweeps) // 2]:.2f} s p50, {sweeps[-1]:.2f} s max")
    for kind, (polls, lags) in kinds.items():
        if not polls:
            print(f"{kind} polls: no batch")
            continue
        polls.sort()
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else float("nan")
        p50 = lags[len(lags) // 2] if lags else float("nan")
        print(f"{kind} polls: {len(polls)} batches, poll p50 {polls[len(polls) // 2]:.2f} s, "
              f"max {polls[-1]:.2f} s; their {len(lags)} traces' lag p50 {p50:.2f} s, "
              f"p99 {p99:.2f} s, max {lags[-1] if lags else float('nan'):.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of ingest")
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument("--probe", choices=["sweep", "edge"], default=None,
                        help="also measure each poll's cost (a second poller; see above)")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-follow-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    try:
        with EmbeddedServer(tmp / "sqlite") as server:
            uri = server.uri
            seed_bulk(uri, ensure_experiment(uri, "warm-up"), 40, seed=2)
            exp = ensure_experiment(uri, "follow")
            policy = tmp / "policy.toml"
            write_policy(policy, exp, "http://127.0.0.1:9/v1", rate=0.05)
            sampler = subprocess.Popen(
                [sys.executable, "-m", "trace_tui", "sample", "--policy", str(policy),
                 "--follow", "--since", "10m"], env={**env, "MLFLOW_TRACKING_URI": uri},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            decided: list[tuple[float, int]] = []
            lines: list[tuple[float, dict[str, float]]] = []
            reader = threading.Thread(target=read_decisions, args=(sampler, decided, lines),
                                      daemon=True)
            reader.start()
            errors: deque[str] = deque(maxlen=40)
            assert sampler.stderr is not None
            threading.Thread(target=drain, args=(sampler.stderr, errors), daemon=True).start()
            # 100 traces before the clock starts: once they are decided the sampler is up
            # and polling (it prints a line per batch with new traces only).
            pre = len(seed_bulk(uri, exp, 100, seed=999, start_ms=int(time.time() * 1000)
                                - 5_000, spacing_ms=10.0))
            start_deadline = time.monotonic() + 120
            while ((not decided or decided[-1][1] < pre) and sampler.poll() is None
                   and time.monotonic() < start_deadline):
                time.sleep(0.2)
            if not decided or decided[-1][1] < pre:
                raise SystemExit(f"the sampler did not start: {''.join(errors)[-2000:]}"
                                 if sampler.poll() is not None else "the sampler did not "
                                 f"decide the first {pre} traces within 120 s")
            ingested: list[tuple[float, int]] = [(time.monotonic(), pre)]
            polls: list[PollStats] = []
            stop_probe = threading.Event()
            if args.probe:
                threading.Thread(target=probe, daemon=True, args=(
                    uri, exp, 1 if args.probe == "sweep" else 10, stop_probe, polls)).start()
            cpu0, t0 = tree_cpu_s(sampler.pid), time.monotonic()
            produce(uri, exp, t0 + args.duration, ingested)
            stop_probe.set()
            ingest_s = time.monotonic() - t0
            total = ingested[-1][1]
            produced = total - pre
            deadline = time.monotonic() + args.drain_timeout
            while (not decided or decided[-1][1] < total) and time.monotonic() < deadline:
                time.sleep(0.2)
            wall = time.monotonic() - t0
            cpu = tree_cpu_s(sampler.pid) - cpu0
            sampler.terminate()
            sampler.wait(timeout=60)
            if not decided or decided[-1][1] < total:  # say why, e.g. the sampler died
                print("sampler stderr (tail):", "".join(errors)[-1500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    final = decided[-1][1] if decided else 0
    # A trace never decided has waited at least until the end of the drain: count that lower
    # bound rather than leaving it out (leaving it out reported "met" for a sampler that
    # decided 200 of 900).
    lags, undecided = [], 0
    for k in range(pre + 1, total + 1):
        t_in, t_dec = time_reached(ingested, k), time_reached(decided, k)
        if t_in is None:
            continue
        if t_dec is None:
            undecided += 1
        lags.append(max(0.0, (t0 + wall if t_dec is None else t_dec) - t_in))
    lags.sort()

    def pct(q: float) -> float:
        return lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")

    print(f"ingest: {produced} traces in {ingest_s:.1f} s = {produced / ingest_s:.1f} traces/s "
          f"(OTLP, 4 producer threads, as fast as the server takes them)")
    print(f"decided {final} of {total} ingested ({'==' if final == total else '!='})")
    at_least = f" (at least: {undecided} never decided)" if undecided else ""
    print(f"decision lag: p50 {pct(0.5):.2f} s, p99 {pct(0.99):.2f} s, max {pct(1.0):.2f} s"
          f"{at_least}; target p99 < {2 * POLL_S:.0f} s (two poll intervals): "
          f"{'met' if pct(0.99) < 2 * POLL_S and not undecided else 'not met'}")
    cores = os.cpu_count() or 1
    print(f"sampler CPU: {cpu:.1f} s over {wall:.1f} s = {cpu / wall:.0%} of one core, "
          f"{cpu / wall / cores:.0%} of the machine's {cores}; "
          f"{1000 * cpu / max(1, final):.2f} ms per decided trace; "
          f"load {os.getloadavg()[0]:.1f}")
    tags = tag_lags(lines, t0)
    if tags:
        print(f"tag lag (selected -> its queue tag written, as far as the sampler's lines "
              f"show): p50 {tags[len(tags) // 2]:.2f} s, p99 "
              f"{tags[min(len(tags) - 1, int(0.99 * len(tags)))]:.2f} s over {len(tags)}")
    last = next((d for _, d in reversed(lines) if "tag_s" in d), {})
    if "tag_s" in last and last.get("queued"):
        print(f"tag writes: {last['queued']:.0f} traces tagged (3 calls each), "
              f"{1000 * last['tag_s'] / last['queued']:.0f} ms per trace")
    times = [t for t, d in lines if t >= t0 and "poll_s" in d]
    if len(times) > 1:
        gaps = sorted(b - a for a, b in itertools.pairwise(times))
        print(f"time between the sampler's batches: p50 {gaps[len(gaps) // 2]:.2f} s, "
              f"max {gaps[-1]:.2f} s")
    polls_s = sorted(float(d["poll_s"]) for t, d in lines if "poll_s" in d and t >= t0)
    if polls_s:
        print(f"sampler's last search before each batch: p50 {polls_s[len(polls_s) // 2]:.2f} s"
              f", max {polls_s[-1]:.2f} s over {len(polls_s)} batches")
    by_kind(lines, decided, ingested, pre, total, t0)
    if args.probe:
        report_probe(args.probe, polls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
