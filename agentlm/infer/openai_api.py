"""The OpenAI request/response formats: validation of request bodies into generation plans, and responses.

Kept apart from the HTTP plumbing so the rules (defaults, limits, what is refused) read in one place:
- /v1/completions: prompt as a string, a list of strings, a token-id list or a list of those; `echo` and
  `logprobs` (0..20) give per-token log-likelihoods of the prompt, which is how lm-evaluation-harness's
  `local-completions` model computes loglikelihood (echo=True, max_tokens=1, logprobs=1).
- /v1/chat/completions: messages rendered with agentlm.data.template.render_prompt (the training template).
  For a model with a vision path, user messages may hold image parts as data URLs (OpenAI's `image_url`); each
  image becomes patches at placeholder tokens exactly as training renders image rows (agentlm.data.images).
- Sampling follows OpenAI's defaults (temperature 1.0, top_p 1.0); `top_k`, `ignore_eos`, `stop_token_ids`
  are accepted as vLLM does. Options that would silently change results if ignored (penalties, logit_bias,
  suffix, best_of > n) are refused with 400 instead.
"""
from __future__ import annotations

import dataclasses
import random
import time
import uuid
from typing import Any

from agentlm.infer.generate import MAX_TOP_LOGPROBS, GenerationRequest, GenerationResult, TokenScores


class ApiError(Exception):
    """An error answered as OpenAI's JSON error body with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclasses.dataclass
class Limits:
    max_model_len: int  # prompt + completion tokens
    max_prompt_tokens: int
    max_tokens: int  # cap on a request's max_tokens (and the default for chat)
    max_body_bytes: int = 4 << 20
    max_n: int = 16
    max_prompts: int = 256  # prompts in one /v1/completions request
    max_stop: int = 16


@dataclasses.dataclass
class Plan:
    """What one request asks the engine for: rows to generate (prompt-major, n per prompt), prompts to score."""

    kind: str  # "completion" | "chat"
    prompts: list[list[int]]
    prompt_texts: list[str | None]
    rows: list[GenerationRequest]
    n: int
    stream: bool
    include_usage: bool
    echo: bool = False
    logprobs: int | None = None  # completions: top alternatives; chat: top_logprobs when logprobs=true
    stop_strings: tuple[str, ...] = ()
    tools: bool = False  # chat with tools: the reply is read as a possible tool call (agentlm.infer.tool_calls)
    prefill: str = ""  # text the chat reply was forced to start with (tool_choice), part of the reply


# ---- field validation -----------------------------------------------------------------------------------

def _field(body: dict, name: str, kinds, default=None, *, check=None, why: str = ""):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ApiError(400, f"'{name}' must be {why or kinds}, got a boolean", name)
    if not isinstance(value, kinds):
        raise ApiError(400, f"'{name}' must be {why or getattr(kinds, '__name__', kinds)}, got "
                            f"{type(value).__name__}", name)
    if check is not None and not check(value):
        raise ApiError(400, f"'{name}'={value!r} is out of range: must be {why}", name)
    return value


def _refuse_unsupported(body: dict, tools_ok: bool = False) -> None:
    for name, neutral in (("presence_penalty", 0), ("frequency_penalty", 0), ("repetition_penalty", 1)):
        if body.get(name) not in (None, neutral, float(neutral)):
            raise ApiError(400, f"'{name}' is not supported by this server (only {neutral})", name)
    if body.get("logit_bias"):
        raise ApiError(400, "'logit_bias' is not supported by this server", "logit_bias")
    if body.get("suffix"):
        raise ApiError(400, "'suffix' (insertion) is not supported by this server", "suffix")
    if body.get("functions") or body.get("function_call"):
        raise ApiError(400, "the legacy 'functions' field is not supported; send 'tools'", "functions")
    if body.get("tools") and not tools_ok:
        raise ApiError(400, "'tools' belong to /v1/chat/completions", "tools")
    fmt = body.get("response_format")
    if fmt and (not isinstance(fmt, dict) or fmt.get("type") not in (None, "text")):
        raise ApiError(400, "only response_format {'type': 'text'} is supported", "response_format")


def check_model(body: dict, served: str) -> None:
    model = body.get("model")
    if model is not None and model != served:
        raise ApiError(404, f"The model '{model}' does not exist; this server serves '{served}'", "model",
                       "model_not_found", "NotFoundError")


def _stop_strings(body: dict, limits: Limits) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of strings", "stop")
    if len(stops) > limits.max_stop:
        raise ApiError(400, f"'stop' has {len(stops)} strings; at most {limits.max_stop}", "stop")
    return tuple(s for s in stops if s)


def _sampling(body: dict, limits: Limits) -> dict:
    temperature = float(_field(body, "temperature", (int, float), 1.0, check=lambda v: 0 <= v <= 2,
                               why="a number in [0, 2]"))
    top_p = float(_field(body, "top_p", (int, float), 1.0, check=lambda v: 0 < v <= 1, why="in (0, 1]"))
    top_k = int(_field(body, "top_k", int, 0, check=lambda v: v >= -1, why="-1, 0 (off) or a positive int"))
    seed = _field(body, "seed", int, None, why="an integer")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    n = _field(body, "n", int, 1, check=lambda v: 1 <= v <= limits.max_n, why=f"in [1, {limits.max_n}]")
    best_of = _field(body, "best_of", int, None, why="an integer")
    if best_of is not None and best_of != n:
        raise ApiError(400, "'best_of' different from 'n' is not supported", "best_of")
    return dict(temperature=temperature, top_p=top_p, top_k=max(top_k, 0), seed=seed, n=n)


def _stream_options(body: dict) -> tuple[bool, bool]:
    stream = _field(body, "stream", bool, False, why="a boolean")
    opts = body.get("stream_options") or {}
    if not isinstance(opts, dict):
        raise ApiError(400, "'stream_options' must be an object", "stream_options")
    return stream, bool(stream and opts.get("include_usage"))


def _stop_ids(body: dict, default_ids, vocab: int) -> tuple[int, ...]:
    extra = body.get("stop_token_ids") or []
    if not isinstance(extra, list) or not all(isinstance(i, int) and 0 <= i < vocab for i in extra):
        raise ApiError(400, f"'stop_token_ids' must be a list of token ids in [0, {vocab})", "stop_token_ids")
    ignore_eos = _field(body, "ignore_eos", bool, False, why="a boolean")
    return tuple(dict.fromkeys(([] if ignore_eos else list(default_ids)) + extra))


def _max_tokens(body: dict, names, default: int | None, prompts: list[list[int]], limits: Limits) -> int:
    value = None
    for name in names:
        value = _field(body, name, int, None, check=lambda v: v >= 0, why="a non-negative integer")
        if value is not None:
            break
    longest = max(map(len, prompts))
    if longest > limits.max_prompt_tokens:
        raise ApiError(400, f"the prompt has {longest} tokens; this server accepts at most "
                            f"{limits.max_prompt_tokens}", "messages" if "messages" in body else "prompt",
                       "context_length_exceeded")
    if value is None:
        value = default if default is not None else limits.max_model_len - longest
        value = max(0, min(value, limits.max_tokens, limits.max_model_len - longest))
    if value > limits.max_tokens:
        raise ApiError(400, f"'max_tokens'={value} exceeds this server's limit of {limits.max_tokens}", names[0])
    if longest + value > limits.max_model_len:
        raise ApiError(400, f"This model's maximum context length is {limits.max_model_len} tokens. However, you "
                            f"requested {longest + value} tokens ({longest} in the prompt, {value} in the "
                            "completion).", names[0], "context_length_exceeded")
    return value


# ---- request parsing ------------------------------------------------------------------------------------

def parse_completion(body: dict, tokenizer, cfg, limits: Limits, default_stop_ids) -> Plan:
    _refuse_unsupported(body)
    raw = body.get("prompt")
    if raw is None:
        raise ApiError(400, "'prompt' is required", "prompt")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'prompt' must be a string, a list of strings, a list of token ids, or a list of "
                            "token-id lists", "prompt")
    if len(raw) > limits.max_prompts:
        raise ApiError(400, f"{len(raw)} prompts in one request; at most {limits.max_prompts}", "prompt")
    prompts, texts = [], []
    for i, p in enumerate(raw):
        if isinstance(p, str):
            if tokenizer is None:
                raise ApiError(400, "text prompts need a tokenizer; this server was started without one", "prompt")
            ids = ([tokenizer.bos_id] if tokenizer.bos_id is not None else []) + tokenizer.encode(p)
            prompts.append(ids)
            texts.append(p)
        elif isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
            bad = [t for t in p if not 0 <= t < cfg.vocab_size]
            if bad:
                raise ApiError(400, f"prompt {i}: token id {bad[0]} is outside the vocabulary [0, "
                                    f"{cfg.vocab_size})", "prompt")
            prompts.append(list(p))
            texts.append(None)
        else:
            raise ApiError(400, f"prompt {i} must be a non-empty string or a non-empty list of token ids", "prompt")
    if any(not p for p in prompts):
        raise ApiError(400, "empty prompt (and the tokenizer has no BOS to start from)", "prompt")
    sampling = _sampling(body, limits)
    if len(prompts) * sampling["n"] > limits.max_prompts:
        raise ApiError(400, f"{len(prompts)} prompts x n={sampling['n']} completions exceed this server's limit of "
                            f"{limits.max_prompts} per request", "n")
    stream, include_usage = _stream_options(body)
    echo = _field(body, "echo", bool, False, why="a boolean")
    logprobs = _field(body, "logprobs", int, None, check=lambda v: 0 <= v <= MAX_TOP_LOGPROBS,
                      why=f"an integer in [0, {MAX_TOP_LOGPROBS}]")
    if stream and (echo or logprobs is not None):
        raise ApiError(400, "'echo' and 'logprobs' are not supported together with stream=true", "stream")
    max_tokens = _max_tokens(body, ("max_tokens",), 16, prompts, limits)
    stops = _stop_strings(body, limits)
    if stops and tokenizer is None:
        raise ApiError(400, "'stop' strings need a tokenizer; this server was started without one", "stop")
    stop_ids = _stop_ids(body, default_stop_ids, cfg.vocab_size)
    rows = _rows(prompts, sampling, max_tokens, stop_ids, stops, logprobs or 0)
    return Plan("completion", prompts, texts, rows, sampling["n"], stream, include_usage, echo, logprobs, stops)


def _message(i: int, message: Any, images: list | None = None) -> dict:
    """One chat message checked and normalised: {"role", "content" (str or None), "tool_calls", "tool_call_id"}.
    Image parts of a user message are decoded into `images` as (where, pixels) and leave IMAGE_SENTINEL in the
    text at their place (agentlm.data.images), as validated training rows carry them."""
    from agentlm.data.images import IMAGE_SENTINEL
    from agentlm.infer.openai_images import IMAGE_PART_TYPES, image_pixels

    if not isinstance(message, dict):
        raise ApiError(400, f"messages[{i}] must be an object", "messages")
    role, content = message.get("role"), message.get("content")
    if role not in ("system", "user", "assistant", "developer", "tool"):
        raise ApiError(400, f"messages[{i}].role={role!r} is not supported (system, user, assistant, tool)",
                       "messages")
    if isinstance(content, list):  # content parts: text, and images in user messages
        parts = []
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in IMAGE_PART_TYPES:
                if role != "user":
                    raise ApiError(400, f"{where}: images are only accepted in user messages (role {role!r})",
                                   "messages")
                if images is None:
                    raise ApiError(400, f"{where}: image parts are not accepted here", "messages")
                images.append((where, image_pixels(part, where)))
                parts.append(IMAGE_SENTINEL)
                continue
            if kind != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"{where}: only text and image_url parts are supported", "messages")
            if IMAGE_SENTINEL in part["text"]:
                raise ApiError(400, f"{where}: the text holds U+E000, which this server reserves for image "
                                    "placeholders", "messages")
            parts.append(part["text"])
        content = "".join(parts)
    elif isinstance(content, str) and IMAGE_SENTINEL in content:
        raise ApiError(400, f"messages[{i}].content holds U+E000, which this server reserves for image "
                            "placeholders", "messages")
    calls = message.get("tool_calls") or []
    if role == "assistant" and calls and content is None:
        content = ""
    if not isinstance(content, str):
        raise ApiError(400, f"messages[{i}].content must be a string or a list of content parts", "messages")
    if not isinstance(calls, list):
        raise ApiError(400, f"messages[{i}].tool_calls must be a list", "messages")
    return {"role": "system" if role == "developer" else role, "content": content, "tool_calls": calls,
            "tool_call_id": message.get("tool_call_id")}


def parse_chat(body: dict, tokenizer, cfg, limits: Limits, default_stop_ids, template: str) -> Plan:
    from agentlm.data.template import render_prompt_detailed
    from agentlm.infer.openai_images import image_inputs
    from agentlm.infer.tool_calls import ToolRequestError, to_conversation

    _refuse_unsupported(body, tools_ok=True)
    if tokenizer is None:
        raise ApiError(400, "chat completions need a tokenizer; this server was started without one")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", "messages")
    tools = body.get("tools") or None
    if tools is not None and not isinstance(tools, list):
        raise ApiError(400, "'tools' must be a list", "tools")
    images: list = []
    try:
        tool_plan = to_conversation([_message(i, m, images) for i, m in enumerate(messages)], tools,
                                    body.get("tool_choice"))
    except ToolRequestError as err:
        raise ApiError(400, str(err), err.param) from None
    conversation = tool_plan.conversation
    if not conversation or conversation[-1]["role"] != "user":
        raise ApiError(400, "the last message must have role 'user' or 'tool' (the reply to it is generated)",
                       "messages")
    counts, patches = image_inputs(images, cfg) if images else (None, None)
    try:
        rendered = render_prompt_detailed(conversation, tokenizer, template, image_tokens=counts)
    except ValueError as err:
        raise ApiError(400, f"messages: {err}", "messages") from None
    prompt, image_mask = rendered.ids, (rendered.image_mask if images else None)
    if tool_plan.prefill:
        prompt = prompt + tokenizer.encode(tool_plan.prefill)
        image_mask = image_mask + [0] * (len(prompt) - len(image_mask)) if image_mask else None
    sampling = _sampling(body, limits)
    stream, include_usage = _stream_options(body)
    want_logprobs = _field(body, "logprobs", bool, False, why="a boolean")
    top = _field(body, "top_logprobs", int, None, check=lambda v: 0 <= v <= MAX_TOP_LOGPROBS,
                 why=f"an integer in [0, {MAX_TOP_LOGPROBS}]")
    if top is not None and not want_logprobs:
        raise ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs")
    if stream and want_logprobs:
        raise ApiError(400, "'logprobs' is not supported together with stream=true", "stream")
    max_tokens = _max_tokens(body, ("max_completion_tokens", "max_tokens"), None, [prompt], limits)
    stops = _stop_strings(body, limits)
    stop_ids = _stop_ids(body, default_stop_ids, cfg.vocab_size)
    logprobs = (top or 0) if want_logprobs else None
    rows = _rows([prompt], sampling, max_tokens, stop_ids, stops, logprobs or 0)
    for row in rows:
        row.image_mask, row.image_patches = image_mask, patches
    return Plan("chat", [prompt], [None], rows, sampling["n"], stream, include_usage, False, logprobs, stops,
                tool_plan.parse, tool_plan.prefill)


def _rows(prompts, sampling, max_tokens, stop_ids, stops, top) -> list[GenerationRequest]:
    n = sampling["n"]
    return [GenerationRequest(p, max_tokens, sampling["temperature"], sampling["top_p"], sampling["top_k"],
                              sampling["seed"] + j, stop_ids, stops, top)
            for p in prompts for j in range(n)]


# ---- responses ----------------------------------------------------------------------------------------

def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def continuation_text(tokenizer, tokens, prompt=None) -> str:
    """Text of `tokens` as it continues `prompt`.

    SentencePiece drops the word-boundary space of the first decoded piece, so decoding a completion on its own
    would glue "Once upon a time" + "there". Decoding it behind the prompt's last visible token and removing
    that token's text keeps the space. Without a prompt (chat replies) the text is decoded on its own.
    """
    if tokenizer is None:
        return ""
    anchor = []
    for t in reversed(prompt or []):
        if tokenizer.decode([t]):
            anchor = [t]
            break
    if not anchor:
        return tokenizer.decode(list(tokens))
    head = tokenizer.decode(anchor)
    text = tokenizer.decode(anchor + list(tokens))
    return text[len(head):] if text.startswith(head) else tokenizer.decode(list(tokens))


def completion_text(tokenizer, result: GenerationResult, prompt=None) -> str:
    """Decoded text; a row ended by a stop string is cut where the (earliest) stop string starts."""
    if tokenizer is None:
        return ""
    text = continuation_text(tokenizer, result.tokens, prompt)
    if isinstance(result.stop, str):
        hits = [text.find(s) for s in [result.stop] if s in text]
        if hits:
            text = text[:min(hits)]
    return text


def chat_message(tokenizer, plan: Plan, result: GenerationResult) -> tuple[dict, str]:
    """(assistant message, finish_reason) of one chat row: the reply text (a forced prefill included), parsed
    into `tool_calls` when the request had tools and the reply is a tool call."""
    text = plan.prefill + completion_text(tokenizer, result, plan.prompts[0] if plan.prefill else None)
    if plan.tools:
        from agentlm.infer.tool_calls import reply_message

        message, reason = reply_message(text, new_id("call"))
        if reason == "tool_calls":
            return message, reason
    return {"role": "assistant", "content": text}, finish_reason(result)


def greedy_next_result(scores: TokenScores, request: GenerationRequest) -> GenerationResult:
    """The one-token greedy generation read off a scoring pass (the most likely token after the prompt)."""
    token, lp = int(scores.next_top_ids[0]), float(scores.next_top_logprobs[0])
    alts = [(int(a), float(v)) for a, v in zip(scores.next_top_ids, scores.next_top_logprobs)]
    top = [alts[:request.top_logprobs]] if request.top_logprobs else []
    if token in request.stop_token_ids:
        return GenerationResult([], "stop", token, [lp], top)
    return GenerationResult([token], "length", None, [lp], top)


def finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class TokenStrings:
    """Text of single tokens as they read in context (SentencePiece's word-boundary space kept), cached."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[int, str] = {}
        self._anchor = tokenizer.encode("a")[-1:] if tokenizer is not None else []
        self._anchor_text = tokenizer.decode(self._anchor) if tokenizer is not None else ""

    def __call__(self, token_id: int) -> str:
        token_id = int(token_id)
        if token_id not in self._cache:
            if self.tokenizer is None:
                self._cache[token_id] = f"<{token_id}>"
            else:
                text = self.tokenizer.decode(self._anchor + [token_id])
                text = text[len(self._anchor_text):] if text.startswith(self._anchor_text) else ""
                self._cache[token_id] = text or self.tokenizer.id_to_piece(token_id)  # control tokens: "<s>"
        return self._cache[token_id]


def _all_tokens(result: GenerationResult) -> list[int]:
    """Generated ids plus the stop token when one ended the row (its logprob entry exists)."""
    extra = [result.stop] if isinstance(result.stop, int) and len(result.logprobs) > len(result.tokens) else []
    return list(result.tokens) + extra


def completion_logprobs(tok: TokenStrings, top_n: int, prompt: list[int] | None, scores: TokenScores | None,
                        result: GenerationResult | None) -> dict:
    """The legacy completions `logprobs` object: tokens, token_logprobs, top_logprobs, text_offset."""
    tokens, token_lps, tops = [], [], []
    if prompt is not None and scores is not None:
        tokens += prompt
        token_lps.append(None)
        tops.append(None)
        for t, lp, ids, lps in zip(prompt[1:], scores.logprobs, scores.top_ids, scores.top_logprobs):
            token_lps.append(float(lp))
            tops.append(_top_dict(tok, t, float(lp), ids[:top_n], lps[:top_n]))
    if result is not None:
        gen = _all_tokens(result)
        tokens += gen
        for j, t in enumerate(gen):
            lp = float(result.logprobs[j])
            token_lps.append(lp)
            alts = result.top_logprobs[j][:top_n] if result.top_logprobs else []
            tops.append(_top_dict(tok, t, lp, [a for a, _ in alts], [v for _, v in alts]))
    strings = [tok(t) for t in tokens]
    offsets, pos = [], 0
    for s in strings:
        offsets.append(pos)
        pos += len(s)
    return {"tokens": strings, "token_logprobs": token_lps, "top_logprobs": tops, "text_offset": offsets}


def _top_dict(tok: TokenStrings, chosen: int, chosen_lp: float, ids, lps) -> dict:
    """Top alternatives plus the chosen token (so up to n + 1 entries, as OpenAI and vLLM return)."""
    out = {tok(i): float(v) for i, v in zip(ids, lps)}
    out.setdefault(tok(chosen), chosen_lp)
    return out


def chat_logprobs(tok: TokenStrings, top_n: int, result: GenerationResult) -> dict:
    content = []
    for j, t in enumerate(_all_tokens(result)):
        s = tok(t)
        alts = result.top_logprobs[j][:top_n] if result.top_logprobs else []
        content.append({"token": s, "logprob": float(result.logprobs[j]), "bytes": list(s.encode()),
                        "top_logprobs": [{"token": tok(a), "logprob": float(v), "bytes": list(tok(a).encode())}
                                         for a, v in alts]})
    return {"content": content}


def envelope(kind: str, rid: str, model: str, choices: list, usage_: dict | None = None, chunk: bool = False
             ) -> dict:
    obj = {"completion": "text_completion", "chat": "chat.completion.chunk" if chunk else "chat.completion"}[kind]
    out = {"id": rid, "object": obj, "created": int(time.time()), "model": model, "choices": choices}
    if usage_ is not None:
        out["usage"] = usage_
    return out
