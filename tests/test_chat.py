"""Unit tests of reading chat-shaped span inputs/outputs as conversations."""

from __future__ import annotations

import json

from trace_tui.core.chat import chat_messages, conversation_text


def test_openai_request_and_response_read_as_messages() -> None:
    request = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief.\nCite."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"}]}
    parsed = chat_messages(json.dumps(request))  # MLflow stores it as a JSON string
    assert parsed is not None
    messages, rest = parsed
    assert [m.role for m in messages] == ["system", "user", "tool"]
    assert messages[0].content == "Be brief.\nCite."
    assert rest == {"model": "gpt-4o"}
    response = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]}}]}
    (reply,), _ = chat_messages(response)
    assert reply.tool_calls[0].signature() == "add(a=1, b=2)"
    text = conversation_text([*messages, reply])
    assert "── system\nBe brief.\nCite." in text
    assert "── tool (result of call_1)\n42" in text
    assert text.endswith("→ call add(a=1, b=2)")


def test_anthropic_tool_use_and_non_chat_values() -> None:
    reply = {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "name": "search", "input": {"q": "x"}}]}
    (message,), _ = chat_messages(reply)
    assert message.content == "Let me look."
    assert message.tool_calls[0].signature() == 'search(q="x")'
    for value in (None, "plain text", {"question": "q"}, [1, 2], {"messages": "no"},
                  {"messages": [{"content": "no role"}]}):
        assert chat_messages(value) is None, value
