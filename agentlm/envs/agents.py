"""Agents the loop can drive: an OpenAI-compatible chat endpoint and fixed replies (each environment's oracle is
named by its registry entry).

A local model is wrapped elsewhere (agentlm.infer) behind the same `act(conversation, task) -> str` method.
"""
from __future__ import annotations

from typing import Sequence

from agentlm.api_retry import RetryPolicy, chat_completion
from agentlm.envs.base import Message, Task

ROLE = {"human": "user", "gpt": "assistant"}


def to_openai_messages(conversation: list[Message], system: str | None = None) -> list[dict]:
    """AgentInstruct turns -> chat messages (human -> user, gpt -> assistant), with an optional system prompt."""
    msgs = [{"role": "system", "content": system}] if system else []
    for n, m in enumerate(conversation):
        if m.get("from") not in ROLE:
            raise ValueError(f"turn {n}: 'from' must be 'human' or 'gpt', got {m.get('from')!r}")
        value = m["value"]
        msgs.append({"role": ROLE[m["from"]], "content": value if isinstance(value, str) else
                     [_openai_part(part, f"turn {n} part {j}") for j, part in enumerate(value)]})
    return msgs


def _openai_part(part: dict, where: str) -> dict:
    """One content part of an observation (agentlm.data.images: text, or an image by path or bytes) as OpenAI's
    chat part; images travel inline as base64 data URLs (an endpoint cannot read this machine's files)."""
    import base64

    from agentlm.data import images

    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"type": "text", "text": part["text"]}
    if kind != "image":
        raise ValueError(f"{where}: a content part must be a text or image part, got {part!r:.80}")
    data = images.load_part(part, None, where).data  # the training rows' reader: hash-checked, decodable
    mime = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}}


class OpenAIChatAgent:
    """Talks to any OpenAI-compatible chat endpoint (a teacher API, or agentlm.infer's server).

    Greedy by default, as AgentLM was evaluated. Calls go through agentlm.api_retry (transport faults retried,
    Retry-After honoured); a reply that the server rejects for its length is reported as ContextLimitExceeded, so
    the loop records a context-limit outcome rather than an error.
    """

    def __init__(self, base_url: str | None, model: str, api_key: str | None = None, temperature: float = 0.0,
                 max_tokens: int = 512, system: str | None = None, retries: int = 3, timeout: float = 120.0,
                 stop: Sequence[str] | None = None, client=None):
        if client is None:
            import openai
            client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=0)
        self.client, self.model = client, model
        self.temperature, self.max_tokens, self.system = temperature, max_tokens, system
        self.retry, self.stop = RetryPolicy(max_retries=retries), list(stop) if stop else None

    def act(self, conversation: list[Message], task: Task) -> str:
        messages = to_openai_messages(conversation, self.system)
        resp = chat_completion(self.client, self.retry, model=self.model, messages=messages,
                               temperature=self.temperature, max_tokens=self.max_tokens, stop=self.stop)
        return resp.choices[0].message.content or ""


class ReplayAgent:
    """Replies with a fixed list, one per turn (then repeats the last): scripted agents for tests and demos."""

    def __init__(self, replies: Sequence[str]):
        if not replies:
            raise ValueError("ReplayAgent needs at least one reply")
        self.replies = list(replies)

    def act(self, conversation: list[Message], task: Task) -> str:
        turn = sum(1 for m in conversation if m["from"] == "gpt" and m.get("loss"))
        return self.replies[min(turn, len(self.replies) - 1)]


def n_agent_turns(conversation: list[Message]) -> int:
    """Trajectory turns so far (scaffold replies carry loss=False and do not count)."""
    return sum(1 for m in conversation if m["from"] == "gpt" and m.get("loss"))
