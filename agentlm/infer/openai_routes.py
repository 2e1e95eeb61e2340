"""The FastAPI application: OpenAI routes, vLLM's tokenizer routes, auth, body limits and error bodies.

Handlers are `async`: a request waits on its engine future through `asyncio.wrap_future`, so thousands of open
requests cost no threads and never block the engine's scheduler thread, which batches whatever has arrived.
Parsing a request (tokenizing its prompt) runs in the thread pool. Every error is answered with OpenAI's error
body: {"error": {"message", "type", "param", "code"}}; pydantic type errors are 400s, as OpenAI answers them.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from openai.types import Model
from openai.types.chat import ChatCompletion
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentlm.infer import openai_api as api
from agentlm.infer.generate import GenerationResult
from agentlm.infer.openai_schema import ChatRequest, CompletionRequest, DetokenizeRequest, TokenizeRequest
from agentlm.infer.streaming import stream_events

if TYPE_CHECKING:
    from agentlm.infer.serve import OpenAIServer

log = logging.getLogger("agentlm.infer.serve")
DRAIN_LIMIT = 64 << 20  # an oversized body up to this size is read and dropped, so the client sees the 413


def _error(err: api.ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


class BodyLimit:
    """ASGI middleware: refuses a POST body over `limit` bytes with 413, from its Content-Length when sent
    (the body is drained first so the client can read the answer) or while reading a chunked one; a body is read
    as the JSON it must be whatever its Content-Type says."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if headers.get(b"content-type", b"").split(b";")[0].strip() != b"application/json":
            # every body here is JSON, whatever the client says it is (curl -d sends a form content type)
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                     + [(b"content-type", b"application/json")]}
        declared = headers.get(b"content-length")
        size = int(declared) if declared and declared.isdigit() else None
        if size is not None and size <= self.limit:
            return await self.app(scope, receive, send)
        body, more, total = [], True, 0
        while more:  # chunked (no Content-Length), or declared too large: read it here, counting
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk, more = message.get("body", b""), message.get("more_body", False)
            total += len(chunk)
            if total <= self.limit:
                body.append(chunk)
            elif total > DRAIN_LIMIT:
                break
        if total > self.limit:
            shown = size if size is not None else f"at least {total}"
            err = api.ApiError(413, f"request body of {shown} bytes exceeds the limit of {self.limit}",
                               code="body_too_large")
            headers = {"Connection": "close"} if more else None
            return await JSONResponse(err.body(), 413, headers=headers)(scope, receive, send)
        replay = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


def build_app(server: "OpenAIServer") -> FastAPI:
    app = FastAPI(title="agentlm OpenAI-compatible server", version="1",
                  description="OpenAI completions and chat completions (with tools), streaming, and vLLM's "
                              "tokenizer endpoints, over agentlm's batching InferenceEngine.")
    engine = server.engine

    @app.exception_handler(api.ApiError)
    async def _api_error(request, err: api.ApiError):
        return _error(err)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        if first.get("type") == "json_invalid":
            message = "request body is not valid JSON"
        elif not loc:
            message = f"request body must be a JSON object: {first.get('msg', 'invalid')}"
        else:
            message = f"'{'.'.join(loc)}': {first.get('msg', 'invalid value')}"
        return _error(api.ApiError(400, message, loc[0] if loc else None))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, err: StarletteHTTPException):
        code = "not_found" if err.status_code == 404 else None
        detail = f"no route {request.method} {request.url.path}" if err.status_code in (404, 405) else str(err.detail)
        return _error(api.ApiError(err.status_code, detail, code=code))

    @app.exception_handler(Exception)
    async def _internal(request, err: Exception):
        log.exception("internal error on %s", request.url.path)
        return _error(api.ApiError(500, f"internal error: {type(err).__name__}: {err}", type_="server_error"))

    async def authorized(request: Request) -> None:
        key = server.api_key
        if not key:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise api.ApiError(401, "missing or wrong API key (send 'Authorization: Bearer <key>')", None,
                               "invalid_api_key", "authentication_error")

    async def wait(future):
        return await asyncio.wait_for(asyncio.wrap_future(future), server.request_timeout_s)

    async def generate(plan: api.Plan) -> list[GenerationResult]:
        if all(r.max_new_tokens == 0 for r in plan.rows):
            return [GenerationResult([], "length") for _ in plan.rows]
        return await wait(engine.submit_generate(plan.rows))

    def usage(plan: api.Plan, results) -> dict:
        return api.usage(sum(map(len, plan.prompts)), sum(len(r.tokens) for r in results))

    def sse(plan: api.Plan, rid: str) -> StreamingResponse:
        return StreamingResponse(stream_events(engine, plan, rid, server.model_name), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": server.model_name}

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models():
        return {"object": "list", "data": [as_openai(Model, {
            "id": server.model_name, "object": "model", "created": 0, "owned_by": "agentlm",
            "max_model_len": server.limits.max_model_len})]}

    @app.post("/v1/completions", dependencies=[Depends(authorized)])
    async def completions(req: CompletionRequest):
        body = req.fields()
        api.check_model(body, server.model_name)
        plan = await run_in_threadpool(api.parse_completion, body, engine.tokenizer, engine.cfg, server.limits,
                                       server.completion_stop_ids)
        if plan.stream:
            return sse(plan, api.new_id("cmpl"))
        want_scores = plan.echo and plan.logprobs is not None
        # lm-evaluation-harness's loglikelihood request (echo, logprobs, one greedy token): the scoring pass
        # already holds the next-token distribution, so no generation pass is run.
        from_scores = want_scores and all(r.temperature == 0 and r.max_new_tokens == 1 and not r.stop_strings
                                          for r in plan.rows)
        scores_f = engine.submit_score(plan.prompts, max(plan.logprobs, 1) if from_scores else plan.logprobs) \
            if want_scores else None
        results = None if from_scores else await generate(plan)
        scores = await wait(scores_f) if scores_f is not None else None
        if from_scores:
            results = [api.greedy_next_result(scores[idx // plan.n], row) for idx, row in enumerate(plan.rows)]
        tok = engine.tokenizer
        choices = []
        for idx, result in enumerate(results):
            i = idx // plan.n
            text = api.completion_text(tok, result, plan.prompts[i])
            if plan.echo:
                shown = plan.prompt_texts[i]
                text = (shown if shown is not None else (tok.decode(plan.prompts[i]) if tok else "")) + text
            logprobs = None
            if plan.logprobs is not None:
                logprobs = api.completion_logprobs(server.token_strings, plan.logprobs,
                                                   plan.prompts[i] if plan.echo else None,
                                                   scores[i] if scores is not None else None, result)
            choices.append({"index": idx, "text": text, "logprobs": logprobs,
                            "finish_reason": api.finish_reason(result)})
        return api.envelope("completion", api.new_id("cmpl"), server.model_name, choices, usage(plan, results))

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat(req: ChatRequest):
        body = req.fields()
        api.check_model(body, server.model_name)
        plan = await run_in_threadpool(api.parse_chat, body, engine.tokenizer, engine.cfg, server.limits,
                                       server.chat_stop_ids, server.template)
        if plan.stream:
            return sse(plan, api.new_id("chatcmpl"))
        results = await generate(plan)
        choices = []
        for idx, result in enumerate(results):
            message, reason = api.chat_message(engine.tokenizer, plan, result)
            choice = {"index": idx, "message": message, "logprobs": None, "finish_reason": reason}
            if plan.logprobs is not None:
                choice["logprobs"] = api.chat_logprobs(server.token_strings, plan.logprobs, result)
            choices.append(choice)
        return as_openai(ChatCompletion, api.envelope("chat", api.new_id("chatcmpl"), server.model_name, choices,
                                                      usage(plan, results)))

    def tokenizer():
        if engine.tokenizer is None:
            raise api.ApiError(400, "this server was started without a tokenizer")
        return engine.tokenizer

    @app.post("/tokenize", dependencies=[Depends(authorized)])
    async def tokenize(req: TokenizeRequest):
        tok = tokenizer()
        if req.messages is not None:
            from agentlm.data.template import render_prompt
            try:
                ids = render_prompt(req.messages, tok, server.template)
            except (ValueError, TypeError) as err:
                raise api.ApiError(400, f"messages: {err}", "messages") from None
        else:
            if req.prompt is None:
                raise api.ApiError(400, "'prompt' must be a string", "prompt")
            ids = [tok.bos_id] if req.add_special_tokens and tok.bos_id is not None else []
            ids += encode_with_specials(tok, req.prompt, {tok.id_to_piece(i): i for i in (tok.bos_id, tok.eos_id)
                                                          if i is not None})
        return {"tokens": ids, "count": len(ids), "max_model_len": server.limits.max_model_len}

    @app.post("/detokenize", dependencies=[Depends(authorized)])
    async def detokenize(req: DetokenizeRequest):
        tok, vocab = tokenizer(), engine.cfg.vocab_size
        if not all(0 <= i < vocab for i in req.tokens):
            raise api.ApiError(400, f"'tokens' must be a list of token ids in [0, {vocab})", "tokens")
        return {"prompt": tok.decode(req.tokens)}

    @app.get("/tokenizer_info", dependencies=[Depends(authorized)])
    async def tokenizer_info():
        tok = tokenizer()
        piece = lambda i: tok.id_to_piece(i) if i is not None else None  # noqa: E731
        return {"tokenizer_class": type(tok).__name__, "bos_token": piece(tok.bos_id),
                "eos_token": piece(tok.eos_id), "pad_token": None,
                "model_max_length": server.limits.max_model_len, "chat_template": None, "template": server.template}

    return app


def as_openai(kind, body: dict) -> dict:
    """The response body checked against the openai package's own type for it (a schema slip is a 500 here, not a
    client's parse error later), returned as sent. Completions' legacy logprobs (None for a prompt's first token)
    do not fit the package's type, so those bodies are built by agentlm.infer.openai_api alone."""
    return kind.model_validate(body).model_dump(exclude_unset=True)


def encode_with_specials(tok, text: str, specials: dict[str, int]) -> list[int]:
    """Encodes text, turning literal special-token strings ('<s>', '</s>') into their ids, like HF does."""
    ids, start = [], 0
    while True:
        hits = [(text.find(s, start), s) for s in specials if text.find(s, start) >= 0]
        if not hits:
            break
        pos, s = min(hits)
        if text[start:pos]:
            ids += tok.encode(text[start:pos])
        ids.append(specials[s])
        start = pos + len(s)
    if text[start:]:
        ids += tok.encode(text[start:])
    return ids
