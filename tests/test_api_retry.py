"""The one retry policy (agentlm.api_retry) against a stub HTTP server that answers each request from a script:
429 with Retry-After, 500/503, a context-limit 400, a plain 400 and 401. The openai SDK talks real HTTP to it.
The teacher's use of the same policy (ledger counts, cache, TeacherError) is tested in tests/pipeline/test_teacher.py.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from agentlm.api_retry import RetryPolicy, chat_completion, retry_after_s, retry_kind
from agentlm.envs.agents import OpenAIChatAgent
from agentlm.envs.base import ContextLimitExceeded, Task

OK = (200, {}, {"id": "c1", "object": "chat.completion", "created": 0, "model": "stub",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
TOO_LONG = (400, {}, {"error": {"message": "This model's maximum context length is 4096 tokens; your messages "
                                           "resulted in 5000 tokens.", "type": "invalid_request_error",
                                "code": "context_length_exceeded"}})
BAD = (400, {}, {"error": {"message": "temperature must be >= 0", "type": "invalid_request_error"}})


def status(code: int, retry_after: str | None = None):
    return (code, {"Retry-After": retry_after} if retry_after else {}, {"error": {"message": f"HTTP {code}"}})


class StubServer:
    """Answers POST /v1/chat/completions with the scripted responses in order, then 200s."""

    def __init__(self, *script):
        self.script, self.requests = list(script), 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests += 1
                code, headers, body = server.script.pop(0) if server.script else OK
                payload = json.dumps(body).encode()
                self.send_response(code)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=10)


def request():
    return dict(model="stub", messages=[{"role": "user", "content": "hello"}])


def test_429_waits_what_retry_after_says():
    sleeps, kinds = [], []
    with StubServer(status(429, "2.5")) as server:
        resp = chat_completion(client(server), RetryPolicy(sleep=sleeps.append), kinds.append, **request())
    assert resp.choices[0].message.content == "hi" and server.requests == 2
    assert kinds == ["429"] and len(sleeps) == 1 and 2.5 <= sleeps[0] <= 2.5 * 1.1


def test_5xx_backs_off_exponentially_and_respects_retry_after_as_a_floor():
    sleeps, kinds = [], []
    policy = RetryPolicy(backoff_base_s=0.1, sleep=sleeps.append)
    with StubServer(status(500), status(500), status(503, "3")) as server:
        chat_completion(client(server), policy, kinds.append, **request())
    assert kinds == ["500", "500", "503"] and server.requests == 4
    assert 0.05 <= sleeps[0] <= 0.15 and 0.1 <= sleeps[1] <= 0.3  # base x 2^n with jitter in [0.5, 1.5)
    assert 3.0 <= sleeps[2] <= 3.3  # backoff would be ~0.4 s: the server's 3 s wins


def test_retries_run_out_and_the_last_error_propagates():
    kinds = []
    with StubServer(*[status(500)] * 5) as server:
        with pytest.raises(openai.InternalServerError) as e:
            chat_completion(client(server), RetryPolicy(max_retries=2, sleep=lambda s: None), kinds.append,
                            **request())
    assert server.requests == 3 and kinds == ["500"] * 3 and retry_kind(e.value) == "500"


def test_context_limit_400_is_recorded_not_retried():
    kinds = []
    with StubServer(TOO_LONG) as server:
        with pytest.raises(ContextLimitExceeded, match="maximum context length"):
            chat_completion(client(server), RetryPolicy(sleep=lambda s: None), kinds.append, **request())
    assert server.requests == 1 and kinds == []


@pytest.mark.parametrize("response,error", [(BAD, openai.BadRequestError), (status(401), openai.AuthenticationError)])
def test_other_client_errors_propagate_at_once(response, error):
    with StubServer(response) as server:
        with pytest.raises(error):
            chat_completion(client(server), RetryPolicy(sleep=lambda s: None), **request())
    assert server.requests == 1


def test_the_evaluated_agent_uses_the_policy():
    """OpenAIChatAgent (eval and envs.run): a 429 and a 500 are retried, a too-long prompt is a context limit."""
    task = Task(id="t", env="stub", data={})
    with StubServer(status(429, "0.05"), status(500)) as server:
        agent = OpenAIChatAgent(server.base_url, "stub", retries=2)
        agent.retry.backoff_base_s = 0.01
        assert agent.act([{"from": "human", "value": "hello"}], task) == "hi"
        assert server.requests == 3
        server.script.append(TOO_LONG)
        with pytest.raises(ContextLimitExceeded):
            agent.act([{"from": "human", "value": "hello"}], task)


def test_retry_after_header_forms():
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past: now
    assert retry_after_s({"retry-after": "soon"}) is None and retry_after_s({}) is None and retry_after_s(None) is None


def test_the_rewoo_judge_uses_the_policy():
    from agentlm.envs.rewoo.judge import OpenAIJudge

    body = json.loads(json.dumps(OK[2]))
    body["choices"][0]["message"]["content"] = "CORRECT"
    with StubServer(status(503, "0.05"), (200, {}, body)) as server:
        judge = OpenAIJudge(server.base_url, "stub")
        judge.retry.backoff_base_s = 0.01
        assert judge("Who leads?", "Jeffries", "Hakeem Jeffries") is True
        assert server.requests == 2
