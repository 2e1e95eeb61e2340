"""Server-sent events for `stream: true`: the engine's progress callbacks as OpenAI chunk events.

The engine calls `on_update` on its scheduler thread between decode chunks; the callback hands the update to
the request's event loop (`call_soon_threadsafe`) and answers whether the row should stop. When the client goes
away, Starlette cancels the response's generator; its `finally` marks the stream gone, so the next callback
cancels the rows and their batch slots are free for other requests at the next decode chunk.

Text is sent as it becomes final: an incomplete multi-byte character waits for its next byte, and with stop
strings the last few characters are held back until it is clear they do not begin a stop string. A chat reply
with tools is sent whole at the end (one chunk with `tool_calls`, or the text), because whether it is a tool
call is known only once it is complete.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import AsyncIterator

from agentlm.infer import openai_api as api

log = logging.getLogger(__name__)


def event(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _choice(kind: str, idx: int, delta: str, reason: str | None) -> dict:
    if kind == "chat":
        return {"index": idx, "delta": {"content": delta} if delta else {}, "logprobs": None, "finish_reason": reason}
    return {"index": idx, "text": delta, "logprobs": None, "finish_reason": reason}


def _final_text(plan: api.Plan, row: int, text: str, tokens: list[int]) -> tuple[str, str]:
    cut = [text.find(s) for s in plan.stop_strings if s in text]
    text = text[:min(cut)] if cut else text
    hit_length = not cut and len(tokens) >= plan.rows[row].max_new_tokens
    return text, "length" if hit_length else "stop"


async def stream_events(engine, plan: api.Plan, rid: str, model: str) -> AsyncIterator[bytes]:
    """The SSE byte stream of one request; cancelling the iteration (client gone) cancels its rows."""
    tok = engine.tokenizer
    loop = asyncio.get_running_loop()
    updates: asyncio.Queue = asyncio.Queue()
    gone = threading.Event()

    def on_update(row, tokens, finished):  # engine thread
        if not gone.is_set():
            loop.call_soon_threadsafe(updates.put_nowait, (row, list(tokens), finished))
        return gone.is_set()

    future = engine.submit_generate(plan.rows, on_update)
    holdback = max((len(s) for s in plan.stop_strings), default=1) - 1
    sent = [0] * len(plan.rows)
    open_rows = set(range(len(plan.rows)))
    completion_tokens = 0
    try:
        if plan.kind == "chat":
            for idx in sorted(open_rows):
                yield event(api.envelope("chat", rid, model, [{
                    "index": idx, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                    "finish_reason": None}], chunk=True))
        while open_rows:
            try:
                row, tokens, finished = await asyncio.wait_for(updates.get(), 0.5)
            except asyncio.TimeoutError:
                if future.done() and future.exception() is not None:
                    raise future.exception()
                continue
            prompt = plan.prompts[row // plan.n] if plan.kind == "completion" else None
            text = api.continuation_text(tok, tokens, prompt)
            if plan.tools:  # sent whole once complete: only then is it known whether it is a tool call
                if finished:
                    open_rows.discard(row)
                    completion_tokens += len(tokens)
                    yield event(api.envelope("chat", rid, model, [_tool_choice(tok, plan, row, tokens)], chunk=True))
                continue
            reason = None
            if finished:
                text, reason = _final_text(plan, row, text, tokens)
                open_rows.discard(row)
                completion_tokens += len(tokens)
            else:
                text = text.rstrip("\ufffd")  # an incomplete multi-byte character waits for its next byte
                text = text[:max(0, len(text) - holdback)] if plan.stop_strings else text
            delta = text[sent[row]:] if len(text) > sent[row] else ""
            sent[row] = max(sent[row], len(text))
            if delta or reason:
                yield event(api.envelope(plan.kind, rid, model, [_choice(plan.kind, row, delta, reason)], chunk=True))
        if plan.include_usage:
            yield event(api.envelope(plan.kind, rid, model, [],
                                     api.usage(sum(map(len, plan.prompts)), completion_tokens), chunk=True))
    except asyncio.CancelledError:
        log.info("stream client went away; its rows are cancelled")
        raise
    except Exception as err:  # the headers are out: the error travels as an event
        log.exception("streamed generation failed")
        yield event(api.ApiError(500, f"generation failed: {err}", type_="server_error").body())
    finally:
        gone.set()  # rows still running (the client left, or the stream failed) stop at their next chunk
    yield b"data: [DONE]\n\n"


def _tool_choice(tok, plan: api.Plan, row: int, tokens: list[int]) -> dict:
    from agentlm.infer.generate import GenerationResult

    text = api.continuation_text(tok, tokens, plan.prompts[0] if plan.prefill else None)
    reason = _final_text(plan, row, text, tokens)[1]
    hits = [s for s in plan.stop_strings if s in text]
    stop = min(hits, key=text.find) if hits else None  # cut there, as the non-streamed reply is
    result = GenerationResult(tokens, "length" if reason == "length" else "stop", stop)
    message, reason = api.chat_message(tok, plan, result)
    message.pop("role")
    if message.get("tool_calls"):
        message["tool_calls"] = [{"index": 0, **c} for c in message["tool_calls"]]
    return {"index": row, "delta": message, "logprobs": None, "finish_reason": reason}
