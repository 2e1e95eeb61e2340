"""Pydantic models of the request bodies the server accepts (they also make the OpenAPI page at /docs).

The models check each field's JSON type (strictly: a boolean is not a number, a number is not a string) and
keep unknown fields, which agentlm.infer.openai_api then reads for the rules types cannot say: ranges that
depend on the served model's limits, options refused because ignoring them would change results, prompt
lengths. A type error is answered as OpenAI's 400 error body naming the field (openai_routes' handler).
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Number = Union[StrictInt, StrictFloat]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr | None = Field(None, description="served model id (GET /v1/models); omitted = the served one")

    def fields(self) -> dict[str, Any]:
        """The body as sent (unset fields left out), for agentlm.infer.openai_api's rules."""
        return self.model_dump(exclude_unset=True)


class _Sampling(_Body):
    temperature: Number | None = Field(None, description="0 = greedy; OpenAI's default 1.0")
    top_p: Number | None = None
    top_k: StrictInt | None = Field(None, description="vLLM extension; 0 or -1 = off")
    seed: StrictInt | None = None
    n: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    stop_token_ids: list[StrictInt] | None = Field(None, description="vLLM extension")
    ignore_eos: StrictBool | None = Field(None, description="vLLM extension")
    stream: StrictBool | None = None
    stream_options: dict[str, Any] | None = None
    max_tokens: StrictInt | None = None


class CompletionRequest(_Sampling):
    """POST /v1/completions (legacy completions; lm-evaluation-harness's `local-completions`)."""

    prompt: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]] = Field(
        description="text, texts, token ids, or lists of token ids (taken as-is, no BOS added)")
    echo: StrictBool | None = Field(None, description="prepend the prompt (with logprobs: its per-token logprobs)")
    logprobs: StrictInt | None = Field(None, description="top alternatives per token, 0..20")
    best_of: StrictInt | None = None


class ToolFunction(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: StrictStr = None
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function"] = "function"
    function: ToolFunction


class ChatMessage(BaseModel):
    """A message: system / developer / user / assistant (optionally with tool_calls) / tool (with tool_call_id)."""

    model_config = ConfigDict(extra="allow")
    role: StrictStr = None
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: StrictStr | None = None


class ChatRequest(_Sampling):
    """POST /v1/chat/completions: messages rendered with the training chat template (agentlm.data.template)."""

    messages: list[ChatMessage]
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    max_completion_tokens: StrictInt | None = None


class TokenizeRequest(BaseModel):
    """POST /tokenize (vLLM's): a prompt, or chat messages rendered with the server's template."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: StrictStr | None = None
    messages: list[dict[str, Any]] | None = None
    add_special_tokens: StrictBool = True


class DetokenizeRequest(BaseModel):
    """POST /detokenize (vLLM's)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    tokens: list[StrictInt] = None
