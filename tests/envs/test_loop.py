"""The agent-environment loop: outcome kinds, errors as records, order, budgets, resume, the OpenAI agent."""
import json
import threading
import time

import pytest

from agentlm.envs.agents import OpenAIChatAgent, ReplayAgent, to_openai_messages
from agentlm.envs.base import ContextLimitExceeded, Environment, Outcome, StepResult, Task, TaskUnscorable
from agentlm.envs.loop import LoopConfig, read_episodes, run_episode, run_tasks, summarize


class CounterEnv(Environment):
    """Reach `target` by replying 'add'; 'done' ends; anything else is invalid (and ends, as in AgentBench)."""

    name = "counter"
    max_rounds = 6

    def reset(self, task):
        if task.data.get("unscorable"):
            raise TaskUnscorable("no check script")
        if task.data.get("boom"):
            raise RuntimeError("reset failed")
        self.n, self.target = 0, task.data["target"]
        return [{"from": "human", "value": f"reach {self.target}", "loss": None}]

    def step(self, action):
        if action == "add":
            self.n += 1
            return StepResult(f"n={self.n}")
        if action == "stay":
            return StepResult(f"n={self.n}")
        if action == "done":
            return StepResult("", 1.0 if self.n == self.target else 0.0, True)
        if action == "crash":
            raise ValueError("env bug")
        return StepResult("", 0.0, True, {}, invalid=True)


def task(i=0, **data):
    return Task(id=f"c{i}", env="counter", data={"target": 2, **data})


@pytest.mark.parametrize("replies,outcome,rounds", [
    (["add", "add", "done"], Outcome.SUCCESS, 3),
    (["add", "done"], Outcome.WRONG_ANSWER, 2),
    (["add", "what?"], Outcome.INVALID_ACTION, 2),
    (["add", "stay", "stay", "stay"], Outcome.REPEATED_ACTION, 4),
    (["add"] * 10, Outcome.ROUND_LIMIT, 6),
    (["crash"], Outcome.ERROR, 1),
])
def test_outcome_kinds(replies, outcome, rounds):
    ep = run_episode(CounterEnv(), ReplayAgent(replies), task())
    assert ep.outcome == outcome and ep.rounds == rounds
    conv = ep.conversation
    assert conv[0]["from"] == "human" and all(m["loss"] is True for m in conv if m["from"] == "gpt")


def test_context_limit_and_agent_errors():
    ep = run_episode(CounterEnv(), ReplayAgent(["add"] * 10), task(), LoopConfig(context_tokens=12))
    assert ep.outcome == Outcome.CONTEXT_LIMIT and 0 < ep.rounds < 6

    class Raising:
        def __init__(self, exc):
            self.exc = exc

        def act(self, conversation, task):
            raise self.exc

    assert run_episode(CounterEnv(), Raising(ContextLimitExceeded("too long")), task()).outcome == Outcome.CONTEXT_LIMIT
    ep = run_episode(CounterEnv(), Raising(KeyError("x")), task())
    assert ep.outcome == Outcome.ERROR and "KeyError" in ep.info["error"]
    assert run_episode(CounterEnv(), ReplayAgent(["x"]), task(boom=True)).outcome == Outcome.ERROR
    assert run_episode(CounterEnv(), ReplayAgent(["x"]), task(unscorable=True)).outcome == Outcome.UNSCORABLE


def test_order_concurrency_and_resume(tmp_path):
    class SlowAgent:
        """Early tasks take longest, so completion order is the reverse of task order."""

        def __init__(self):
            self.threads = set()

        def act(self, conversation, t):
            self.threads.add(threading.get_ident())
            time.sleep(0.02 * (8 - int(t.id[1:])))
            return ["add", "add", "done"][sum(m["from"] == "gpt" for m in conversation)]

    tasks = [task(i, target=2 if i % 2 else 1) for i in range(8)]
    out = tmp_path / "eps.jsonl"
    agent = SlowAgent()
    eps = run_tasks(CounterEnv, agent, tasks, workers=4, out=out, progress=False)
    assert len(agent.threads) > 1
    assert [e.task_id for e in eps] == [t.id for t in tasks]
    assert [e.task_id for e in read_episodes(out)] == [t.id for t in tasks]
    s = summarize(eps)
    assert s["episodes"] == 8 and s["outcomes"]["success"] == 4 and s["outcomes"]["wrong_answer"] == 4
    # resume: a file holding the first 3 records reruns only the rest
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:3]) + "\n")
    calls = []

    class Counting(SlowAgent):
        def act(self, conversation, t):
            calls.append(t.id)
            return super().act(conversation, t)

    eps2 = run_tasks(CounterEnv, Counting(), tasks, workers=2, out=out, resume=True, progress=False)
    assert set(calls) == {t.id for t in tasks[3:]}
    assert [e.to_row() for e in eps2] == [e.to_row() for e in eps]
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [t.id for t in tasks]


class _FakeCompletions:
    def __init__(self):
        self.seen = None

    def create(self, **kw):
        self.seen = kw
        msg = type("M", (), {"content": "add"})
        return type("R", (), {"choices": [type("C", (), {"message": msg})]})


def test_openai_agent_maps_roles():
    fake = _FakeCompletions()
    client = type("Client", (), {"chat": type("Chat", (), {"completions": fake})})
    agent = OpenAIChatAgent(None, "teacher", client=client, system="sys")
    conv = [{"from": "human", "value": "hi", "loss": None}, {"from": "gpt", "value": "OK.", "loss": False},
            {"from": "human", "value": "go", "loss": None}]
    assert agent.act(conv, task()) == "add"
    assert [m["role"] for m in fake.seen["messages"]] == ["system", "user", "assistant", "user"]
    assert fake.seen["temperature"] == 0.0 and fake.seen["model"] == "teacher"
    with pytest.raises(ValueError, match="turn 0"):
        to_openai_messages([{"from": "bot", "value": "x"}])


def test_setup_failure_is_recorded_not_raised():
    def broken():
        raise RuntimeError("bwrap missing")

    eps = run_tasks(broken, ReplayAgent(["add"]), [task(0), task(1)], workers=2, progress=False)
    assert [e.outcome for e in eps] == [Outcome.ERROR] * 2 and "bwrap missing" in eps[0].info["error"]


def test_agent_view_shows_the_agent_what_the_environment_chooses():
    class LastTurnOnly(CounterEnv):
        def agent_view(self, conversation):
            return conversation[-1:]

    seen = []

    class Agent:
        def act(self, conversation, task):
            seen.append([m["value"] for m in conversation])
            return ["add", "add", "done"][len(seen) - 1]

    ep = run_episode(LastTurnOnly(), Agent(), task())
    assert ep.outcome == Outcome.SUCCESS and len(ep.conversation) == 6  # the record keeps every turn
    assert seen == [["reach 2"], ["n=1"], ["n=2"]]
