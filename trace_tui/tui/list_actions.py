"""What the list does with the marked traces (space) or the one under the cursor: export,
feedback, compare, the session view and the drill-down filter. Kept apart from the app so
the app module stays about wiring."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from trace_tui.config.paths import write_private
from trace_tui.core.errors import ConfigError, MlflowApiError, MlflowUnavailableError
from trace_tui.core.model import TraceInfo
from trace_tui.core.render import FEEDBACK_NAME

if TYPE_CHECKING:
    from trace_tui.tui.app import TraceExplorerApp


class ListActions:
    """The list's actions on marked traces, for one app (``app.actions``)."""

    def __init__(self, app: TraceExplorerApp) -> None:
        self.app = app

    def drill_down_current(self) -> None:
        table = self.app.table
        if table is not None and table.current is not None:
            self.drill_down(table.current)

    def open_session_current(self) -> None:
        table = self.app.table
        if table is not None and table.current is not None:
            self.open_session(table.current)

    def drill_down(self, info: TraceInfo) -> None:
        """Pick one of the trace's values (session, user, route, model, name) and add it to
        the filter."""
        from trace_tui.core.sessions import drill_clauses
        from trace_tui.tui.screens.modals import DrillDownPicker

        choices = drill_clauses(info)
        if not choices:
            self.app.notify("nothing to filter on in this trace", severity="warning")
            return

        def done(clause: str | None) -> None:
            if clause:
                current = self.app.user_filter
                self.app.apply_filter(f"{current} AND {clause}" if current else clause)

        self.app.push_screen(DrillDownPicker(choices), done)

    def open_session(self, info: TraceInfo) -> None:
        """The session view of the marked traces, else of the trace's session."""
        from trace_tui.tui.screens.session import SessionScreen

        marked = [self.app.buffer.by_id[t] for t in self.app.selected_trace_ids]
        if marked:
            self.app.push_screen(SessionScreen(f"{len(marked)} marked traces", marked))
            return
        if not info.session:
            self.app.notify("this trace has no session (mlflow.trace.session)",
                        severity="warning")
            return
        self.app.push_screen(SessionScreen(info.session))

    def compare_marked(self) -> None:
        """Open the side-by-side view of the two marked traces."""
        marked = self.app.selected_trace_ids
        if len(marked) != 2:
            self.app.notify(f"mark two traces (space) to compare them; {len(marked)} marked",
                        severity="warning")
            return
        from trace_tui.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(*marked))

    def target_trace_ids(self) -> list[str]:
        """What a list action applies to: the marked traces, else the one under the cursor."""
        marked = self.app.selected_trace_ids
        if marked:
            return marked
        table = self.app.table
        current = table.current if table is not None else None
        return [current.trace_id] if current is not None else []

    def export_traces(self, trace_ids: list[str]) -> None:
        """Export one trace, or each marked trace to its own ``<id>.json``."""
        if len(trace_ids) == 1:
            self.app.export_trace(trace_ids[0])
        elif trace_ids:
            self._export_many(list(trace_ids))

    def _export_many(self, trace_ids: list[str]) -> None:
        self.app.run_worker(self._export_many_work(trace_ids), group="export")

    async def _export_many_work(self, trace_ids: list[str]) -> None:
        written: list[Path] = []
        for trace_id in trace_ids:
            try:
                raw = await self.app.client.get_trace_json(trace_id)
                text = json.dumps(raw, indent=2, ensure_ascii=False, default=str)
                path = self.app.export_dir / f"{trace_id}.json"
                await asyncio.to_thread(write_text, path, text)
            except (MlflowApiError, MlflowUnavailableError, OSError) as exc:
                self.app.notify(f"export of {trace_id} failed: {exc}", severity="error")
                continue
            written.append(path)
        if written:
            self.app.last_export = written[-1]
            self.app.last_exports = written
            self.app.notify(f"exported {len(written)} traces to {self.app.export_dir}", timeout=6)

    def ask_feedback_many(self, trace_ids: list[str], value: bool) -> None:
        """Thumbs up/down on several traces (the marked ones) with one comment."""
        if len(trace_ids) == 1:
            info = self.app.buffer.by_id.get(trace_ids[0])
            self.app.ask_feedback(trace_ids[0], value, label=info.name if info else "")
            return

        def done(comment: str | None) -> None:
            if comment is not None:
                self._log_feedback_many(list(trace_ids), value, comment)

        from trace_tui.tui.screens.modals import FeedbackScreen  # not before the first frame

        self.app.push_screen(FeedbackScreen(value, f"{len(trace_ids)} marked traces"), done)

    def _log_feedback_many(self, trace_ids: list[str], value: bool, comment: str) -> None:
        self.app.run_worker(self._log_feedback_many_work(trace_ids, value, comment),
                            group="feedback")

    async def _log_feedback_many_work(self, trace_ids: list[str], value: bool,
                                      comment: str) -> None:
        saved = 0
        for trace_id in trace_ids:
            try:
                assessment = await self.app.client.create_assessment(
                    trace_id, FEEDBACK_NAME, value, source_type="HUMAN",
                    source_id=os.getenv("USER") or "trace-tui", rationale=comment or None)
            except (MlflowApiError, MlflowUnavailableError) as exc:
                self.app.notify(f"feedback on {trace_id} not saved: {exc}", severity="error",
                            timeout=8)
                continue
            self.app.feedback_applied(trace_id, assessment)
            saved += 1
        thumb = "👍" if value else "👎"
        self.app.notify(f"{thumb} feedback logged on {saved} traces", timeout=3)


def write_text(path: Path, text: str) -> None:
    """Exports hold production prompts and outputs: 0600 files in a 0700 directory."""
    try:
        write_private(path, text)
    except ConfigError as exc:
        raise OSError(str(exc)) from None
