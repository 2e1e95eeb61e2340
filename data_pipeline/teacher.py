"""The teacher: any OpenAI-compatible chat endpoint, made robust enough for long unattended runs.

Transport failures (429 honouring Retry-After, 5xx, timeouts, dropped connections, garbled bodies) are retried by
the project's one policy, agentlm.api_retry (tenacity; exponential backoff and jitter), each retry counted per stage
in the ledger; a prompt too long for the teacher becomes ContextLimitExceeded. Content failures (empty, refused, or
rejected by the caller's validator, e.g. "not a valid action of this environment") are retried a configured number
of times with a fresh request; if the reply is still bad the call raises `ContentFailure`, which callers record
instead of crashing. Every complete response is cached by its request (including the content-retry attempt number),
so a rerun replays the identical sequence of replies for free.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any, Callable

import openai

from agentlm.api_retry import MalformedResponse, RetryPolicy, call_with_retries, retry_kind
from agentlm.envs.agents import to_openai_messages
from data_pipeline.accounting import Ledger
from data_pipeline.cache import ResponseCache, request_key

log = logging.getLogger(__name__)

REFUSAL = re.compile(r"^\s*(I'?m sorry,? but I (can(not|'t)|am unable)|I can(not|'t) (help|assist) with"
                     r"|As an AI language model, I can(not|'t))", re.IGNORECASE)

Validator = Callable[[str], "str | None"]  # returns a reason when the reply is unusable, else None


class TeacherError(RuntimeError):
    """The endpoint could not be reached or rejected the request after every retry (nothing was cached)."""


class ContentFailure(RuntimeError):
    """The endpoint answered, but every attempt was empty, a refusal or rejected by the validator."""

    def __init__(self, reason: str, last_text: str):
        super().__init__(reason)
        self.reason = reason
        self.last_text = last_text


class TeacherClient:
    """Chat completions with retries, a request-keyed cache, bounded concurrency and per-stage accounting."""

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None,
                 cache: ResponseCache | None = None, ledger: Ledger | None = None, concurrency: int = 4,
                 timeout_s: float = 60.0, max_retries: int = 6, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, content_retries: int = 2, temperature: float = 0.0,
                 max_tokens: int = 512, system: str | None = None, seed: int | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.model = model
        self.base_url = base_url
        self.cache = cache
        self.ledger = ledger or Ledger()
        self.max_retries = max_retries
        self.retry = RetryPolicy(max_retries=max_retries, backoff_base_s=backoff_base_s,
                                 backoff_max_s=backoff_max_s, sleep=sleep)
        self.content_retries = content_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.system = system
        self.seed = seed
        self._sem = threading.BoundedSemaphore(max(1, concurrency))
        # The SDK's own retries are off: agentlm.api_retry's honour Retry-After, add jitter and are counted.
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout_s,
                                     max_retries=0)

    @classmethod
    def from_config(cls, cfg, *, cache: ResponseCache | None, ledger: Ledger | None) -> "TeacherClient":
        base_url = cfg.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
        api_key = cfg.get("api_key") or os.environ.get(cfg.get("api_key_env", "OPENAI_API_KEY")) or None
        model = cfg.get("model") or os.environ.get("OPENAI_MODEL")
        if not model:
            raise ValueError("teacher.model is empty (set --config.teacher.model or OPENAI_MODEL)")
        return cls(model=model, base_url=base_url, api_key=api_key, cache=cache, ledger=ledger,
                   concurrency=cfg.get("concurrency", 4), timeout_s=cfg.get("timeout_s", 60.0),
                   max_retries=cfg.get("max_retries", 6), backoff_base_s=cfg.get("backoff_base_s", 1.0),
                   backoff_max_s=cfg.get("backoff_max_s", 60.0), content_retries=cfg.get("content_retries", 2),
                   temperature=cfg.get("temperature", 0.0), max_tokens=cfg.get("max_tokens", 512),
                   system=cfg.get("system") or None, seed=cfg.get("seed", None))

    @property
    def describe(self) -> dict[str, Any]:
        return {"kind": "openai", "model": self.model, "base_url": self.base_url, "temperature": self.temperature,
                "max_tokens": self.max_tokens}

    def chat(self, conversation: list[dict[str, Any]], *, stage: str, validate: Validator | None = None,
             system: str | None = None, max_tokens: int | None = None, temperature: float | None = None) -> str:
        """The teacher's reply to an AgentInstruct conversation; raises ContentFailure or TeacherError."""
        messages = to_openai_messages(conversation, system if system is not None else self.system)
        reason, text = "", ""
        for attempt in range(self.content_retries + 1):
            request = {"model": self.model, "messages": messages,
                       "temperature": self.temperature if temperature is None else temperature,
                       "max_tokens": max_tokens or self.max_tokens, "seed": self.seed, "attempt": attempt}
            text = self._complete(request, stage)
            reason = self._content_problem(text, validate)
            if reason is None:
                return text
            gave_up = attempt == self.content_retries
            self.ledger.record_content_failure(stage, gave_up=gave_up)
            log.info("teacher reply rejected (%s), attempt %d/%d", reason, attempt + 1, self.content_retries + 1)
        raise ContentFailure(reason, text)

    def chat_messages(self, messages: list[dict[str, Any]], *, stage: str, tools: list[dict] | None = None,
                      attempt: int = 0) -> dict[str, Any]:
        """One completion of raw chat messages (tool calls and tool results included) with optional `tools`
        (OpenAI function calling), with the same retries, cache and accounting as `chat`. Returns
        {"text", "tool_calls": [{"id", "name", "arguments"}], ...}; content checks are the caller's (`attempt`
        numbers its re-asks so each is cached apart)."""
        request = {"model": self.model, "messages": messages, "temperature": self.temperature,
                   "max_tokens": self.max_tokens, "seed": self.seed, "attempt": attempt, "tools": tools or None}
        return self._complete_response(request, stage)

    @staticmethod
    def _content_problem(text: str, validate: Validator | None) -> str | None:
        if not text.strip():
            return "empty reply"
        if REFUSAL.search(text):
            return "refusal"
        if validate is not None:
            return validate(text)
        return None

    def _complete(self, request: dict[str, Any], stage: str) -> str:
        return self._complete_response(request, stage)["text"]

    def _complete_response(self, request: dict[str, Any], stage: str) -> dict[str, Any]:
        key = request_key(request)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.ledger.record_cache_hit(stage)
                return hit
        response = self._call_with_retries(request, stage)
        self.ledger.record_response(stage, response["prompt_tokens"], response["completion_tokens"])
        if self.cache is not None:
            self.cache.put(key, request, response)
        return response

    def _call_with_retries(self, request: dict[str, Any], stage: str) -> dict[str, Any]:
        params = {k: v for k, v in request.items() if k != "attempt" and v is not None}

        def call() -> dict[str, Any]:
            with self._sem:  # bounds requests in flight, not the waits between them
                completion = self._client.chat.completions.create(**params)
            return self._parse(completion)

        try:
            return call_with_retries(call, self.retry, on_retry=lambda kind: self.ledger.record_retry(stage, kind))
        except Exception as e:  # ContextLimitExceeded and programming errors pass through unchanged
            kind = retry_kind(e)
            if kind is not None:
                raise TeacherError(f"teacher call failed after {self.max_retries + 1} attempts (last: {kind})") \
                    from e
            if isinstance(e, openai.APIStatusError):
                raise TeacherError(f"{self.base_url or 'OpenAI'} rejected the request: HTTP {e.status_code}: "
                                   f"{str(e)[:300]}") from e
            raise

    @staticmethod
    def _parse(completion) -> dict[str, Any]:
        try:
            choice = completion.choices[0]
            text = choice.message.content or ""
            usage = completion.usage
            calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                     for c in (getattr(choice.message, "tool_calls", None) or [])]
            return {"text": text, "finish_reason": choice.finish_reason, **({"tool_calls": calls} if calls else {}),
                    "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                    "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0)}
        except (AttributeError, IndexError, TypeError) as e:
            raise MalformedResponse(str(e)) from e
