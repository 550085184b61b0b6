"""Live rows converge to the server's final state (issue 9, item 1).

Real server, real SDK traffic in a producer process of its own (the SDK exports spans
incrementally: rows appear IN_PROGRESS, their request time moves back when the root lands,
tags and token totals land later), the app in ``run_test()``. After the traffic stops, every
listed row must match a fresh server read.
"""

from __future__ import annotations

import asyncio
import sys
import time

from trace_tui.core.client import MlflowClient
from trace_tui.core.model import TraceInfo
from trace_tui.core.render import fmt_cost, fmt_duration, fmt_tokens
from trace_tui.demo.traffic import bulk_plans, plan_to_otlp_spans, post_otlp
from trace_tui.tui.app import TraceExplorerApp

from .test_tui_pilot import SIZE, make_app, wait_for


async def slow_export(uri: str, exp_id: str, seed: int) -> str:
    """One trace written the way a loaded SDK exporter delivers it: children first (an
    IN_PROGRESS row), then the root (finished, request time moves back), then, seconds later,
    a straggling LLM span (tokens and cost grow) and the trace name tag."""
    ((trace_hex, start_ns, plan, rng),) = bulk_plans(1, seed=seed,
                                                    start_ms=int(time.time() * 1000))
    root, *rest = plan_to_otlp_spans(plan, trace_hex, start_ns, rng)
    root["attributes"] = [a for a in root["attributes"]
                          if a["key"] != "mlflow.traceTag.mlflow.traceName"]
    late = next(s for s in reversed(rest)
                if any(a["key"] == "mlflow.chat.tokenUsage" for a in s["attributes"]))
    await asyncio.to_thread(post_otlp, uri, exp_id, [s for s in rest if s is not late])
    await asyncio.sleep(1.0)  # the producer's export delays, not synchronisation
    await asyncio.to_thread(post_otlp, uri, exp_id, [root])
    await asyncio.sleep(3.5)  # a late span, seconds after the root: the delay under test
    await asyncio.to_thread(post_otlp, uri, exp_id, [late])
    async with MlflowClient(uri) as client:
        await client.set_trace_tag("tr-" + trace_hex, "mlflow.traceName", plan.root.name)
    return "tr-" + trace_hex


async def slow_exports(uri: str, exp_id: str, count: int) -> list[str]:
    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(slow_export(uri, exp_id, 900 + n)))
        await asyncio.sleep(1.2)  # producers start apart, as live traffic does
    return list(await asyncio.gather(*tasks))


def row_view(info: TraceInfo) -> tuple[str, str, str, str, str]:
    """What a row shows: name, status, duration, tokens, cost."""
    return (info.name or info.request_preview or "(unnamed)", info.state,
            fmt_duration(info.duration_ms), fmt_tokens(info.tokens), fmt_cost(info.cost_usd))


async def server_rows(uri: str, exp_id: str) -> dict[str, TraceInfo]:
    async with MlflowClient(uri) as client:
        return {i.trace_id: i for i in await client.search_traces([exp_id])}


def differing(app: TraceExplorerApp, server: dict[str, TraceInfo]) -> list[str]:
    out = []
    for row in app.buffer.rows:
        truth = server.get(row.trace_id)
        if truth is None or row_view(truth) != row_view(row):
            out.append(f"{row.trace_id}: list {row_view(row)} server "
                       f"{row_view(truth) if truth else None}")
    missing = {i for i, t in server.items() if t.finished} - app.buffer.by_id.keys()
    out.extend(f"{i}: finished on the server, not listed" for i in sorted(missing))
    return out


async def test_rows_seen_while_running_converge_to_the_server(mlflow_uri, fresh_experiment
                                                              ) -> None:
    name, exp_id = fresh_experiment
    producer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trace_tui.demo.traffic", "--tracking-uri", mlflow_uri,
        "--experiment", name, "--rate", "5", "--time-scale", "0.4", "--count", "40",
        "--seed", "5", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    app = make_app(mlflow_uri, name, lookback_s=30.0)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: len(app.buffer) >= 8, timeout=60,
                           what="the first traces")
            # reloads while traffic runs list traces that are still running
            for _ in range(2):
                await pilot.press("r")
                await wait_for(pilot, lambda: app.conn_state == "live", what="live again")
                want = len(app.buffer) + 3
                await wait_for(pilot, lambda w=want: len(app.buffer) > w
                               or producer.returncode is not None, timeout=30,
                               what="more traffic")
            staged = await slow_exports(mlflow_uri, exp_id, 8)
            await asyncio.wait_for(producer.wait(), 120)
            assert producer.returncode == 0
            deadline = time.monotonic() + 45
            diffs: list[str] = ["not compared yet"]
            while diffs and time.monotonic() < deadline:
                await pilot.pause(1.0)
                diffs = differing(app, await server_rows(mlflow_uri, exp_id))
            assert not diffs, f"{len(diffs)} of {len(app.buffer)} rows differ:\n" + "\n".join(
                diffs[:20])
            assert len(app.buffer) >= 38
            assert set(staged) <= app.buffer.by_id.keys()
    finally:
        if producer.returncode is None:
            producer.kill()
            await producer.wait()
