"""Big-trace benchmark: one 10,000-span trace opened from a real MLflow server.

Anchors, measured in the same run and alternated with the rest (SDK-free):
- bare: one aiohttp GET of the trace-data endpoint (``get-trace-artifact``), bytes only
- bare traces/get: the same spans through ``traces/get`` (the client's old path), once

Measured: the client's ``get_trace`` (fetch + parse + decode into a span tree) with no cache,
and with a warm span cache (a new client each time, as a new process would); then the real
explorer in a pseudo-terminal: Enter on the trace -> the tree's first rows written to the
terminal, with an empty cache, and again in a new process with the cache warm. Each explorer
is then quit with ``q`` (as a user leaves it), which lets its pending span-cache write land.

    .venv/bin/python bench/open_trace.py [--spans 10000] [--rounds 3] [--no-pty]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pty
import re
import select
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.big_trace import seed_big_trace
from trace_tui.core.client import ARTIFACT_PATH, MlflowClient
from trace_tui.core.span_cache import SpanCache
from trace_tui.demo.traffic import ensure_experiment
from trace_tui.server.embedded import EmbeddedServer

SIZE = (160, 50)
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")


async def bare(uri: str, path: str, params: dict[str, str]) -> float:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.get(uri + path,
                                                               params=params) as resp:
        await resp.read()
    return time.perf_counter() - t0


async def client_open(uri: str, trace_id: str, cache: SpanCache | None) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with MlflowClient(uri, span_cache=cache if cache is not None else False) as client:
        tree = await client.get_trace(trace_id)
        elapsed = time.perf_counter() - t0
    return elapsed, len(tree.spans)


def pty_open(uri: str, experiment: str, home: Path, n_spans: int,
             timeout_s: float = 120.0) -> float:
    """Seconds from Enter on the only trace to the trace view's rows on the terminal."""
    import fcntl
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update({"TERM": "xterm-256color", "COLORTERM": "truecolor",
                           "XDG_CACHE_HOME": str(home / "cache"),
                           "XDG_CONFIG_HOME": str(home / "config"),
                           "XDG_DATA_HOME": str(home / "data"),
                           "TRACE_TUI_REFRESH_INTERVAL_S": "30",
                           "MLFLOW_DISABLE_TELEMETRY": "true"})
        os.execv(sys.executable, [sys.executable, "-m", "trace_tui", "--tracking-uri", uri,
                                  "-x", experiment, "--no-mouse"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))

    def read_until(done, quiet_s: float, limit_s: float,  # type: ignore[no-untyped-def]
                   first_s: float | None = None) -> float:
        """Read the terminal until ``done(text)`` (escape sequences stripped) holds, or
        with ``quiet_s`` until nothing came for that long; the time of the last chunk.
        TimeoutError when no byte came within ``first_s``."""
        buf, last, end = b"", time.perf_counter(), time.perf_counter() + limit_s
        start = last
        while time.perf_counter() < end:
            if first_s is not None and not buf and time.perf_counter() - start > first_s:
                raise TimeoutError("no reaction")
            ready, _, _ = select.select([fd], [], [], 0.01)
            if ready:
                try:
                    buf += os.read(fd, 1 << 16)
                except OSError:
                    break
                last = time.perf_counter()
                if not quiet_s and done(ANSI.sub(b"", buf)):
                    return last
            elif quiet_s and time.perf_counter() - last > quiet_s:
                return last
        Path(os.environ.get("BENCH_PTY_DUMP", "/dev/null")).write_bytes(buf)
        raise TimeoutError(f"the explorer did not show what was expected: {buf[-300:]!r}")

    try:
        read_until(lambda text: b"agent_loop" in text, 0, timeout_s)  # the list shows it
        read_until(None, 1.0, timeout_s)  # ... and has settled
        marks = (f"{n_spans} spans".encode(), f"{n_spans:,} spans".encode())
        for _ in range(5):  # an Enter before the table has focus is lost: press it again
            t0 = time.perf_counter()
            os.write(fd, b"\r")
            try:  # the screen reacts at once to an Enter it got
                painted = read_until(lambda text: any(m in text for m in marks), 0,
                                     timeout_s, first_s=3.0)
            except TimeoutError as exc:
                if str(exc) == "no reaction":
                    continue
                raise
            quit_gracefully(pid, fd)
            return painted - t0
        raise TimeoutError("the explorer did not react to Enter")
    finally:  # close the pty first: a child writing to an unread pty would never exit
        os.close(fd)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def quit_gracefully(pid: int, fd: int, limit_s: float = 15.0) -> None:
    """``q``, as a user leaves: the explorer closes its client, which lets span-cache
    writes still pending land (a process killed at once could lose them)."""
    os.write(fd, b"q")
    end = time.perf_counter() + limit_s
    while time.perf_counter() < end:
        if select.select([fd], [], [], 0.05)[0]:
            with contextlib.suppress(OSError):
                os.read(fd, 1 << 16)
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
    raise TimeoutError("the explorer did not quit on q")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-pty", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-open-"))
    server = EmbeddedServer(tmp / "mlflow", workers=args.workers)
    server.start()
    try:
        uri = server.uri
        exp = ensure_experiment(uri, "bench-open")
        trace_id = seed_big_trace(uri, exp, args.spans)
        params = {"request_id": trace_id}
        asyncio.run(bare(uri, ARTIFACT_PATH, params))  # warm the server
        rows: dict[str, list[float]] = {k: [] for k in (
            "bare", "client_cold", "client_cached", "pty_cold", "pty_cached")}
        for r in range(args.rounds):
            rows["bare"].append(asyncio.run(bare(uri, ARTIFACT_PATH, params)))
            rows["client_cold"].append(asyncio.run(client_open(uri, trace_id, None))[0])
            cache = SpanCache(tmp / f"cache-{r}", 512 << 20)
            asyncio.run(client_open(uri, trace_id, cache))  # fills it
            rows["client_cached"].append(asyncio.run(client_open(uri, trace_id, cache))[0])
            if not args.no_pty:
                home = tmp / f"home-{r}"
                rows["pty_cold"].append(pty_open(uri, exp, home, args.spans))
                # a new process, the cache warm
                rows["pty_cached"].append(pty_open(uri, exp, home, args.spans))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s"
                                                 for k, v in rows.items() if v),
                  file=sys.stderr, flush=True)
        old = asyncio.run(bare(uri, "/api/3.0/mlflow/traces/get",
                               {"trace_id": trace_id, "allow_partial": "true"}))
        anchor = median(rows["bare"])
        print(f"\n{args.spans} spans, {args.rounds} rounds, medians; anchor = bare "
              f"get-trace-artifact fetch {anchor:.3f} s\n")
        print("| path | seconds | ratio to bare fetch |\n|---|---|---|")
        print(f"| bare `traces/get` (old client path, 1 run) | {old:.2f} | {old / anchor:.1f}x |")
        for key, values in rows.items():
            if values:
                print(f"| {key} | {median(values):.3f} | {median(values) / anchor:.2f}x |")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
