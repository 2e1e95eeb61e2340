"""The teacher client against a real HTTP server that injects faults."""
import time

import pytest

from data_pipeline.accounting import Budget, Ledger
from data_pipeline.cache import ResponseCache
from data_pipeline.teacher import ContentFailure, TeacherClient, TeacherError
from data_pipeline.testing.fake_openai import FakeOpenAIServer

HI = [{"from": "human", "value": "hi"}]


def client(server, tmp_path=None, **kw):
    kw.setdefault("timeout_s", 0.5)
    kw.setdefault("backoff_base_s", 0.01)
    return TeacherClient(model="fake", base_url=server.base_url,
                         cache=ResponseCache(tmp_path / "c.sqlite") if tmp_path else None, **kw)


def test_every_transport_fault_is_retried_and_counted(tmp_path):
    faults = ["429", "500", "503", "timeout", "drop", "bad_json"]
    with FakeOpenAIServer(faults=faults, stall_s=1.5, retry_after_s=0.3) as server:
        t = client(server, tmp_path, max_retries=8)
        t0 = time.monotonic()
        assert t.chat(HI, stage="s") == "echo: hi"
        elapsed = time.monotonic() - t0
        assert server.faults_served() == faults
    spend = t.ledger.stages["s"]
    assert spend.retries == {"429": 1, "500": 1, "503": 1, "timeout": 1, "connection": 1, "malformed_body": 1}
    assert spend.requests == 1 and spend.prompt_tokens == 1 and spend.completion_tokens == 2
    assert elapsed >= 0.3 + 0.5  # waited at least the Retry-After and one client timeout


def test_retry_after_is_honoured_over_short_backoff():
    sleeps = []
    with FakeOpenAIServer(faults=["429"], retry_after_s=2.5) as server:
        t = client(server, sleep=sleeps.append)
        t.chat(HI, stage="s")
    assert len(sleeps) == 1 and 2.5 <= sleeps[0] <= 2.5 * 1.1


def test_content_failures_are_retried_then_recorded():
    with FakeOpenAIServer(faults=["empty", "refusal", "garbage"]) as server:
        t = client(server, content_retries=3)
        assert t.chat(HI, stage="s", validate=lambda x: None if x.startswith("echo") else "bad") == "echo: hi"
        assert t.ledger.stages["s"].content_failures == 3
    with FakeOpenAIServer(lambda m, b: "never valid") as server:
        t = client(server, content_retries=2)
        with pytest.raises(ContentFailure) as e:
            t.chat(HI, stage="s", validate=lambda x: "not an action")
        assert e.value.reason == "not an action" and e.value.last_text == "never valid"
        assert t.ledger.stages["s"].content_failures == 3 and t.ledger.stages["s"].content_gave_up == 1


def test_persistent_failure_raises_teacher_error_and_4xx_is_not_retried():
    with FakeOpenAIServer(faults=["500"] * 10) as server:
        t = client(server, max_retries=2)
        with pytest.raises(TeacherError, match="after 3 attempts"):
            t.chat(HI, stage="s")
    with FakeOpenAIServer(faults=["401"]) as server:
        t = client(server, max_retries=5)
        with pytest.raises(TeacherError, match="HTTP 401"):
            t.chat(HI, stage="s")
        assert "s" not in t.ledger.stages and len(server.log) == 1


def test_context_overflow_becomes_a_context_limit_episode():
    from agentlm.envs.base import ContextLimitExceeded, Outcome
    from agentlm.envs.loop import run_episode
    from data_pipeline.agents import TeacherAgent
    from data_pipeline.testing.toy_env import ToyEnv, make_tasks

    with FakeOpenAIServer(faults=["context_length"]) as server:
        t = client(server)
        with pytest.raises(ContextLimitExceeded):
            t.chat(HI, stage="s")
        env = ToyEnv()
        agent = TeacherAgent(t, env)
        server.inject("context_length")
        episode = run_episode(env, agent, make_tasks(1)[0])
    assert episode.outcome == Outcome.CONTEXT_LIMIT and agent.transport_error is None  # stored, not retried


def test_cache_makes_a_rerun_free_and_replays_content_retries(tmp_path):
    with FakeOpenAIServer(faults=["garbage"]) as server:
        t = client(server, tmp_path, content_retries=2)
        first = t.chat(HI, stage="s", validate=lambda x: None if x.startswith("echo") else "bad")
        n_requests = len(server.log)
        t2 = client(server, tmp_path, content_retries=2)  # a new process would start like this
        again = t2.chat(HI, stage="s", validate=lambda x: None if x.startswith("echo") else "bad")
        assert again == first and len(server.log) == n_requests == 2
        assert t2.ledger.stages["s"].cache_hits == 2 and t2.ledger.stages["s"].requests == 0


def test_concurrency_is_bounded():
    import concurrent.futures
    import threading

    active, peak, lock = [0], [0], threading.Lock()

    def slow(messages, body):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return "ok"

    with FakeOpenAIServer(slow) as server:
        t = client(server, concurrency=2, timeout_s=5)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: t.chat([{"from": "human", "value": str(i)}], stage="s"), range(6)))
    assert peak[0] == 2


def test_budget_stops_on_tokens_cost_and_tasks():
    ledger = Ledger(price_in_per_1k=1.0, price_out_per_1k=2.0)
    assert Budget(max_tokens=100).exhausted(ledger) is None
    ledger.record_response("s", 80, 30)
    assert "token budget" in Budget(max_tokens=100).exhausted(ledger)
    assert "cost budget" in Budget(max_cost_usd=0.1).exhausted(ledger)  # 0.08 + 0.06 = 0.14 USD
    b = Budget(max_tasks=2)
    b.started = 2
    assert "task budget" in b.exhausted(ledger)
