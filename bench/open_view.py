"""In-process profile of opening a big trace in the explorer (no server, no terminal).

Two 10,000-span traces (MLflow-native spans, as the trace-data endpoint and the span cache
give them) served by ``StaticTraceSource``; the app runs under ``App.run_test`` at 160x50.
After the list is shown and idle, each trace is opened in turn with ``go_to_trace`` and
timed to the trace view's first paint with its tree (``painted_at``): wall time, process
CPU time (both threads: the decode runs in one), and when the tree was in. The first open
of a process is the one the pty benchmark (bench/open_trace.py) measures.

    .venv/bin/python bench/open_view.py [--opens 4] [--profile N] [--server]

``--profile N`` prints a cProfile (main thread) of the N-th open (0-based).
``--server``: one 10,000-span trace on a fresh embedded MLflow server, opened through the
app's own client with the span cache warm (filled by another client first, as by an
earlier process): every open is the warm re-open the pty benchmark times in a new process,
with the info request, the cache read and the tree build in it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.big_trace import big_trace_payload
from trace_tui.config.settings import Settings
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.sources import StaticTraceSource


async def run(opens: int, profile: int | None,
              server: tuple[str, str, str] | None = None) -> list[tuple[float, float, float]]:
    kwargs: dict[str, Any]
    if server is None:
        first = big_trace_payload(10_000)
        second = big_trace_payload(10_000, seed=7, trace_hex="7eed" * 8)
        second["trace_info"]["request_time"] = "2026-01-01T12:00:05.000Z"
        ids = [first["trace_info"]["trace_id"], second["trace_info"]["trace_id"]]
        uri, kwargs = "static://", {"source": StaticTraceSource([first, second])}
    else:
        uri, experiment, trace_id = server
        ids, kwargs = [trace_id], {"experiment": experiment}
    app = TraceExplorerApp(uri, settings=Settings(theme="textual-dark"), persist_settings=False,
                           mouse=False, **kwargs)
    out: list[tuple[float, float, float]] = []
    async with app.run_test(size=(160, 50)) as pilot:
        while len(app.buffer) < len(ids):
            await pilot.pause(0.02)
        await pilot.pause(1.0)  # the list painted and idle, as a user looking at it
        for k in range(opens):
            trace_id = ids[k % len(ids)]
            prof = cProfile.Profile() if k == profile else None
            t0, c0 = time.perf_counter(), time.process_time()
            if prof is not None:
                prof.enable()
            app.go_to_trace(trace_id)
            while True:
                view = app._trace_view
                if (view is not None and view.trace_id == trace_id
                        and view.painted_at is not None):
                    break
                await asyncio.sleep(0.001)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if prof is not None:
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
            assert view.data_at is not None
            out.append((wall, cpu, view.data_at - t0))
            await pilot.pause(0.3)
            await pilot.press("escape")
            await pilot.pause(0.3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opens", type=int, default=4)
    ap.add_argument("--profile", type=int, default=None)
    ap.add_argument("--server", action="store_true")
    args = ap.parse_args(argv)
    if not args.server:
        rows = asyncio.run(run(args.opens, args.profile))
    else:
        from bench.big_trace import seed_big_trace
        from trace_tui.core.client import MlflowClient
        from trace_tui.demo.traffic import ensure_experiment
        from trace_tui.server.embedded import EmbeddedServer

        tmp = Path(tempfile.mkdtemp(prefix="bench-open-view-"))
        os.environ["TRACE_TUI_CACHE_DIR"] = str(tmp / "spans")
        server = EmbeddedServer(tmp / "mlflow", workers=2)
        server.start()
        try:
            exp = ensure_experiment(server.uri, "bench-open-view")
            trace_id = seed_big_trace(server.uri, exp, 10_000)

            async def warm() -> None:
                async with MlflowClient(server.uri) as client:  # the cache of the env dir
                    await client.get_trace(trace_id)

            asyncio.run(warm())
            rows = asyncio.run(run(args.opens, args.profile,
                                   (server.uri, "bench-open-view", trace_id)))
        finally:
            server.stop()
    print("| open | painted (s) | process CPU (s) | tree in (s) |\n|---|---|---|---|")
    for k, (wall, cpu, data) in enumerate(rows):
        what = ("first in the process" if k == 0 else "re-open") + (
            ", cache warm" if args.server else "")
        print(f"| {k} ({what}) | {wall:.3f} | {cpu:.3f} | {data:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
