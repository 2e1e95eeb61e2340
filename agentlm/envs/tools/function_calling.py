"""The OpenAI function-calling protocol over a text-format episode.

The environment always records the text format (agentlm.envs.tools.text_protocol). A function-calling agent
sees the same episode as chat messages: the text-format instruction turn is swapped for the function-calling one,
each `Action: f({...})` reply becomes an assistant message with a `tool_calls` entry, and the `Observation: ...`
that follows becomes the matching `tool` message. The model's answer (tool_calls or plain content) is turned back
into one text-format reply. So a GPT-4-class teacher plays with `tools=`, and its trajectory is exported exactly
as if it had written the text format. When a model returns several tool calls at once only the first is played
(the text format has one action per turn); the model sees the later turns and can issue the others.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from agentlm.api_retry import RetryPolicy, chat_completion
from agentlm.envs.agents import ROLE
from agentlm.envs.base import Message, Task
from agentlm.envs.tools.domain import Domain, load_domain
from agentlm.envs.tools.text_protocol import (OBSERVATION_TEMPLATE, FinalAnswer, FormatError, ToolCall,
                                              format_call, function_instruction, parse_reply, text_instruction)

Complete = Callable[[list[dict], list[dict]], dict]  # (messages, tools) -> assistant message dict


def openai_tools(domain: Domain) -> list[dict]:
    """The `tools=` argument of a chat-completions request."""
    return [{"type": "function", "function": s} for s in domain.schemas]


def _strip_observation(text: str, template: str = OBSERVATION_TEMPLATE) -> str:
    prefix, _, suffix = template.partition("{observation}")
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    if suffix and text.endswith(suffix):
        text = text[:-len(suffix)]
    return text


def to_function_messages(conversation: list[Message], domain: Domain, system: str | None = None,
                         observation_template: str = OBSERVATION_TEMPLATE) -> list[dict]:
    """A text-format episode (AgentInstruct turns) as chat messages with tool calls and tool results."""
    text_prompt = text_instruction(domain.instruction, domain.schemas)
    fc_prompt = function_instruction(domain.instruction)
    msgs: list[dict] = [{"role": "system", "content": system}] if system else []
    pending: str | None = None  # the id of a tool call whose result is the next human turn
    for n, m in enumerate(conversation):
        if m.get("from") not in ROLE:
            raise ValueError(f"turn {n}: 'from' must be 'human' or 'gpt', got {m.get('from')!r}")
        if m["from"] == "human":
            if pending is not None:
                msgs.append({"role": "tool", "tool_call_id": pending,
                             "content": _strip_observation(m["value"], observation_template)})
                pending = None
            else:
                msgs.append({"role": "user", "content": fc_prompt if m["value"] == text_prompt else m["value"]})
            continue
        parsed = parse_reply(m["value"])
        if isinstance(parsed, ToolCall):
            pending = f"call_{n}"
            args = json.dumps(parsed.args, ensure_ascii=False) if parsed.error is None else parsed.raw_args
            msgs.append({"role": "assistant", "content": parsed.thought or None,
                         "tool_calls": [{"id": pending, "type": "function",
                                         "function": {"name": parsed.name, "arguments": args}}]})
        else:
            msgs.append({"role": "assistant", "content": m["value"]})
    return msgs


def reply_from_message(message: dict[str, Any]) -> str:
    """One text-format reply from an assistant message ({"content", "tool_calls"}, SDK objects or dicts)."""
    content = (message.get("content") or "").strip()
    calls = message.get("tool_calls") or []
    if not calls:
        return content
    first = calls[0]
    fn = first.get("function", first)  # OpenAI layout {"function": {...}} or a flat {"name", "arguments"}
    raw = fn.get("arguments") or "{}"
    try:
        args: Any = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(args, dict):
            args = raw if isinstance(raw, str) else json.dumps(raw)
    except json.JSONDecodeError:
        args = raw  # kept as written: the environment reports the malformed arguments to the agent
    thought = content[len("Thought:"):].strip() if content.startswith("Thought:") else content
    return format_call(fn.get("name", ""), args, thought)


def message_dict(message: Any) -> dict[str, Any]:
    """An SDK ChatCompletionMessage (or a dict) as a plain dict with content and tool_calls."""
    if isinstance(message, dict):
        return message
    calls = []
    for c in getattr(message, "tool_calls", None) or []:
        calls.append({"id": c.id, "type": "function",
                      "function": {"name": c.function.name, "arguments": c.function.arguments}})
    return {"content": getattr(message, "content", None), "tool_calls": calls}


class FunctionCallingAgent:
    """An agent that plays a ToolEnv over OpenAI function calling; its replies are text-format turns.

    `complete(messages, tools) -> assistant message dict` is the transport: `FunctionCallingAgent.openai(...)`
    builds one over any OpenAI-compatible endpoint; tests pass an in-process model."""

    def __init__(self, domain: Domain | str, complete: Complete, system: str | None = None,
                 observation_template: str = OBSERVATION_TEMPLATE):
        self.domain = load_domain(domain)
        self.tools = openai_tools(self.domain)
        self.complete, self.system, self.observation_template = complete, system, observation_template

    @classmethod
    def openai(cls, domain: Domain | str, base_url: str | None, model: str, api_key: str | None = None,
               temperature: float = 0.0, max_tokens: int = 512, system: str | None = None, retries: int = 3,
               timeout: float = 120.0, client=None) -> "FunctionCallingAgent":
        import openai

        client = client or openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout,
                                         max_retries=0)

        retry = RetryPolicy(max_retries=retries)

        def complete(messages: list[dict], tools: list[dict]) -> dict:
            resp = chat_completion(client, retry, model=model, messages=messages, tools=tools,
                                   temperature=temperature, max_tokens=max_tokens)
            return message_dict(resp.choices[0].message)

        return cls(domain, complete, system=system)

    def act(self, conversation: list[Message], task: Task) -> str:
        messages = to_function_messages(conversation, self.domain, self.system, self.observation_template)
        return reply_from_message(message_dict(self.complete(messages, self.tools)))


__all__ = ["FunctionCallingAgent", "FinalAnswer", "FormatError", "openai_tools", "reply_from_message",
           "to_function_messages"]
