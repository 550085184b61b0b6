"""A trace's request and response as a conversation (role: text), for the review screen."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from trace_tui.tui.widgets.safe import safe_text

ROLE_STYLES = {"user": "bold cyan", "assistant": "bold green", "system": "bold magenta",
               "tool": "bold yellow"}


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in value)
    return json.dumps(value, ensure_ascii=False, default=str, indent=1)


def messages_of(inputs: Any, outputs: Any) -> list[tuple[str, str]]:
    """(role, text) pairs: chat messages when the payloads look like chat, else JSON."""
    out: list[tuple[str, str]] = []
    msgs = inputs.get("messages") if isinstance(inputs, dict) else None
    if isinstance(msgs, list) and all(isinstance(m, dict) for m in msgs):
        out += [(str(m.get("role", "user")), _content(m.get("content", ""))) for m in msgs]
    elif inputs is not None:
        out.append(("request", _content(inputs)))
    reply = outputs
    if isinstance(outputs, dict):
        choices = outputs.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message") or {}
            reply = message.get("content", message) if isinstance(message, dict) else message
    if reply is not None:
        out.append(("assistant", _content(reply)))
    return out


def conversation_text(inputs: Any, outputs: Any, max_chars: int = 6000) -> Text:
    text = Text()
    for role, body in messages_of(inputs, outputs):
        if len(body) > max_chars:
            body = body[:max_chars] + " …"
        text.append(safe_text(role), style=ROLE_STYLES.get(role, "bold"))
        text.append("\n" + safe_text(body, multiline=True) + "\n\n")
    return text
