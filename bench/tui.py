"""Explorer benchmark (headless, no server): prints figures, asserts nothing.

    MLFLOW_DISABLE_TELEMETRY=true .venv/bin/python bench/tui.py [--quick] [--json FILE]

Scenarios (each runs in its own subprocess so RSS figures do not mix):

- ``tree``: first paint of a 10,000-span trace. "Data to paint" is from the decoded tree being
  handed to the trace view (``TraceViewScreen.show_tree``) to the first frame the app emits;
  "JSON to paint" also counts decoding the ``traces/get`` JSON (done off the event loop in
  the app). Also: cursor move latency and bytes in the tree, fold all / unfold all.
- ``list``: 100,000 traces in the list: RSS, load time, cursor move latency (key event to
  the frame written), CPU per move, bytes per move, page/jump moves.
- ``ingest``: 200 traces/s into a full list (default buffer 5,000, and 100,000) while
  pressing j/k every 100 ms, 10 s with the view at the top of the list and 10 s scrolled
  down: key latency during ingest, cursor kept, merge cost per tick, bytes/s.
- ``startup`` (with ``--tracking-uri URI [--experiment NAME]``): process start to the first
  frame showing traces from that running server.
- ``pty``: the real app in a pseudo-terminal of the same size, bytes read from it per ``j``
  (truecolor and 256 colours): a cross-check of the in-process byte counts.
- ``paint``: the real command, ``python -m trace_tui --tracking-uri URI --experiment NAME``,
  in a pseudo-terminal, from spawn to the first list row painted (a seeded trace's name read
  from the terminal), against an empty Textual app's first paint (one marker line) in the
  same run, alternating, medians over ``--rounds``; CPU is the process's CPU clock when the
  row shows. ``--before REF`` adds that commit's command (a ``git archive`` copy) to every
  round. Uses ``--tracking-uri`` when given, else starts an embedded server with 200 seeded
  demo traces.

Bytes per frame: the app runs with Textual's headless driver, which drops output. The
benchmark app overrides ``App._display`` to build exactly the escape sequence the real
driver would write for each frame (``CompositorUpdate.render_segments`` on a truecolor
console of the same size, plus the cursor placement) and counts its UTF-8 bytes; the 16
bytes of synchronized-output markers a supporting terminal also gets are left out. "Per
cursor move" is the sum over the frames emitted after one key press.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

SIZE = (160, 50)
T0_MS = 1_767_268_800_000  # 2026-01-01 12:00 UTC


# --------------------------------------------------------------------------- data


def big_trace_payload(n_spans: int = 10_000, seed: int = 5) -> dict[str, Any]:
    """A ``traces/get``-shaped payload: an agent loop of 9-span turns (LLM, tool with a
    retriever and reranker, parser, memory, a nested LLM pair), depth <= 4, hex ids."""
    rng = random.Random(seed)
    start = T0_MS * 1_000_000
    spans: list[dict[str, Any]] = []
    counter = 0

    def sid() -> str:
        nonlocal counter
        counter += 1
        return f"{counter:016x}"

    def attr(key: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return {"key": key, "value": {"kvlist_value": {"values": [
                attr(k, v) for k, v in value.items()]}}}
        if isinstance(value, int):
            return {"key": key, "value": {"int_value": value}}
        return {"key": key, "value": {"string_value": str(value)}}

    def span(name: str, kind: str, parent: str | None, t0: int, dur: int,
             tokens: tuple[int, int] | None = None) -> str:
        span_id = sid()
        attrs = [attr("mlflow.spanType", kind),
                 attr("mlflow.spanInputs", {"query": f"{name} input {counter}"}),
                 attr("mlflow.spanOutputs", {"result": f"{name} output {counter}"})]
        if tokens:
            attrs.append(attr("mlflow.chat.tokenUsage", {
                "input_tokens": tokens[0], "output_tokens": tokens[1],
                "total_tokens": tokens[0] + tokens[1]}))
            attrs.append(attr("mlflow.llm.model", "gpt-4o-mini"))
        raw: dict[str, Any] = {"trace_id": "AAAAAAAAAAAAAAAAAAAAAA==", "span_id": span_id,
                               "name": name, "start_time_unix_nano": t0,
                               "end_time_unix_nano": t0 + dur, "attributes": attrs,
                               "status": {"code": "STATUS_CODE_OK"}}
        if parent:
            raw["parent_span_id"] = parent
        spans.append(raw)
        return span_id

    turns = (n_spans - 1) // 9
    turn_ns = 20_000_000
    root = span("agent_loop", "AGENT", None, start, turns * turn_ns + 1_000_000)
    for k in range(turns):
        t = start + 500_000 + k * turn_ns
        turn = span(f"turn_{k}", "CHAIN", root, t, turn_ns - 100_000)
        span("plan", "CHAT_MODEL", turn, t + 10_000, 6_000_000,
             (rng.randint(100, 900), rng.randint(10, 300)))
        tool = span("search_tool", "TOOL", turn, t + 6_100_000, 5_000_000)
        span("vector_search", "RETRIEVER", tool, t + 6_200_000, 3_000_000)
        span("rerank", "RERANKER", tool, t + 9_300_000, 1_500_000)
        router = span("router", "CHAT_MODEL", turn, t + 11_200_000, 6_000_000,
                      (rng.randint(100, 900), rng.randint(10, 300)))
        span("chat_completion", "CHAT_MODEL", router, t + 11_300_000, 5_500_000,
             (rng.randint(100, 900), rng.randint(10, 300)))
        span("parse", "PARSER", turn, t + 17_300_000, 500_000)
    while len(spans) < n_spans:
        span("memory_write", "MEMORY", root, start + turns * turn_ns, 200_000)
    info = {"trace_id": "tr-" + "ab" * 16,
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": "1"}},
            "request_time": "2026-01-01T12:00:00Z",
            "execution_duration": f"{(turns * turn_ns + 1_000_000) / 1e9:.3f}s",
            "state": "OK",
            "trace_metadata": {"mlflow.trace.session": "sess-1", "mlflow.trace.user": "u1"},
            "tags": {"mlflow.traceName": "agent_loop"}}
    return {"trace_info": info, "spans": spans}


def trace_infos(n: int, seed: int = 3, start_ms: int = T0_MS) -> list[Any]:
    """``n`` TraceInfos shaped like the demo server's search results (tags, metadata with
    token usage, cost, session and user, previews), one every 10 ms, oldest first."""
    from trace_tui.core.model import TraceInfo

    rng = random.Random(seed)
    out = []
    for i in range(n):
        inp, outp = rng.randint(100, 900), rng.randint(10, 600)
        tid = f"tr-{rng.getrandbits(128):032x}"
        d = {
            "trace_id": tid,
            "trace_location": {"type": "MLFLOW_EXPERIMENT",
                               "mlflow_experiment": {"experiment_id": "1"}},
            "request_time": start_ms + 10 * i,
            "execution_duration": f"{rng.lognormvariate(7.5, 0.6) / 1000:.3f}s",
            "state": "ERROR" if rng.random() < 0.05 else "OK",
            "trace_metadata": {
                "mlflow.trace.tokenUsage": json.dumps({"input_tokens": inp,
                                                       "output_tokens": outp,
                                                       "total_tokens": inp + outp}),
                "mlflow.trace.cost": json.dumps({"input_cost": inp * 1.5e-7,
                                                 "output_cost": outp * 6e-7,
                                                 "total_cost": inp * 1.5e-7 + outp * 6e-7}),
                "mlflow.trace.session": f"sess-{rng.randint(1, 60)}",
                "mlflow.trace.user": f"user-{rng.randint(1, 25)}",
            },
            "tags": {"mlflow.traceName": rng.choice(("rag_agent", "support_agent")),
                     "mlflow.trace.spansLocation": "TRACKING_STORE",
                     "service.name": "demo-genai-app", "env": "demo",
                     "route": rng.choice(("search", "support", "checkout", "billing")),
                     "app.version": rng.choice(("1.4.0", "1.5.0")),
                     "customer_tier": rng.choice(("free", "pro", "enterprise"))},
            "request_preview": json.dumps({"question": f"How do I reset my password? #{i}"}),
            "response_preview": json.dumps({"answer": f"[search] resolved #{i}"}),
        }
        out.append(TraceInfo.from_json(d))
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- measured app


def measured_app_class():
    from rich.console import Console
    from rich.control import Control

    from trace_tui.tui.app import TraceExplorerApp

    class MeasuredApp(TraceExplorerApp):
        """Records (time, bytes) of every frame the real driver would have written."""

        frames: list[tuple[float, int]]

        def _display(self, screen, renderable) -> None:  # type: ignore[override]
            if renderable is not None and not self._batch_count and hasattr(
                    renderable, "render_segments"):
                if not hasattr(self, "_bench_console") or (
                        self._bench_console.size != self.size):
                    self._bench_console = Console(
                        width=self.size.width, height=self.size.height, file=io.StringIO(),
                        force_terminal=True, color_system="truecolor", legacy_windows=False,
                        safe_box=False, markup=False, highlight=False, emoji=False)
                seq = renderable.render_segments(self._bench_console)
                seq += Control.move_to(0, 0).segment.text
                self.frames.append((time.perf_counter(), len(seq.encode("utf-8"))))
            super()._display(screen, renderable)

    return MeasuredApp


def make_app(source: Any, buffer_size: int, **kwargs: Any):
    from trace_tui.config.settings import Settings

    cls = measured_app_class()
    app = cls("static://bench", source=source, settings=Settings(buffer_size=buffer_size),
              persist_settings=False, server_label="http://127.0.0.1:5000", **kwargs)
    app.frames = []
    return app


async def settle(pilot, seconds: float = 0.3) -> None:
    await pilot.pause(seconds)


KEY_CHARS = {"ctrl+d": None, "ctrl+u": None}


async def timed_key(pilot, key: str, quiet: float = 0.03) -> tuple[float, int, float]:
    """Send ``key`` the way the terminal driver does and return (latency s from the key
    event to the first frame it caused, bytes of the frames until ``quiet`` s pass without
    one, CPU s over that time). Not ``Pilot.press``: it idles >= 20 ms by design."""
    from textual import events

    app = pilot.app
    mark = len(app.frames)
    event = events.Key(key, KEY_CHARS.get(key, key if len(key) == 1 else None))
    event.set_sender(app)
    c0 = time.process_time()
    t0 = time.perf_counter()
    app._driver.send_message(event)
    deadline = t0 + 2.0
    while len(app.frames) == mark and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
    first = app.frames[mark][0] if len(app.frames) > mark else float("nan")
    seen = len(app.frames)
    while True:  # collect the rest of the frames this key caused
        await asyncio.sleep(quiet)
        if len(app.frames) == seen:
            break
        seen = len(app.frames)
    cpu = time.process_time() - c0
    return first - t0, sum(b for _, b in app.frames[mark:]), cpu


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, round(q / 100 * (len(data) - 1)))]


# --------------------------------------------------------------------------- scenarios


async def scenario_tree(n_spans: int) -> dict[str, Any]:
    from trace_tui.core.model import decode_trace
    from trace_tui.tui.screens.trace_view import TraceViewScreen
    from trace_tui.tui.sources import StaticTraceSource

    payload = big_trace_payload(n_spans)
    text = json.dumps(payload)
    t0 = time.perf_counter()
    raw = json.loads(text)
    t_json = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = decode_trace(raw)
    t_decode = time.perf_counter() - t0
    source = StaticTraceSource([payload])
    app = make_app(source, 100)
    out: dict[str, Any] = {"spans": len(tree.spans), "json_kb": len(text) // 1024,
                           "json_loads_s": t_json, "decode_s": t_decode}
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # 1) data to paint: hand the decoded tree to a fresh trace view
        screen = TraceViewScreen()  # empty: the tree is handed over below
        await app.push_screen(screen)
        await settle(pilot, 1.0)
        await pilot.pause()  # wait for idle: the push (footer, focus) has settled
        mark = len(app.frames)
        t0 = time.perf_counter()
        screen.show_tree(tree, raw)
        while len(app.frames) == mark:
            await asyncio.sleep(0.005)
        out["data_to_paint_s"] = app.frames[mark][0] - t0
        out["first_paint_bytes"] = app.frames[mark][1]
        rendered = screen.waterfall
        out["rows_flattened"] = rendered.row_count
        await settle(pilot)
        app.pop_screen()
        await settle(pilot)
        # 2) JSON to paint: through the app's own path (decode off the loop, then show)
        mark = len(app.frames)
        t0 = time.perf_counter()
        app.go_to_trace(tree.trace_id)
        while not (isinstance(app.screen, TraceViewScreen) and app.screen.trace_tree):
            await asyncio.sleep(0.005)
        view = app.screen
        data_at = view.data_at
        while not [f for f in app.frames[mark:] if f[0] >= data_at]:
            await asyncio.sleep(0.005)
        painted = next(f[0] for f in app.frames[mark:] if f[0] >= data_at)
        out["enter_to_paint_s"] = painted - t0
        out["enter_to_json_in_s"] = (view.fetched_at or t0) - t0
        out["json_in_to_paint_s"] = painted - view.fetched_at
        out["decode_in_app_s"] = data_at - view.fetched_at
        out["data_to_paint_via_app_s"] = painted - data_at
        await settle(pilot, 0.5)
        # cursor moves in the tree (the detail pane follows after 60 ms: counted too)
        lat, cpus = [], []
        for _ in range(30):
            latency, _, cpu = await timed_key(pilot, "j", quiet=0.15)  # detail included
            lat.append(latency)
            cpus.append(cpu)
        out["tree_move_latency_ms_p50"] = statistics.median(lat) * 1000
        out["tree_move_latency_ms_p95"] = pct(lat, 95) * 1000
        out["tree_move_cpu_ms_p50_with_detail"] = statistics.median(cpus) * 1000
        # bytes: the waterfall rows only (detail pane hidden) vs with the detail pane
        await pilot.press("d")
        await settle(pilot)
        wf_bytes, wf_cpu = [], []
        for _ in range(20):
            _, b, cpu = await timed_key(pilot, "j")
            wf_bytes.append(b)
            wf_cpu.append(cpu)
        out["tree_move_bytes_waterfall_p50"] = statistics.median(wf_bytes)
        out["tree_move_cpu_ms_p50_waterfall_only"] = statistics.median(wf_cpu) * 1000
        await pilot.press("d")
        await settle(pilot)
        with_detail = []
        for _ in range(20):
            _, b, _ = await timed_key(pilot, "j", quiet=0.15)  # past the detail debounce
            with_detail.append(b)
        out["tree_move_bytes_with_detail_p50"] = statistics.median(with_detail)
        for key, name in (("H", "fold_all"), ("L", "unfold_all")):
            latency, _, _ = await timed_key(pilot, key)
            out[f"{name}_s"] = latency
    return out


async def scenario_list(n: int) -> dict[str, Any]:
    from trace_tui.tui.sources import StaticTraceSource

    gc.collect()
    rss_start = rss_mb()
    t0 = time.perf_counter()
    infos = trace_infos(n)
    t_build = time.perf_counter() - t0
    gc.collect()
    rss_data = rss_mb()
    source = StaticTraceSource(infos=infos)
    del infos
    app = make_app(source, n)
    out: dict[str, Any] = {"traces": n, "rss_start_mb": rss_start,
                           "rss_after_building_infos_mb": rss_data, "build_infos_s": t_build}
    t0 = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        while len(app.buffer) < n or app.conn_state != "static":
            await asyncio.sleep(0.01)
        out["start_to_list_loaded_s"] = time.perf_counter() - t0
        await settle(pilot, 1.5)  # stats (percentiles over 100k) and the first frames
        gc.collect()
        out["rss_loaded_mb"] = rss_mb()
        table = app.table
        lat, byts, cpus, scrolled = [], [], [], []
        view_rows = table.page_rows
        for _ in range(view_rows + 50):
            top = int(table.scroll_offset.y)
            latency, b, cpu = await timed_key(pilot, "j")
            lat.append(latency)
            byts.append(b)
            cpus.append(cpu)
            scrolled.append(int(table.scroll_offset.y) != top)
        inside = [b for b, s in zip(byts, scrolled, strict=True) if not s]
        scrolling = [b for b, s in zip(byts, scrolled, strict=True) if s]
        out["view_rows"] = view_rows
        out["move_latency_ms_p50"] = statistics.median(lat) * 1000
        out["move_latency_ms_p95"] = pct(lat, 95) * 1000
        out["move_cpu_ms_p50"] = statistics.median(cpus) * 1000
        out["move_bytes_in_view_p50"] = statistics.median(inside) if inside else 0
        out["move_bytes_scrolling_p50"] = statistics.median(scrolling) if scrolling else 0
        out["moves_that_scrolled"] = f"{len(scrolling)}/{len(byts)}"
        out["move_bytes_mean_over_walk"] = statistics.mean(byts)
        # the widget's own cost of one move (action + the two rows rendered)
        t0 = time.perf_counter()
        for _ in range(1000):
            table.action_cursor_down()
            table.render_row(table.cursor, SIZE[0] - 2, True)
            table.render_row(table.cursor - 1, SIZE[0] - 2, False)
        out["move_widget_cost_us"] = (time.perf_counter() - t0) / 1000 * 1e6
        for key in ("ctrl+d", "G", "g"):
            latency, b, _ = await timed_key(pilot, key)
            out[f"{key}_latency_ms"] = latency * 1000
            out[f"{key}_bytes"] = b
        out["rss_end_mb"] = rss_mb()
    return out


async def scenario_ingest(buffer_size: int, rate: int = 200, seconds: float = 10.0
                          ) -> dict[str, Any]:
    """Two phases of ``seconds`` each at ``rate`` traces/s, pressing j/k every 100 ms: with
    the view at the top of the list (new rows push everything down: one repaint per tick)
    and scrolled down (the rows on screen do not change: nothing to repaint)."""
    from trace_tui.tui.sources import StaticTraceSource

    preload = trace_infos(buffer_size, seed=4)
    fresh = trace_infos(int(rate * seconds * 2), seed=5,
                        start_ms=preload[-1].request_time_ms + 10)
    app = make_app(StaticTraceSource(infos=preload), buffer_size)
    out: dict[str, Any] = {"buffer": buffer_size, "rate_per_s": rate,
                           "seconds_per_phase": seconds}
    tick_costs: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        while len(app.buffer) < buffer_size or app.conn_state != "static":
            await asyncio.sleep(0.01)
        await settle(pilot, 1.5)
        original_tick = app._tick

        def timed_tick() -> None:
            t = time.perf_counter()
            had = len(app.pending)
            original_tick()
            if had:
                tick_costs.append(time.perf_counter() - t)

        for timer in list(app._timers):  # re-create the merge ticker with a stopwatch
            timer.stop()
        app.set_interval(0.25, timed_tick)
        table = app.table

        async def phase(batch: list[Any]) -> dict[str, Any]:
            async def feed() -> None:
                step = 0.05
                per = max(1, int(rate * step))
                start = time.perf_counter()
                for i in range(0, len(batch), per):
                    app.ingest(batch[i:i + per])
                    target = start + (i // per + 1) * step
                    await asyncio.sleep(max(0.0, target - time.perf_counter()))

            mark = len(app.frames)
            c0, w0 = time.process_time(), time.perf_counter()
            feeder = asyncio.create_task(feed())
            lat, kept, i = [], 0, 0
            while not feeder.done():
                latency, _, _ = await timed_key(pilot, "jk"[i % 2])
                lat.append(latency)
                i += 1
                on = table.current.trace_id
                await asyncio.sleep(0.1)  # ticks merge rows meanwhile
                kept += table.current is not None and table.current.trace_id == on
            await feeder
            wall = time.perf_counter() - w0
            cpu = time.process_time() - c0
            await settle(pilot, 0.6)
            frames = app.frames[mark:]
            return {"key_latency_ms_p50": statistics.median(lat) * 1000,
                    "key_latency_ms_p95": pct(lat, 95) * 1000,
                    "key_latency_ms_max": max(lat) * 1000,
                    "cursor_kept": f"{kept}/{len(lat)}",
                    "cpu_utilisation": cpu / wall,
                    "bytes_per_s": sum(b for _, b in frames) / wall,
                    "frames_per_s": len(frames) / wall}

        half = len(fresh) // 2
        await pilot.press("j", "j", "j")
        for key, value in (await phase(fresh[:half])).items():
            out[f"top_{key}"] = value
        table.cursor = 300  # read further down: the screen no longer shows the top
        await settle(pilot, 0.5)
        for key, value in (await phase(fresh[half:])).items():
            out[f"scrolled_{key}"] = value
        out["ingested"] = len(fresh)
        out["newest_present"] = all(f.trace_id in app.buffer.by_id
                                    for f in fresh[-min(len(fresh), buffer_size):])
        out["list_len"] = len(app.buffer)
        out["merge_tick_ms_p50"] = statistics.median(tick_costs) * 1000 if tick_costs else 0
        out["merge_tick_ms_max"] = max(tick_costs) * 1000 if tick_costs else 0
        out["rss_mb"] = rss_mb()
    return out


async def scenario_startup(uri: str, experiment: str | None, spawned_at: float
                           ) -> dict[str, Any]:
    """Process start to the first frame showing traces from a running server (import time,
    client, experiment resolution, first search page, paint); no ``import mlflow``."""
    t_imp = time.time()
    from trace_tui.config.settings import Settings
    from trace_tui.tui.screens.judging import judge_screen_hooks

    cls = measured_app_class()
    imported = time.time()
    # with the judge screens, as the real command builds it
    app = cls(uri, experiment=experiment, settings=Settings(), persist_settings=False,
              screen_hooks=judge_screen_hooks())
    app.frames = []
    out: dict[str, Any] = {"python_start_s": t_imp - spawned_at,
                           "import_s": imported - t_imp}
    async with app.run_test(size=SIZE):
        while not len(app.buffer):
            await asyncio.sleep(0.002)
        listed = time.perf_counter()
        while not [f for f in app.frames if f[0] >= listed]:
            await asyncio.sleep(0.002)
        painted = next(f[0] for f in app.frames if f[0] >= listed)
        now = time.time()
        out["first_frame_s"] = app.frames[0][0] - listed + (now - spawned_at)
        out["spawn_to_first_rows_painted_s"] = painted - listed + (now - spawned_at)
        # CPU is what a busy shared machine distorts least (includes interpreter start-up)
        out["cpu_to_first_rows_painted_s"] = time.process_time()
        out["traces_in_first_paint"] = len(app.buffer)
        out["mlflow_imported"] = "mlflow" in sys.modules
    return out


EMPTY_APP = """
from textual.app import App
from textual.widgets import Static


class Empty(App):
    def compose(self):
        yield Static("first-paint-mark")


Empty().run()
"""


def first_paint_s(argv: list[str], marks: list[bytes], env: dict[str, str],
                  timeout_s: float = 60.0, cwd: str | None = None) -> tuple[float, float]:
    """Spawn ``argv`` on a fresh pty of SIZE; return (seconds until one of ``marks`` appears
    in what it writes, CPU seconds of the process up to then), nan on timeout.

    The CPU figure is read from the child's process CPU clock (all its threads, the ended
    ones too) the moment the mark is seen, so what the process does after the paint (the
    real command imports aiohttp then; on SIGTERM it runs its cleanup, the empty app just
    dies) is not charged to it; rusage at exit is the fallback."""
    import fcntl
    import select
    import signal
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True, cwd=cwd)
    os.close(slave)
    clock = ((~proc.pid) << 3) | 2  # CPUCLOCK_SCHED of the whole process (Linux)
    seen = b""
    found = float("nan")
    cpu = at_mark = float("nan")
    try:
        while time.perf_counter() - t0 < timeout_s:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            seen = seen[-4096:] + chunk
            if any(m in seen for m in marks):
                found = time.perf_counter() - t0
                with contextlib.suppress(OSError):
                    at_mark = time.clock_gettime(clock)
                break
    finally:
        with contextlib.suppress(ProcessLookupError):  # measured: no clean exit needed
            os.killpg(proc.pid, signal.SIGKILL if at_mark == at_mark else signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.returncode is None:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = status
                cpu = usage.ru_utime + usage.ru_stime
            elif time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                time.sleep(0.01)
        os.close(master)
    return found, (cpu if at_mark != at_mark else at_mark)


def scenario_paint(uri: str | None, experiment: str | None, rounds: int,
                   before: str | None = None) -> dict[str, Any]:
    """The real ``trace-tui`` command to its first painted row vs an empty Textual app; with
    ``before`` (a git ref) also that commit's command (a ``git archive`` copy), alternating."""
    import tempfile

    from trace_tui.core.client import MlflowClient

    server = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-paint-"))
    if uri is None:
        from trace_tui.demo.traffic import ensure_experiment, seed_bulk
        from trace_tui.server.embedded import EmbeddedServer

        server = EmbeddedServer(tmp / "mlflow")
        uri = server.start()
        experiment = "bench-first-paint"
        seed_bulk(uri, ensure_experiment(uri, experiment), 200, seed=7)
    try:
        async def names() -> set[str]:
            async with MlflowClient(uri) as client:
                exp = await client.resolve_experiment(experiment)
                infos = await client.search_traces([exp.experiment_id], max_results=500)
            return {i.name for i in infos if i.name}

        marks = [n.encode() for n in asyncio.run(names())]
        if not marks:
            return {"error": "no named traces in the experiment"}
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
               "XDG_CONFIG_HOME": str(tmp / "config"), "XDG_DATA_HOME": str(tmp / "data"),
               "TRACE_TUI_CONFIG_FILE": str(tmp / "config" / "config.toml")}
        env.pop("TEXTUAL_ANIMATIONS", None)
        # Bytecode as an installed package has it (pip compiles it; Textual's is there): with
        # PYTHONDONTWRITEBYTECODE set, every round would compile trace-tui's sources anew
        # (~0.2 s) and charge it to the first row. The warm-up round below writes it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        real = [sys.executable, "-m", "trace_tui", "--tracking-uri", uri]
        if experiment:
            real += ["--experiment", experiment]
        empty = [sys.executable, "-c", EMPTY_APP]
        # `python -m` imports trace_tui from the working directory (before the editable
        # install's finder): this checkout, or the older commit's copy
        here = str(Path(__file__).resolve().parents[1])
        old_dir = _archive(before, tmp / "before") if before else None
        floor: list[tuple[float, float]] = []
        app: list[tuple[float, float]] = []
        older: list[tuple[float, float]] = []
        first_paint_s(empty, [b"first-paint-mark"], env)  # warm the file cache once
        first_paint_s(real, marks, env, cwd=here)  # and write the bytecode
        if old_dir:
            first_paint_s(real, marks, env, cwd=old_dir)
        for _ in range(rounds):
            floor.append(first_paint_s(empty, [b"first-paint-mark"], env))
            app.append(first_paint_s(real, marks, env, cwd=here))
            if old_dir:
                older.append(first_paint_s(real, marks, env, cwd=old_dir))
        wall = (statistics.median(w for w, _ in floor), statistics.median(w for w, _ in app))
        cpu = (statistics.median(c for _, c in floor), statistics.median(c for _, c in app))
        out: dict[str, Any] = {}
        if older:
            old_wall = statistics.median(w for w, _ in older)
            old_cpu = statistics.median(c for _, c in older)
            out = {"before": before, "before_first_row_s_median": old_wall,
                   "before_cpu_s_median": old_cpu,
                   "before_ratio_wall_median": old_wall / wall[0],
                   "before_ratio_cpu_median": old_cpu / cpu[0],
                   "before_first_row_s": [round(w, 3) for w, _ in older]}
        return {
            "rounds": rounds,
            "empty_textual_first_paint_s_median": wall[0],
            "trace_tui_first_row_s_median": wall[1],
            "ratio_wall_median": wall[1] / wall[0],
            "empty_textual_cpu_s_median": cpu[0],
            "trace_tui_cpu_s_median": cpu[1],
            "ratio_cpu_median": cpu[1] / cpu[0],
            "empty_textual_first_paint_s": [round(w, 3) for w, _ in floor],
            "trace_tui_first_row_s": [round(w, 3) for w, _ in app],
            **out,
            "load_avg_1min_end": os.getloadavg()[0],
        }
    finally:
        if server is not None:
            server.stop()


def _archive(ref: str, dest: Path) -> str:
    """A copy of the repository at ``ref`` (``git archive``), for the before/after rounds."""
    root = Path(__file__).resolve().parents[1]
    dest.mkdir(parents=True)
    data = subprocess.run(["git", "-C", str(root), "archive", ref], check=True,
                          capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=data, check=True)
    return str(dest)


def pty_app() -> None:
    """The real app on a real terminal (the pty the ``pty`` scenario opens)."""
    from trace_tui.config.settings import Settings
    from trace_tui.tui.app import TraceExplorerApp
    from trace_tui.tui.sources import StaticTraceSource

    app = TraceExplorerApp("static://bench", source=StaticTraceSource(infos=trace_infos(5000)),
                           settings=Settings(buffer_size=5000), persist_settings=False,
                           server_label="http://127.0.0.1:5000")
    app.run(mouse=False)


def scenario_pty(moves: int = 20) -> dict[str, Any]:
    """Cross-check of the byte counts: the real Linux driver in a pseudo-terminal of the same
    size, counting what it writes after each ``j`` (with and without ``COLORTERM``)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    out: dict[str, Any] = {}
    for colorterm in ("truecolor", ""):
        pid, fd = pty.fork()
        if pid == 0:  # the child: the app on the pty
            os.environ.update({"TERM": "xterm-256color", "COLORTERM": colorterm})
            os.execv(sys.executable, [sys.executable, __file__, "--child", "pty-app"])
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))

        def drain(seconds: float, fd: int = fd) -> int:
            end, count = time.time() + seconds, 0
            while time.time() < end:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    try:
                        count += len(os.read(fd, 65536))
                    except OSError:
                        break
            return count

        name = colorterm or "256"
        out[f"{name}_startup_bytes_8s"] = drain(8.0)
        sizes = []
        for _ in range(moves):
            os.write(fd, b"j")
            sizes.append(drain(0.4))
        out[f"{name}_move_bytes_p50"] = statistics.median(sizes)
        out[f"{name}_move_bytes_max"] = max(sizes)
        os.write(fd, b"q")
        drain(1.0)
        os.waitpid(pid, 0)
        os.close(fd)
    return out


# --------------------------------------------------------------------------- driver


def run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, "--spans", str(args.spans),
           "--traces", str(args.traces), "--seconds", str(args.seconds),
           "--spawned-at", repr(time.time())]
    cmd += ["--rounds", str(args.rounds)]
    if args.before:
        cmd += ["--before", args.before]
    if args.tracking_uri:
        cmd += ["--tracking-uri", args.tracking_uri]
    if args.experiment:
        cmd += ["--experiment", args.experiment]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(name: str, args: argparse.Namespace) -> None:
    if name == "tree":
        result = asyncio.run(scenario_tree(args.spans))
    elif name == "list":
        result = asyncio.run(scenario_list(args.traces))
    elif name == "ingest":
        result = asyncio.run(scenario_ingest(5000, seconds=args.seconds))
    elif name == "ingest_big":
        result = asyncio.run(scenario_ingest(args.traces, seconds=args.seconds))
    elif name == "pty":
        result = scenario_pty()
    elif name == "paint":
        result = scenario_paint(args.tracking_uri, args.experiment, args.rounds, args.before)
    elif name == "pty-app":
        pty_app()
        return
    elif name == "startup":
        result = asyncio.run(scenario_startup(args.tracking_uri, args.experiment,
                                              args.spawned_at))
    else:
        raise SystemExit(f"unknown scenario {name}")
    print(json.dumps(result))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", nargs="*",
                        default=["tree", "list", "ingest", "ingest_big", "pty", "paint"])
    parser.add_argument("--rounds", type=int, default=5,
                        help="paint: alternating runs of each command (medians)")
    parser.add_argument("--before", metavar="REF",
                        help="paint: also run this git ref's command (a git archive copy), "
                        "alternating with this checkout's")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--tracking-uri", help="a running server: adds the startup scenario")
    parser.add_argument("--experiment", help="experiment for the startup scenario")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.spans, args.traces, args.seconds = 2000, 10_000, 3.0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.tracking_uri and "startup" not in args.only:
        args.only = ["startup", *args.only]
    if args.child:
        child(args.child, args)
        return 0
    print(f"trace-tui explorer benchmark: {SIZE[0]}x{SIZE[1]} headless, "
          f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    results = {}
    for name in args.only:
        t0 = time.perf_counter()
        results[name] = run_child(name, args)
        print(f"\n[{name}] ({time.perf_counter() - t0:.0f} s)")
        for key, value in results[name].items():
            print(f"  {key:32} {fmt(value)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
