"""Chat-shaped span inputs/outputs read as conversations: role-tagged messages with their text
and tool calls. Pure Python, no I/O.

Shapes understood: ``{"messages": [...]}`` (OpenAI/LangChain requests), a bare list of
messages, OpenAI responses ``{"choices": [{"message": ...}]}``, Anthropic responses
``{"role", "content": [parts]}`` and a single ``{"role", "content"}`` message. Content may be
a string or a list of parts (``text``, ``tool_use``, ``tool_result``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CHAT_KEYS = ("messages", "choices")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text as the model wrote it

    def signature(self) -> str:
        """``search(query="x", k=3)`` when the arguments are a JSON object, else raw."""
        try:
            args = json.loads(self.arguments) if self.arguments else {}
        except ValueError:
            return f"{self.name}({self.arguments})"
        if isinstance(args, Mapping):
            inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}"
                              for k, v in args.items())
            return f"{self.name}({inner})"
        return f"{self.name}({json.dumps(args, ensure_ascii=False, default=str)})"


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""  # on a tool result


def chat_messages(value: Any) -> tuple[list[ChatMessage], dict[str, Any]] | None:
    """(messages, the other top-level fields) when ``value`` is chat-shaped, else None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    rest: dict[str, Any] = {}
    raw: list[Any]
    if isinstance(value, list):
        raw = value
    elif isinstance(value, Mapping):
        if isinstance(value.get("messages"), list):
            raw = value["messages"]
            rest = {k: v for k, v in value.items() if k != "messages"}
        elif isinstance(value.get("choices"), list):
            raw = [c.get("message") or c.get("delta") for c in value["choices"]
                   if isinstance(c, Mapping)]
            rest = {k: v for k, v in value.items() if k != "choices"}
        elif "role" in value and "content" in value:
            raw = [value]
        else:
            return None
    else:
        return None
    messages = [m for m in (_message(r) for r in raw) if m is not None]
    if not messages or len(messages) != len(raw):
        return None
    return messages, rest


def _message(raw: Any) -> ChatMessage | None:
    if not isinstance(raw, Mapping) or "role" not in raw:
        return None
    calls = [_tool_call(c) for c in raw.get("tool_calls") or [] if isinstance(c, Mapping)]
    texts: list[str] = []
    content = raw.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                kind = part.get("type")
                if kind == "tool_use":
                    calls.append(ToolCall(str(part.get("name", "")), json.dumps(
                        part.get("input", {}), ensure_ascii=False, default=str)))
                elif isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "tool_result":
                    texts.append(_as_text(part.get("content")))
                else:
                    texts.append(json.dumps(part, ensure_ascii=False, default=str))
    elif content is not None:
        texts.append(json.dumps(content, ensure_ascii=False, default=str))
    return ChatMessage(role=str(raw.get("role") or "?"), content="\n".join(texts),
                       tool_calls=calls, tool_call_id=str(raw.get("tool_call_id") or ""))


def _tool_call(raw: Mapping[str, Any]) -> ToolCall:
    function = raw.get("function")
    fn: Mapping[str, Any] = function if isinstance(function, Mapping) else raw
    args = fn.get("arguments", fn.get("args", ""))
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False, default=str)
    return ToolCall(str(fn.get("name", "")), args)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(p.get("text", "") if isinstance(p, Mapping) else str(p) for p in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def conversation_text(messages: list[ChatMessage]) -> str:
    """Plain text of a conversation (for $PAGER): a role line, then the text as written."""
    lines: list[str] = []
    for m in messages:
        lines.append(f"── {m.role}" + (f" (result of {m.tool_call_id})" if m.tool_call_id
                                         else ""))
        if m.content:
            lines.append(m.content)
        lines.extend(f"→ call {c.signature()}" for c in m.tool_calls)
        lines.append("")
    return "\n".join(lines).rstrip("\n")
