"""App-level messages, posted to the active screen so extra screens (sampling, evaluation) can
react with ``on_feedback_logged`` / ``on_connection_changed``. Widget-level messages live next
to their widgets (``TraceTable.Opened``, ``SpanWaterfall.Highlighted``, ``FilterBar.Submitted``).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from trace_tui.core.model import Assessment, TraceInfo


@dataclass
class FeedbackLogged(Message):
    """A human assessment was written to MLflow."""

    trace_id: str
    assessment: Assessment
    info: TraceInfo | None  # the list's updated TraceInfo, when the trace is listed


@dataclass
class ConnectionChanged(Message):
    """The stream's connection state changed (``live``, ``reconnecting``...)."""

    state: str
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ConnectionChanged)
