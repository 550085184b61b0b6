"""Command palette entries (ctrl+p): go to a trace id, toggle live, set theme, switch
experiment, quick filters, sort, export."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from trace_tui.core.text import safe_text
from trace_tui.tui.widgets.safe import markup_literal

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp

TRACE_ID_RE = re.compile(r"^(tr-)?[0-9a-f]{8,32}$")
GOTO_PREFIXES = ("go to ", "goto ", "open ")
MAX_ID_HITS = 20


class ExplorerCommands(Provider):
    """The explorer's own palette commands."""

    @property
    def explorer(self) -> TraceExplorerApp:
        return cast("TraceExplorerApp", self.app)

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.explorer
        live = "Pause live updates" if not app.paused else "Resume live updates"
        cmds: list[tuple[str, Callable[[], object], str]] = [
            ("Toggle live", app.toggle_live, f"{live} (p)"),
            ("Switch experiment", app.pick_experiment, "Pick another experiment (X)"),
            ("Errors only", app.toggle_errors_only,
             "Toggle the trace.status = 'ERROR' quick filter (E)"),
            ("Slow only", app.toggle_slow_only, "Toggle the p95 latency quick filter (S)"),
            ("Cycle sort", app.cycle_sort, "Sort by time, duration, tokens, cost (o)"),
            ("Export trace", app.export_current,
             "Write the marked traces (or the current one) as JSON (x)"),
            ("Compare marked traces", app.actions.compare_marked,
             "Two marked traces side by side (c)"),
            ("Drill down", app.actions.drill_down_current,
             "Filter on this trace's session, user, route, model or name (f)"),
            ("Session view", app.actions.open_session_current,
             "This trace's session, or the marked traces, with totals (v)"),
            ("Reload", app.restart_stream, "Reload the list from the server (r)"),
            ("Go to trace", app.prompt_goto, "Type: go to tr-…"),
        ]
        for name in sorted(app.available_themes):
            cmds.append((f"Set theme: {name}", partial(app.set_theme, name),
                         "Switch and remember the theme"))
        for hook in app.screen_hooks.values():
            cmds.append((f"Open {hook.description}", partial(app.open_hook, hook.name),
                         f"({hook.key})"))
        return cmds

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            if name.startswith("Set theme"):
                continue
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        app = self.explorer
        raw = query.strip()
        lowered = raw.lower()
        for prefix in GOTO_PREFIXES:
            if lowered.startswith(prefix):
                raw = raw[len(prefix):].strip()
                lowered = raw.lower()
                break
        if TRACE_ID_RE.match(lowered):
            trace_id = lowered if lowered.startswith("tr-") else f"tr-{lowered}"
            yield Hit(1.0, Text(f"Go to trace {trace_id}"), partial(app.go_to_trace, trace_id),
                      help="Open this trace (fetched from the server if not listed)")
        if lowered.startswith("tr-") and len(lowered) >= 4:
            count = 0
            for trace_id in list(app.buffer.by_id):
                if trace_id.startswith(lowered) and trace_id != lowered:
                    info = app.buffer.by_id[trace_id]
                    # ids and names come from the server: plain text, never markup
                    yield Hit(0.9, Text(f"Go to trace {safe_text(trace_id)}"),
                              partial(app.go_to_trace, trace_id),
                              help=markup_literal(info.name))
                    count += 1
                    if count >= MAX_ID_HITS:
                        break
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
