"""Function calling on a model tuned on the text action format: chat messages with `tools` in, `tool_calls` out.

AgentLM is trained on tool-use trajectories written as text (agentlm.envs.tools.text_protocol): the tool list
and the format rules in the first human turn, each action an `Action: tool({...})` reply, each result a human
turn `Observation: ...`. A function-calling client sends the same episode as OpenAI messages: `tools=`, assistant
messages with `tool_calls`, `role: tool` results. This module turns such a request back into the text-format
conversation the model was trained on (so the prompt has the training tokens, whichever protocol the client
speaks) and parses the model's text reply into `tool_calls`:

- the tool list goes into the first user message as the text protocol's rules; a message written for
  agentlm's function-calling protocol (`function_instruction`) has its function-calling rules swapped for the
  text rules, which gives exactly the training turn `text_instruction(...)`;
- an assistant message with tool calls becomes one `Thought: ...\\nAction: name({...})` turn per call, and each
  tool result the `Observation: ...` turn after it;
- `tool_choice`: "auto" (default) parses the reply; "none" leaves tools out and returns text; "required" or a
  named function starts the reply with `Action:` (or `Action: name(`), so the model must call one.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from agentlm.envs.tools.text_protocol import (FUNCTION_RULES, OBSERVATION_TEMPLATE, TEXT_RULES, ToolCall,
                                              format_call, parse_reply, tool_list)


class ToolRequestError(ValueError):
    """A request whose tools, tool_choice or tool messages do not fit together (answered as a 400)."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclasses.dataclass
class ToolPlan:
    """What a chat request with tools means for rendering and for reading the reply."""

    conversation: list[dict]  # {"role": system|user|assistant, "content": str}, alternating, text format
    parse: bool  # read the reply as a possible tool call
    prefill: str = ""  # text the reply is forced to start with (tool_choice required / named)


def _schemas(tools: list[dict]) -> list[dict]:
    """OpenAI `tools` entries as the complete function schemas the text protocol's tool list reads."""
    out = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type", "function") != "function" or not isinstance(fn, dict) \
                or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ToolRequestError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ..., ...}}}}",
                           "tools")
        params = fn.get("parameters") or {}
        if not isinstance(params, dict) or not isinstance(params.get("properties", {}), dict):
            raise ToolRequestError(f"tools[{i}].function.parameters must be a JSON-schema object", "tools")
        out.append({"name": fn["name"], "description": fn.get("description") or "",
                    "parameters": {"type": "object", "properties": params.get("properties", {}),
                                   "required": list(params.get("required", []))}})
    return out


def text_rules(tools: list[dict]) -> str:
    """The text protocol's format rules with this request's tool list (the tail of the training instruction)."""
    return TEXT_RULES.format(tools=tool_list(_schemas(tools)))


def _with_rules(content: str, rules: str) -> str:
    body = content.strip()
    if body.endswith(FUNCTION_RULES):
        body = body[:-len(FUNCTION_RULES)].rstrip()
    return f"{body}\n\n{rules}"


def _call_text(i: int, call: Any, thought: str) -> tuple[str, str]:
    """(tool_call_id, text-format action) of one assistant tool call."""
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ToolRequestError(f"messages[{i}].tool_calls: each entry needs function.name and function.arguments",
                       "messages")
    raw = fn.get("arguments") or "{}"
    args: Any = raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
            args = parsed if isinstance(parsed, dict) else raw
        except json.JSONDecodeError:
            args = raw  # shown to the model as written, as the text protocol records malformed arguments
    return str(call.get("id") or f"call_{i}"), format_call(fn["name"], args, thought)


def _thought(content: str | None) -> str:
    text = (content or "").strip()
    return text[len("Thought:"):].strip() if text.startswith("Thought:") else text


def to_conversation(messages: list[dict], tools: list[dict] | None, tool_choice: Any = None) -> ToolPlan:
    """The text-format conversation of a chat request (messages already checked to be objects with a role).

    Raises ApiError (400) naming the message for a tool result without a matching call, or a call without a
    result before the next user or assistant message."""
    choice = "auto" if tool_choice is None else tool_choice
    named = None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or not isinstance(named, str):
            raise ToolRequestError("tool_choice must be 'none', 'auto', 'required' or {'type': 'function', "
                                "'function': {'name': ...}}", "tool_choice")
    elif choice not in ("none", "auto", "required"):
        raise ToolRequestError(f"tool_choice={choice!r}: expected 'none', 'auto', 'required' or a named function",
                       "tool_choice")
    use_tools = bool(tools) and choice != "none"
    if choice != "auto" and choice != "none" and not tools:
        raise ToolRequestError("tool_choice asks for a tool call but no tools were given", "tool_choice")
    if named is not None and named not in {s["name"] for s in _schemas(tools)}:
        raise ToolRequestError(f"tool_choice names {named!r}, which is not among the tools", "tool_choice")

    out: list[dict] = []
    pending: list[tuple[str, str]] = []  # (call id, action text) awaiting their tool results
    results: dict[str, str] = {}

    def flush(i: int) -> None:
        for call_id, action in pending:
            if call_id not in results:
                raise ToolRequestError(f"messages[{i}]: tool call {call_id!r} has no `role: tool` result before it",
                               "messages")
            out.append({"role": "assistant", "content": action})
            out.append({"role": "user", "content": OBSERVATION_TEMPLATE.format(observation=results[call_id])})
        pending.clear()
        results.clear()

    for i, m in enumerate(messages):
        role, content = m["role"], m.get("content")
        if role == "tool":
            call_id = m.get("tool_call_id")
            if not any(c == call_id for c, _ in pending):
                raise ToolRequestError(f"messages[{i}]: a tool result must answer a tool call of the assistant "
                                    f"message before it (tool_call_id {call_id!r})", "messages")
            results[call_id] = content or ""
            continue
        flush(i)
        if role == "assistant" and m.get("tool_calls"):
            pending.extend(_call_text(i, c, _thought(content) if j == 0 else "")
                           for j, c in enumerate(m["tool_calls"]))
            continue
        out.append({"role": role, "content": content or ""})
    flush(len(messages))
    if use_tools:
        rules = text_rules(tools)
        first = next((m for m in out if m["role"] == "user"), None)
        if first is None:
            raise ToolRequestError("a request with tools needs a user message to carry them", "messages")
        first["content"] = _with_rules(first["content"], rules)
    prefill = f"Action: {named}(" if named else ("Action:" if choice == "required" else "")
    return ToolPlan(out, use_tools, prefill)


def reply_message(text: str, call_id: str) -> tuple[dict, str]:
    """(assistant message, finish_reason) for a model reply: `tool_calls` when it is a tool call, else content.

    The arguments are passed on as the model wrote them (a client reports malformed JSON back as a tool error,
    as the text-protocol environment does); the thought becomes the message content."""
    parsed = parse_reply(text)
    if not isinstance(parsed, ToolCall):
        return {"role": "assistant", "content": text}, "stop"
    raw = json.dumps(parsed.args, ensure_ascii=False) if parsed.error is None else parsed.raw_args
    return {"role": "assistant", "content": parsed.thought or None,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": parsed.name, "arguments": raw}}]}, "tool_calls"
