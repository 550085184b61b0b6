"""The trace explorer: a Textual app over an MLflow tracking server.

``TraceExplorerApp(tracking_uri, experiment=..., filter_string=..., settings=..., mouse=...,
server_label=...)`` creates its own ``MlflowClient`` (closed on unmount). All network I/O
runs in workers (``@work(exclusive=True, group=...)``): a slow server never blocks input.

Live updates: the initial load (the newest ``buffer_size`` traces, server-side filter) is
followed by a ``LiveStream``; arrivals are queued and merged into the list once per tick
(coalesced, one repaint), the list keeps its cursor and marks by trace id.

Without a server (snapshot tests, benchmarks) pass ``source=StaticTraceSource(...)``.
Extra screens (the sampling and evaluation screens) plug in with ``ScreenHook``.

The app wires screens to state that lives in its own classes: ``TraceList`` (buffer, queued
arrivals, pause, statistics), ``ListFeed`` (initial load and live stream) and the
``TraceSource`` it reads (``sources.py``).

Over 500 lines on purpose: its actions (filters, sort, navigation, trace fetch, screen hooks)
are the surface screens and the palette call; the list state (``list_state``), feed
(``feed``), list actions (``list_actions``) and sources (``sources``) live apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme

from trace_tui.config.settings import Settings
from trace_tui.core.errors import ConfigError, MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import Assessment, TraceInfo, TraceTree
from trace_tui.core.render import FEEDBACK_NAME, trace_to_dict
from trace_tui.core.text import safe_text
from trace_tui.tui.feed import ListFeed
from trace_tui.tui.list_actions import ListActions, write_text
from trace_tui.tui.list_state import TraceList, compose_filter
from trace_tui.tui.messages import ConnectionChanged, FeedbackLogged
from trace_tui.tui.screens.explorer import ExplorerScreen
from trace_tui.tui.sources import StaticTraceSource, TraceSource, supports_live
from trace_tui.tui.widgets.status import ListStatus
from trace_tui.tui.widgets.trace_table import TraceBuffer, TraceTable

if TYPE_CHECKING:  # aiohttp costs ~0.5 s to import: loaded in a thread after the first frame
    from collections import deque

    from textual.command import Provider
    from textual.timer import Timer

    from trace_tui.core.experiments import Experiment
    from trace_tui.core.first_page import FirstPage
    from trace_tui.tui.screens.trace_view import TraceViewScreen
    from trace_tui.tui.startup import FirstPageFetch

__all__ = ["ScreenHook", "StaticTraceSource", "TraceExplorerApp", "TraceSource",
           "compose_filter"]

TICK_S = 0.25  # how often queued arrivals are merged into the list (one repaint per tick)
DEFAULT_SLOW_MS = 1000.0
TRACE_VIEW = "trace-view"
# How long the first frame waits for the first page fetched at start (a slow server gets the
# empty list with its "connecting" status after this, the rows when they come).
FIRST_FRAME_WAIT_S = 0.4
PREBUILD_AFTER_S = 0.3  # the trace view is built this long after the first rows are painted
LOADING_PUSH_S = 0.25  # a trace still loading after this shows its view with "loading…"
# Decoding costs ~28 us a span (8 ms for 300, 0.6 s for 10k): only traces this small decode
# on the event loop (<= 2 ms, less than a thread hop is worth); the rest in a thread, so
# keys keep being answered while a big trace opens.


@dataclass(frozen=True)
class ScreenHook:
    """An extra screen opened by a key from anywhere in the app (e.g. sampling ``s``,
    evaluation ``e``). ``factory(app)`` builds the screen each time it is opened."""

    name: str
    key: str
    description: str
    factory: Callable[[TraceExplorerApp], Screen[Any]]


def _explorer_commands() -> type[Provider]:
    """The palette's provider, imported when the palette opens (as Textual's own)."""
    from trace_tui.tui.commands import ExplorerCommands

    return ExplorerCommands


# --------------------------------------------------------------------------- the app


class TraceExplorerApp(App[None]):
    """Keyboard-first explorer for the traces of one MLflow experiment."""

    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses may live elsewhere
    TITLE = "trace-tui"
    COMMANDS: ClassVar = App.COMMANDS | {_explorer_commands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", key_display="?", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("s", "open_hook('sampling')", "Sampling", id="app.sampling"),
        Binding("e", "open_hook('evaluation')", "Evaluation", id="app.evaluation"),
    ]

    start_hook = ""  # a screen hook opened at start

    def __init__(
        self,
        tracking_uri: str,
        *,
        experiment: str | None = None,
        filter_string: str | None = None,
        settings: Settings | None = None,
        mouse: bool = True,
        server_label: str = "",
        source: TraceSource | None = None,
        screen_hooks: Iterable[ScreenHook] = (),
        export_dir: Path | str | None = None,
        clock: Callable[[], float] = time.time,
        persist_settings: bool = True,
        first_page: FirstPageFetch | None = None,
    ) -> None:
        super().__init__()
        if settings is None:
            try:
                settings = Settings.load()
            except ConfigError as exc:
                self.startup_warning = str(exc)
                settings = Settings()
        self.settings = settings
        self.persist_settings = persist_settings
        self.tracking_uri = tracking_uri
        self.server_label = server_label or tracking_uri
        self._client: TraceSource | None = source  # None: an MlflowClient, made on first use
        self._client_import: threading.Thread | None = None
        self._first_page = first_page if source is None else None
        # the first page when shown at mount (already fetched), for the stream worker
        self._first_shown: FirstPage | None = None
        if self._first_page is not None:  # its thread imports the client too
            self._client_import = self._first_page.thread
        elif source is None and "trace_tui.core.stream" not in sys.modules:
            # aiohttp takes ~0.5 s to import: overlap it with Textual's start-up
            self._client_import = threading.Thread(
                target=importlib.import_module, args=("trace_tui.core.stream",),
                name="trace-tui-import", daemon=True)
            self._client_import.start()
        self.experiment_ref = experiment or settings.last_experiment or None
        self.experiment: Experiment | None = None
        self.user_filter = (filter_string or "").strip()
        self.errors_only = False
        self.slow_ms: float | None = None
        self.conn_state = "connecting"
        self.conn_error = ""
        self.traces = TraceList(settings.buffer_size, clock=clock, table=lambda: self.table)
        self.feed = ListFeed(self, self.traces, settings, clock)
        self.export_dir = Path(export_dir) if export_dir else Path.cwd()
        self.clock = clock
        self.mouse_enabled = mouse and settings.mouse
        self.screen_hooks: dict[str, ScreenHook] = {}
        for hook in screen_hooks:
            self.register_screen_hook(hook)
        self.last_assessment: Assessment | None = None
        self.last_export: Path | None = None
        self.last_exports: list[Path] = []
        self.actions = ListActions(self)
        self._explorer: ExplorerScreen | None = None
        self._trace_view: TraceViewScreen | None = None
        self._trace_view_prebuild = False
        self._pending_push: tuple[TraceViewScreen, Screen[Any]] | None = None
        self._pending_push_timer: Timer | None = None
        self._shown_new_above = 0
        if settings.theme in self.available_themes:
            self.theme = settings.theme

    # ------------------------------------------------------------------ plumbing

    def run(self, *args: Any, mouse: bool | None = None, **kwargs: Any) -> Any:
        """``App.run`` with mouse support following ``--no-mouse`` / settings."""
        return super().run(*args, mouse=self.mouse_enabled if mouse is None else mouse,
                           **kwargs)

    @property
    def client(self) -> TraceSource:
        """The ``MlflowClient`` (or the source given): for workers and extra screens."""
        if self._client is None:
            from trace_tui.core.client import MlflowClient

            self._client = MlflowClient(self.tracking_uri, read_retries=2,
                                        span_cache=self.settings.span_cache(),
                                        timeout_s=self.settings.read_timeout_s)
        return self._client

    @property
    def live_enabled(self) -> bool:
        return self._client is None or supports_live(self._client)

    # the list's state, under the names screens, tests and benchmarks use
    @property
    def buffer(self) -> TraceBuffer:
        return self.traces.buffer

    @property
    def pending(self) -> deque[TraceInfo]:
        return self.traces.pending

    @property
    def paused(self) -> bool:
        return self.traces.paused

    @property
    def active_filter(self) -> str | None:
        """The filter the current list was loaded with."""
        return self.feed.active_filter

    async def _ensure_client(self) -> TraceSource:
        """The client, importing aiohttp in a thread so the first frame is not held up."""
        if self._client is None:
            if self._client_import is not None:
                await asyncio.to_thread(self._client_import.join)
            await asyncio.to_thread(importlib.import_module, "trace_tui.core.stream")
        return self.client

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast (screens and widgets end up here) shows its text literally: messages
        carry server errors (``[SQL: ...]``) and trace names, so no markup, no controls."""
        super().notify(safe_text(message, multiline=True), title=safe_text(title),
                       severity=severity, timeout=timeout, markup=False)

    def get_default_screen(self) -> Screen[Any]:
        return ExplorerScreen()

    def register_screen_hook(self, hook: ScreenHook) -> None:
        """Add an extra screen (before or after start). ``s``/``e`` are pre-bound for
        ``sampling``/``evaluation``; other names get their key bound here."""
        self.screen_hooks[hook.name] = hook
        if hook.name not in ("sampling", "evaluation"):
            self.bind(hook.key, f"open_hook({hook.name!r})", description=hook.description)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_hook":
            return bool(parameters) and parameters[0] in self.screen_hooks
        return True

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.set_interval(TICK_S, self._tick)
        warning = getattr(self, "startup_warning", "")
        if warning:
            self.notify(f"settings ignored: {warning}", severity="warning", timeout=8)
        if self.start_hook:  # `trace-tui review`: open on that screen
            self.call_later(self.action_open_hook, self.start_hook)

    async def _close_all(self) -> None:
        """Textual closes a screen that is on no stack node by node, in no order: a pre-built
        trace view still composing (quit right after the first paint) finishes first."""
        view = self._trace_view
        if view is not None and view.prebuilt is not None and not view.prebuilt.done():
            with contextlib.suppress(Exception):  # let it finish mounting: then it closes
                await asyncio.wait_for(asyncio.shield(view.prebuilt), 2.0)
        await super()._close_all()

    async def on_unmount(self) -> None:
        self.feed.close()
        if self._client is not None:
            await self._client.close()

    def _theme_changed(self, theme: Theme) -> None:
        name = theme.name
        if name != self.settings.theme:
            self.settings.theme = name
            self._save_settings()

    def _save_settings(self) -> None:
        if not self.persist_settings:
            return
        try:
            self.settings.save()
        except OSError as exc:
            self.notify(f"could not save settings: {exc}", severity="warning")

    def set_theme(self, name: str) -> None:
        self.theme = name

    @property
    def table(self) -> TraceTable | None:
        if self._explorer is None or not self._explorer.is_mounted:
            return None
        return self._explorer.table

    def save_marks(self) -> None:
        """Keep the marks for headless commands (``dataset add --marked``), off the loop."""
        from trace_tui.config.marks import save_marks

        ids = self.selected_trace_ids

        def write() -> None:
            try:
                save_marks(self.tracking_uri, ids)
            except ConfigError as exc:  # a read-only data dir: the marks still work here
                self.call_from_thread(self.notify, f"marks not saved: {exc}",
                                      severity="warning")

        self.run_worker(write, thread=True, group="marks", exclusive=True)

    @property
    def selected_trace_ids(self) -> list[str]:
        """Marked traces (space), in list order; for the sampling/evaluation screens."""
        table = self.table
        if table is None:
            return []
        return [r.trace_id for r in self.buffer.rows if r.trace_id in table.marked]

    @property
    def effective_filter(self) -> str:
        return compose_filter(self.user_filter, self.errors_only, self.slow_ms)

    async def explorer_mounted(self, screen: ExplorerScreen) -> None:
        """The explorer's ``on_mount``; the screen paints its first frame after this returns.
        The first page fetched at start usually lands within a few ms of the mount: waiting
        for it (bounded) makes the first frame show the rows, instead of an empty frame and a
        second layout and paint when the page comes (docs/performance.md, first row)."""
        self._explorer = screen
        self._update_filter_bar()
        if self._first_page is not None:
            await self._first_page.wait(FIRST_FRAME_WAIT_S)
            first = self._first_page.take_ready(self.experiment_ref, self.effective_filter)
            if first is not None:
                self._show_first_page(first, self.effective_filter)
                self._first_shown = first
        self._update_status(force=True)
        self.restart_stream()

    # ------------------------------------------------------------------ stream

    def restart_stream(self) -> None:
        """(Re)load the list with the effective filter, then follow it live."""
        self._stream_worker(self.effective_filter)

    @work(exclusive=True, group="stream")
    async def _stream_worker(self, filter_string: str) -> None:
        self.feed.close()
        first, self._first_shown = self._first_shown, None  # shown at mount
        if first is None and self._first_page is not None:  # fetched while Textual imported
            first = await self._first_page.take(self.experiment_ref, filter_string)
            if first is not None:
                self._show_first_page(first, filter_string)
        self._first_page = None
        if first is not None:  # rows on screen before aiohttp is even imported
            await self._after_refresh()
        source = await self._ensure_client()
        experiment = await self._resolve_experiment(source)
        if experiment is not None:
            same = first is not None and first.experiment.experiment_id == experiment.experiment_id
            await self.feed.run(source, experiment, filter_string,
                                first_page=first.infos if first is not None and same else None)

    def _show_first_page(self, first: FirstPage, filter_string: str) -> None:
        if self.experiment is None:
            self.experiment = first.experiment
            self._remember_experiment()
        self.feed.show_first_page(filter_string, first.infos)

    async def _after_refresh(self, timeout_s: float = 0.5) -> None:
        """Wait (bounded) until the next frame is out: an import in a thread right now
        would compete with the paint for the GIL."""
        painted = asyncio.Event()
        self.call_after_refresh(painted.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(painted.wait(), timeout_s)

    async def _resolve_experiment(self, source: TraceSource) -> Experiment | None:
        """The experiment to list (retried while the server is unreachable)."""
        backoff = 0.5
        while self.experiment is None:
            self.set_conn("connecting")
            try:
                self.experiment = await source.resolve_experiment(self.experiment_ref)
            except MlflowUnavailableError as exc:
                self.set_conn("reconnecting", str(exc))
                await asyncio.sleep(backoff)
                backoff = min(10.0, backoff * 2)
                continue
            except MlflowApiError as exc:
                self.set_conn("error", str(exc))
                self.notify(str(exc), title="experiment", severity="error", timeout=10)
                return None
            self._remember_experiment()
        return self.experiment

    def _remember_experiment(self) -> None:
        if self.experiment is not None and self.settings.last_experiment != self.experiment.name:
            self.settings.last_experiment = self.experiment.name
            self._save_settings()

    def ingest(self, infos: Iterable[TraceInfo]) -> None:
        """Queue traces for the next tick (what the stream does; also used by benchmarks)."""
        self.traces.ingest(infos)

    def _tick(self) -> None:
        self.traces.tick()
        self._update_status()

    # FeedHost: what the feed reports
    def set_conn(self, state: str, error: str = "") -> None:
        if (state, error) != (self.conn_state, self.conn_error):
            self.conn_state, self.conn_error = state, error
            self._update_status(force=True)
            if self.is_running and self._explorer is not None:
                self.screen.post_message(ConnectionChanged(state, error))

    def filter_failed(self, message: str) -> None:
        self._filter_error(message)

    def list_loaded(self) -> None:
        self._update_status(force=True)
        if not self._trace_view_prebuild and len(self.traces.buffer):
            # after the paint of the first rows, build the trace view in idle time
            self._trace_view_prebuild = True
            self.call_after_refresh(self.set_timer, PREBUILD_AFTER_S, self._prebuild_trace_view)

    def _update_status(self, force: bool = False) -> None:
        screen = self._explorer
        if screen is None or not screen.is_mounted:
            return
        traces = self.traces
        if traces.refresh_stats(force):
            force = True
        table = screen.table
        if table.new_above != self._shown_new_above:
            force = True
        if not force and not (traces.paused and traces.pending):
            return
        self._shown_new_above = table.new_above
        state = self.conn_state
        if traces.paused and state in ("live", "static"):
            state = "paused"
        exp = self.experiment
        p50, p95, p99 = traces.stats
        status = ListStatus(
            state=state, error=self.conn_error, uri=self.server_label,
            experiment=(f"{exp.name} (#{exp.experiment_id})" if exp else
                        self.experiment_ref or ""),
            count=len(traces.buffer), capacity=traces.buffer.capacity,
            pending=len(traces.pending), rate_per_min=traces.rate,
            p50=p50, p95=p95, p99=p99, spark=traces.spark, new_above=table.new_above)
        screen.status_line.set_status(status)

    # ------------------------------------------------------------------ filters and sort

    def apply_filter(self, user_filter: str) -> None:
        """Validate ``user_filter`` on the server, then reload with it; on error the server's
        message shows in the filter bar and the current list and stream keep running."""
        self._validate_and_apply(user_filter.strip(), self.errors_only, self.slow_ms)

    def toggle_errors_only(self) -> None:
        self._validate_and_apply(self.user_filter, not self.errors_only, self.slow_ms)

    def toggle_slow_only(self) -> None:
        if self.slow_ms is not None:
            slow = None
        else:
            p95 = self.traces.p95()
            slow = round(p95) if p95 else DEFAULT_SLOW_MS
        self._validate_and_apply(self.user_filter, self.errors_only, slow)

    @work(exclusive=True, group="validate")
    async def _validate_and_apply(self, user_filter: str, errors_only: bool,
                                  slow_ms: float | None) -> None:
        candidate = compose_filter(user_filter, errors_only, slow_ms)
        if candidate and self.experiment is not None:
            try:
                await self.client.search_traces([self.experiment.experiment_id],
                                                filter_string=candidate, max_results=1)
            except MlflowApiError as exc:
                self._filter_error(str(exc))
                return
            except MlflowUnavailableError as exc:
                self._filter_error(f"not applied, {exc}")
                return
        self.user_filter, self.errors_only, self.slow_ms = user_filter, errors_only, slow_ms
        self._filter_error("")
        self._update_filter_bar()
        self.restart_stream()

    def _filter_error(self, message: str) -> None:
        if self._explorer is not None and self._explorer.is_mounted:
            self._explorer.filter_bar.set_error(message)

    def _update_filter_bar(self) -> None:
        if self._explorer is None or not self._explorer.is_mounted:
            return
        quick = []
        if self.errors_only:
            quick.append("errors only")
        if self.slow_ms is not None:
            quick.append(f"slow > {self.slow_ms:g}ms")
        self._explorer.filter_bar.set_state(self.user_filter, quick, self.buffer.sort)

    def cycle_sort(self) -> None:
        self.traces.cycle_sort()
        self._update_filter_bar()

    def toggle_live(self) -> None:
        if not self.traces.toggle_pause():
            self.feed.poke()
        self._update_status(force=True)

    # ------------------------------------------------------------------ experiments

    def pick_experiment(self) -> None:
        self._pick_experiment_worker()

    @work(exclusive=True, group="experiments")
    async def _pick_experiment_worker(self) -> None:
        try:
            experiments = await self.client.search_experiments()
        except (MlflowApiError, MlflowUnavailableError) as exc:
            self.notify(str(exc), title="experiments", severity="error")
            return
        current = self.experiment.experiment_id if self.experiment else None
        from trace_tui.tui.screens.modals import ExperimentPicker  # modals: not before a frame

        self.push_screen(ExperimentPicker(experiments, current), self.switch_experiment)

    def switch_experiment(self, experiment: Experiment | None) -> None:
        if experiment is None or (self.experiment is not None
                                  and experiment.experiment_id == self.experiment.experiment_id):
            return
        self.experiment = experiment
        self.experiment_ref = experiment.name
        self.settings.last_experiment = experiment.name
        self._save_settings()
        self.restart_stream()

    # ------------------------------------------------------------------ traces

    def _trace_view_screen(self) -> TraceViewScreen:
        """The one trace view, installed on first use (it is reused on every Enter)."""
        from trace_tui.tui.screens.trace_view import TraceViewScreen  # not before first frame

        view = self._trace_view
        if view is None:
            view = self._trace_view = TraceViewScreen()
            self.install_screen(view, TRACE_VIEW)
        return view

    @work(group="prebuild")
    async def _prebuild_trace_view(self) -> None:
        """Import, compose, style and lay out the trace view while the user looks at the
        list, so the first Enter only fills it (runs after the first rows are painted)."""
        if self._trace_view is not None:
            return
        await asyncio.to_thread(importlib.import_module, "trace_tui.tui.screens.trace_view")
        if self._trace_view is not None or not self.is_running:  # opened, or shutting down
            return
        view = self._trace_view_screen()
        from trace_tui.tui.screens.trace_view import prebuild

        await prebuild(self, view)

    def open_trace(self, trace_id: str, info: TraceInfo | None = None) -> None:
        """Open the trace view (one screen instance, installed once and reused).

        The pre-built view starts loading at once but is pushed when its tree (or error) is
        in, or after ``LOADING_PUSH_S``, whichever comes first: a trace that loads quickly
        paints in one frame, without a "loading…" frame competing with its decode."""
        info = info or self.buffer.by_id.get(trace_id)
        view = self._trace_view_screen()
        self._cancel_pending_push()
        view.open(trace_id, info=info)
        if self.screen is view:
            return
        if view in self.screen_stack:  # e.g. palette "go to" from a modal over it
            while self.screen is not view:
                self.pop_screen()
        elif view.is_mounted and view.fetching:
            self._pending_push = (view, self.screen)
            self._pending_push_timer = self.set_timer(LOADING_PUSH_S, self.show_trace_view)
        else:
            self.push_screen(TRACE_VIEW)

    def show_trace_view(self) -> None:
        """Push the trace view opened last (its tree is in, or it took long enough to show
        "loading…"), unless the user has moved to another screen meanwhile."""
        pending = self._pending_push
        self._cancel_pending_push()
        if pending is None:
            return
        view, opened_from = pending
        moved_on = self.screen is not opened_from and opened_from in self.screen_stack
        if not moved_on and view not in self.screen_stack:  # (a modal it came from is gone)
            self.push_screen(TRACE_VIEW)

    def cancel_trace_open(self) -> None:
        """Forget a trace view still waiting to be pushed (Escape on the list meanwhile)."""
        self._cancel_pending_push()

    def _cancel_pending_push(self) -> None:
        self._pending_push = None
        if self._pending_push_timer is not None:
            self._pending_push_timer.stop()
            self._pending_push_timer = None

    def go_to_trace(self, trace_id: str) -> None:
        table = self.table
        if table is not None:
            table.go_to(trace_id)
        self.open_trace(trace_id)

    def prompt_goto(self) -> None:
        def done(value: str | None) -> None:
            if value:
                value = value.strip()
                self.go_to_trace(value if value.startswith("tr-") else f"tr-{value}")
        from trace_tui.tui.screens.modals import PromptScreen

        self.push_screen(PromptScreen("Go to trace id", "tr-…"), done)

    async def fetch_trace(self, trace_id: str, screen: TraceViewScreen | None = None
                          ) -> tuple[TraceTree, dict[str, Any] | None]:
        """The trace with its spans (decoded off the event loop; a cached trace's tree is
        built while its info is requested) and its raw JSON (None when the tree came from
        the span cache: an export reads it then)."""
        tree, raw = await self.client.get_trace_and_json(trace_id)
        if screen is not None:
            screen.fetched_at = time.perf_counter()
        return tree, raw

    def export_current(self) -> None:
        from trace_tui.tui.screens.trace_view import TraceViewScreen

        screen = self.screen
        if isinstance(screen, TraceViewScreen):
            screen.action_export()
        elif self.actions.target_trace_ids():
            self.actions.export_traces(self.actions.target_trace_ids())

    @work(group="export")
    async def export_trace(self, trace_id: str, tree: TraceTree | None = None,
                           raw: dict[str, Any] | None = None) -> None:
        if raw is None:
            try:
                raw = await self.client.get_trace_json(trace_id)
            except (MlflowApiError, MlflowUnavailableError) as exc:
                if tree is None:
                    self.notify(f"export failed: {exc}", severity="error")
                    return
                raw = trace_to_dict(tree)
        path = self.export_dir / f"{trace_id}.json"
        text = json.dumps(raw, indent=2, ensure_ascii=False, default=str)
        try:
            await asyncio.to_thread(write_text, path, text)
        except OSError as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.last_export = path
        self.notify(f"exported {trace_id} to {path} ({len(text) / 1024:.1f} KB)", timeout=6)

    # ------------------------------------------------------------------ feedback

    def ask_feedback(self, trace_id: str, value: bool, *, span_id: str | None = None,
                     label: str = "") -> None:
        """Thumbs up/down with an optional comment (modal), then log it in a worker."""
        target = label or trace_id

        def done(comment: str | None) -> None:
            if comment is not None:
                self.log_feedback(trace_id, value, comment, span_id)

        from trace_tui.tui.screens.modals import FeedbackScreen

        self.push_screen(FeedbackScreen(value, target), done)

    @work(group="feedback")
    async def log_feedback(self, trace_id: str, value: bool, comment: str = "",
                           span_id: str | None = None) -> Assessment | None:
        try:
            assessment = await self.client.create_assessment(
                trace_id, FEEDBACK_NAME, value, source_type="HUMAN",
                source_id=os.getenv("USER") or "trace-tui", rationale=comment or None,
                span_id=span_id)
        except (MlflowApiError, MlflowUnavailableError) as exc:
            self.notify(f"feedback not saved: {exc}", severity="error", timeout=8)
            return None
        self.feedback_applied(trace_id, assessment)
        thumb = "👍" if value else "👎"
        self.notify(f"{thumb} feedback logged on {trace_id}", timeout=3)
        return assessment

    def feedback_applied(self, trace_id: str, assessment: Assessment) -> None:
        """Show a new assessment at once in the list row and any open trace view."""
        self.last_assessment = assessment
        info = self.buffer.by_id.get(trace_id)
        if info is not None:
            self.traces.replace(replace(info, assessments=[*info.assessments, assessment]))
        for screen in self.screen_stack:
            if screen is self._trace_view and screen.trace_id == trace_id:
                screen.feedback_logged(assessment)
        self.screen.post_message(FeedbackLogged(trace_id, assessment,
                                                self.buffer.by_id.get(trace_id)))

    # ------------------------------------------------------------------ help and hooks

    def action_help(self) -> None:
        from trace_tui.tui.screens.help import HelpScreen  # not needed before the first frame

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_rows()))

    def help_rows(self) -> list[tuple[str, ...]]:
        app_bindings = [b for b in self.BINDINGS if isinstance(b, Binding)
                        and (not b.action.startswith("open_hook")
                             or self.check_action("open_hook", (b.action[11:-2],)))]
        extra = [Binding(h.key, f"open_hook('{h.name}')", h.description, id=f"app.{h.name}")
                 for h in self.screen_hooks.values() if h.name not in ("sampling", "evaluation")]
        from trace_tui.tui.screens.help import explorer_help_rows

        return explorer_help_rows([*app_bindings, *extra])

    def action_open_hook(self, name: str) -> None:
        self.open_hook(name)

    def open_hook(self, name: str) -> None:
        hook = self.screen_hooks.get(name)
        if hook is not None:
            self.push_screen(hook.factory(self))

