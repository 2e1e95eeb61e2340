"""The FastAPI server beyond the original contract (tests/infer/test_infer_server.py): a streaming client that hangs
up frees its batch slot, and function calling (tools / tool_choice in, tool_calls out, role: tool results in),
rendered as the text action format the model was trained on."""
from __future__ import annotations

import dataclasses
import http.client
import json
import time

import openai
import pytest

from agentlm.data.template import render_prompt, stop_ids
from agentlm.data.tokenizer import load_tokenizer
from agentlm.envs.tools import TextOracle, ToolEnv, openai_tools
from agentlm.envs.tools.domain import load_domain, load_tasks
from agentlm.envs.tools.function_calling import reply_from_message, to_function_messages
from agentlm.infer import InferenceEngine, OpenAIServer
from agentlm.infer import openai_api as api
from agentlm.infer.tool_calls import reply_message
from tests.conftest import shared_path

DOMAIN = "triage"


@pytest.fixture(scope="module")
def served(stories):
    cfg, params, _ = stories
    # Even a one-tool prompt (the format rules) outgrows stories260K's 512 positions; RoPE extends to 1024 (what the
    # model writes past 512 does not matter here: these tests check the protocol, not the text).
    cfg = dataclasses.replace(cfg, max_position_embeddings=1024)
    tok = load_tokenizer(shared_path("models", "stories260K-hf"))
    engine = InferenceEngine(cfg, params, tok, batch_wait_s=0.01)
    with OpenAIServer(engine, "stories", port=0) as server:
        yield tok, engine, server, openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=120)
    engine.close()


def _episode(n_steps: int = 3) -> list[dict]:
    """A real text-format triage episode (the gold solution played in ToolEnv), ending with a human turn."""
    task = load_tasks(DOMAIN, "builtin:test:1")[0]
    env, oracle = ToolEnv(DOMAIN), TextOracle()
    conversation = env.reset(task)
    for _ in range(n_steps):
        reply = oracle.act(conversation, task)
        step = env.step(reply)
        conversation += [{"from": "gpt", "value": reply, "loss": True}]
        if step.done:
            conversation.pop()
            break
        conversation += [{"from": "human", "value": step.observation, "loss": None}]
    return conversation


def test_streaming_client_that_disconnects_frees_its_slot(served):
    tok, engine, server, client = served
    before = engine.finish_reasons["cancelled"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/completions", body=json.dumps({
        "model": "stories", "prompt": "Once upon a time", "max_tokens": 500, "ignore_eos": True, "temperature": 0,
        "stream": True}), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.readline().startswith(b"data: ")
    conn.sock.shutdown(2)
    conn.close()
    deadline = time.monotonic() + 120  # a wait for the outcome, not a speed requirement
    while engine.finish_reasons["cancelled"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.finish_reasons["cancelled"] == before + 1, dict(engine.finish_reasons)
    r = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=8, temperature=0)
    assert r.choices[0].text and r.choices[0].finish_reason == "length"


def test_tools_and_tool_messages_render_as_the_training_text(served):
    """Every step of a real episode: the function-calling request's prompt ids are the text episode's ids."""
    tok, engine, server, _ = served
    domain = load_domain(DOMAIN)
    conversation = _episode()
    limits = api.Limits(max_model_len=1 << 20, max_prompt_tokens=1 << 20, max_tokens=16)
    steps = 0
    for end in range(1, len(conversation) + 1):
        prefix = conversation[:end]
        if prefix[-1]["from"] != "human":
            continue
        body = {"messages": to_function_messages(prefix, domain), "tools": openai_tools(domain), "max_tokens": 4}
        plan = api.parse_chat(body, tok, engine.cfg, limits, stop_ids(tok, "llama2"), "llama2")
        assert plan.prompts[0] == render_prompt(prefix, tok, "llama2") and plan.tools
        steps += 1
    assert steps >= 3 and any(m.get("role") == "tool" for m in body["messages"])


def test_text_replies_become_tool_calls_and_back():
    text = 'Thought: read the protocol first.\nAction: read_protocol({"section": "fever"})'
    message, reason = reply_message(text, "call_1")
    assert reason == "tool_calls" and message["content"] == "read the protocol first."
    assert message["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "read_protocol", "arguments": '{"section": "fever"}'}}]
    assert reply_from_message(message) == text  # the client's text record of the call is the model's own text
    bad, reason = reply_message('Action: read_protocol({"section": )', "call_2")
    assert reason == "tool_calls" and bad["tool_calls"][0]["function"]["arguments"] == '{"section":'
    final, reason = reply_message("Thought: done.\nFinal Answer: 3", "call_3")
    assert reason == "stop" and final == {"role": "assistant", "content": "Thought: done.\nFinal Answer: 3"}


def test_chat_with_tools_over_http(served):
    tok, engine, server, client = served
    tools = [{"type": "function", "function": {"name": "add", "description": "Adds a number.", "parameters": {
        "type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}]
    messages = [{"role": "user", "content": "Add 2."},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"x": 2}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "2"}]
    name = "add"
    # a named tool_choice forces a call of that tool (the reply starts "Action: name(")
    r = client.chat.completions.create(model="stories", messages=messages, tools=tools, max_tokens=8, temperature=0,
                                       tool_choice={"type": "function", "function": {"name": name}})
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == name and call.id
    # streamed: the call arrives whole in one chunk
    chunks = list(client.chat.completions.create(
        model="stories", messages=messages, tools=tools, max_tokens=8, temperature=0, stream=True,
        tool_choice={"type": "function", "function": {"name": name}}))
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(calls) == 1 and calls[0][0].function.name == name
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # auto: stories260K writes no action, so the reply is plain content
    r = client.chat.completions.create(model="stories", messages=messages, tools=tools, max_tokens=8, temperature=0)
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason in ("stop", "length")
    for bad, param in (
            (dict(messages=messages[:3] + [{"role": "tool", "tool_call_id": "nope", "content": "x"}]), "messages"),
            (dict(messages=messages, tool_choice={"type": "function", "function": {"name": "fly"}}), "tool_choice"),
            (dict(messages=messages, tool_choice="sometimes"), "tool_choice")):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="stories", tools=tools, max_tokens=4, **bad)
        assert err.value.body["param"] == param, err.value.body
