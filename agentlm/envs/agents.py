"""Agents the loop can drive: an OpenAI-compatible chat endpoint and fixed replies (each environment's oracle is
named by its registry entry).

A local model is wrapped elsewhere (agentlm.infer) behind the same `act(conversation, task) -> str` method.
"""
from __future__ import annotations

import time
from typing import Sequence

from agentlm.envs.base import ContextLimitExceeded, Message, Task

ROLE = {"human": "user", "gpt": "assistant"}


def to_openai_messages(conversation: list[Message], system: str | None = None) -> list[dict]:
    """AgentInstruct turns -> chat messages (human -> user, gpt -> assistant), with an optional system prompt."""
    msgs = [{"role": "system", "content": system}] if system else []
    for n, m in enumerate(conversation):
        if m.get("from") not in ROLE:
            raise ValueError(f"turn {n}: 'from' must be 'human' or 'gpt', got {m.get('from')!r}")
        msgs.append({"role": ROLE[m["from"]], "content": m["value"]})
    return msgs


class OpenAIChatAgent:
    """Talks to any OpenAI-compatible chat endpoint (a teacher API, or agentlm.infer's server).

    Greedy by default, as AgentLM was evaluated. A reply that the server rejects for its length is reported as
    ContextLimitExceeded, so the loop records a context-limit outcome rather than an error.
    """

    def __init__(self, base_url: str | None, model: str, api_key: str | None = None, temperature: float = 0.0,
                 max_tokens: int = 512, system: str | None = None, retries: int = 3, timeout: float = 120.0,
                 stop: Sequence[str] | None = None, client=None):
        if client is None:
            import openai
            client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=0)
        self.client, self.model = client, model
        self.temperature, self.max_tokens, self.system = temperature, max_tokens, system
        self.retries, self.stop = retries, list(stop) if stop else None

    def act(self, conversation: list[Message], task: Task) -> str:
        messages = to_openai_messages(conversation, self.system)
        resp = chat_completion(self.client, self.retries, model=self.model, messages=messages,
                               temperature=self.temperature, max_tokens=self.max_tokens, stop=self.stop)
        return resp.choices[0].message.content or ""


def chat_completion(client, retries: int, **request):
    """One chat completion with the agents' error policy: transport faults (connection, 429, 5xx, timeout) are
    retried with exponential backoff; a 400 that says the prompt is too long becomes ContextLimitExceeded (an
    episode outcome, not a crash); any other error propagates."""
    import openai

    delay = 1.0
    for attempt in range(retries + 1):
        try:
            return client.chat.completions.create(**request)
        except openai.BadRequestError as e:
            text = str(e).lower()
            if "context" in text or "maximum" in text or "too long" in text:
                raise ContextLimitExceeded(str(e)) from e
            raise
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError,
                openai.APITimeoutError):
            if attempt == retries:
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


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
