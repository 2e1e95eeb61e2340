"""The one retry policy for calls to OpenAI-compatible endpoints (agents under evaluation, the ReWOO answer judge,
the pipeline's teacher, function-calling agents), built on tenacity.

What it guarantees, wherever it is used:
- transport faults are retried: 429, 5xx, 408/409, timeouts, dropped connections and garbled bodies
  (`MalformedResponse`, a JSON error, or the SDK's response validation), with exponential backoff and jitter
  (jitter spreads out workers that failed together);
- a server's Retry-After (or retry-after-ms) is honoured: after a 429 the wait is what the server asked for, after
  another retryable status it is at least that;
- a 400 that says the prompt is too long is not retried: it becomes `ContextLimitExceeded`, which the episode loop
  records as a context-limit outcome (the paper's error analysis counts them);
- any other error (401, a plain 400, ...) propagates at once, unretried;
- `on_retry(kind)` is called for every failed retryable attempt (the teacher's ledger counts them per stage), and
  when retries run out the last exception propagates (`retry_kind(e)` names it).
The OpenAI SDK's own retries are turned off by callers (`max_retries=0`): they neither honour every Retry-After
form nor report attempts.
"""
from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from agentlm.envs.base import ContextLimitExceeded

if TYPE_CHECKING:
    import tenacity

# openai and tenacity are imported where a call is made: importing openai takes seconds, and every environment
# module imports this one through agentlm.envs.agents without necessarily calling an endpoint.
log = logging.getLogger(__name__)
T = TypeVar("T")
_CONTEXT_WORDS = ("context", "maximum", "too long")  # how servers (OpenAI, vLLM, ours) phrase a too-long prompt


class MalformedResponse(Exception):
    """The endpoint answered 200 with a body that is not a usable completion (retried like a transport fault)."""


@dataclasses.dataclass
class RetryPolicy:
    max_retries: int = 6  # retries after the first attempt
    backoff_base_s: float = 1.0  # first backoff; doubles each retry ...
    backoff_max_s: float = 60.0  # ... up to this
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder
    rng: random.Random = dataclasses.field(default_factory=random.Random)

    def wait_s(self, kind: str, retry_number: int, retry_after: float | None) -> float:
        """Seconds before retry `retry_number` (1 = the first retry) after a fault of `kind`."""
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry_number - 1))
        delay = backoff * (0.5 + self.rng.random())
        if retry_after is not None:
            # A 429 waits what the server asked (not more: its clock is the one that counts); other statuses wait
            # at least that. A little jitter on top keeps workers told the same time from returning together.
            delay = max(0.0 if kind == "429" else delay, retry_after) + self.rng.random() * 0.1 * retry_after
        return delay


def retry_after_s(headers) -> float | None:
    """Seconds the server asked us to wait (Retry-After in seconds or as an HTTP date, or retry-after-ms)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())


def is_context_limit(error: BaseException) -> bool:
    import openai

    return isinstance(error, openai.BadRequestError) and any(w in str(error).lower() for w in _CONTEXT_WORDS)


def retry_kind(error: BaseException) -> str | None:
    """The fault's name when it is worth retrying ("429", "503", "timeout", "connection", "malformed_body"), else
    None."""
    import openai

    if isinstance(error, openai.RateLimitError):
        return "429"
    if isinstance(error, openai.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    if isinstance(error, openai.APIStatusError):
        return str(error.status_code) if error.status_code >= 500 or error.status_code in (408, 409) else None
    if isinstance(error, (openai.APIResponseValidationError, json.JSONDecodeError, MalformedResponse)):
        return "malformed_body"
    return None


def _retry_after_of(error: BaseException | None) -> float | None:
    response = getattr(error, "response", None)
    return retry_after_s(getattr(response, "headers", None))


def call_with_retries(call: Callable[[], T], policy: RetryPolicy,
                      on_retry: Callable[[str], None] | None = None) -> T:
    """`call()` under the policy (see the module docstring); raises ContextLimitExceeded for a too-long prompt."""
    import openai
    import tenacity

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception()
        return policy.wait_s(retry_kind(error) or "", state.attempt_number, _retry_after_of(error))

    def after(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(retry_kind(state.outcome.exception()))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.info("%s; retry %d/%d in %.2fs", retry_kind(state.outcome.exception()), state.attempt_number,
                 policy.max_retries, state.next_action.sleep)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: retry_kind(e) is not None),
        stop=tenacity.stop_after_attempt(policy.max_retries + 1), wait=wait, after=after,
        before_sleep=before_sleep, sleep=policy.sleep, reraise=True)
    try:
        return retrying(call)
    except openai.BadRequestError as e:
        if is_context_limit(e):
            raise ContextLimitExceeded(str(e)[:300]) from e
        raise


def chat_completion(client, policy: RetryPolicy, on_retry: Callable[[str], None] | None = None,
                    **request: Any):
    """One `client.chat.completions.create(**request)` under the policy."""
    return call_with_retries(lambda: client.chat.completions.create(**request), policy, on_retry)
