"""Digital Card Game: AgentBench's engine built from ../shared into the cache, the baselines' std schedule through
our match runner, an agent through the LLM seat (scripted, always invalid, too slow), and the schedule/metric."""
import json
import time

import pytest

from agentlm.envs import registry
from agentlm.envs.base import Outcome
from agentlm.envs.card_game import build, env as cg, match
from agentlm.envs.loop import run_tasks


@pytest.fixture(scope="module")
def source():
    from tests.conftest import shared_path

    src = shared_path("third_party", "agentbench_card_game")
    problem = registry.get("card_game").problem()
    if problem:
        pytest.skip(problem)
    build.built_game(src)  # the first build compiles the engine and the AI client (about a minute of CPU)
    return str(src)


def test_schedule_and_task_sources(tmp_path):
    std = cg.load_tasks("std")
    assert len(std) == 20 and len(cg.load_tasks("dev")) == 12 and len(cg.load_tasks("ext")) == 200
    assert {(t.data["opponent"], t.data["seat"]) for t in std} == {(o, s) for o in cg.OPPONENTS for s in (0, 1)}
    config = tmp_path / "std.yaml"
    config.write_text('module: "src.tasks.CardGame"\nparameters:\n    name: "CardGame"\n    test_time: 2\n')
    assert len(cg.load_tasks(str(config))) == 8
    config.write_text("parameters:\n    test_time: zero\n")
    with pytest.raises(ValueError, match="test_time"):
        cg.load_tasks(str(config))
    with pytest.raises(ValueError, match="std, dev, ext"):
        cg.load_tasks("nonsense")


def test_client_messages_and_metric():
    turns = cg.to_turns([{"role": "user", "content": "rules"}, {"role": "agent", "content": "Okay"},
                         {"role": "user", "content": "state"}])
    assert [(t["from"], t["loss"]) for t in turns] == [("human", None), ("gpt", False), ("human", None)]
    with pytest.raises(ValueError, match="message 0"):
        cg.to_turns([{"role": "system", "content": "x"}])
    assert match._winner('\x00{"type": 4}\x00{\n\t"0" : 0,\n\t"1" : 100\n}\n') == 1
    assert match._winner('{\n\t"0" : 100,\n\t"1" : 0\n}') == 0 and match._winner("crashed") is None
    with pytest.raises(build.CardGameUnavailable, match="not AgentBench's card_game"):
        build.find_source("/nonexistent")


def test_missing_source_is_one_clear_message(monkeypatch):
    monkeypatch.delenv(build.SOURCE_ENV, raising=False)
    with pytest.raises(build.CardGameUnavailable, match="AGENTLM_CARD_GAME_SRC"):
        build.find_source()


def test_scripted_player_and_always_invalid_agent(source):
    tasks = cg.schedule(1, opponents=("baseline2",))
    make = lambda: cg.CardGameEnv(engine_source=source)  # noqa: E731
    eps = run_tasks(make, cg.ScriptedPlayer(), tasks, progress=False, workers=2)
    for e in eps:  # complete games with usable moves every turn
        assert e.outcome in (Outcome.SUCCESS, Outcome.WRONG_ANSWER), e.info
        assert e.info["full_play"] == 1 and e.info["invalid_replies"] == 0 and e.info["llm_calls"] == e.rounds > 2
        assert "current game state" in e.conversation[-2]["value"] or "guess" in e.conversation[-2]["value"]

    class Invalid:
        def __init__(self):
            self.seen = []

        def act(self, conversation, task):
            self.seen.append(conversation)
            return "I pass this turn."

    agent = Invalid()
    [ep] = run_tasks(make, agent, tasks[:1], progress=False)
    assert ep.outcome == Outcome.INVALID_ACTION and ep.reward == 0.0 and not ep.info["won"]
    assert ep.info["full_play"] == 0 and ep.info["invalid_replies"] == ep.info["llm_calls"] == ep.rounds
    # the agent is shown the client's own message list: the rules exchange, then the turn's prompt
    assert agent.seen[-1][0]["from"] == "human" and "four pet fish" in agent.seen[-1][0]["value"]
    assert len(agent.seen[-1]) <= 8 < len(ep.conversation)
    summary = cg.aggregate([*eps, ep], [*tasks, tasks[0]])
    assert summary["games"] == 3 and summary["invalid_replies"] == ep.info["invalid_replies"]


def test_a_game_never_hangs(source):
    class Slow:
        def act(self, conversation, task):
            time.sleep(4)
            return json.dumps({"guess_type": "spray", "target_position": "0"})

    start = time.monotonic()
    [ep] = run_tasks(lambda: cg.CardGameEnv(engine_source=source, game_timeout_s=2.0), Slow(),
                     cg.schedule(1)[:1], progress=False)
    assert ep.info["timeout"] and ep.reward == 0.0 and ep.outcome == Outcome.WRONG_ANSWER
    assert time.monotonic() - start < 60


@pytest.mark.slow
def test_baseline1_vs_baseline2_std_schedule(source):
    tasks = registry.get("card_game").tasks("std")
    eps = cg.baseline_episodes("baseline1", tasks, source, workers=2)
    assert len(eps) == 20 and not any(e.info["timeout"] for e in eps)
    assert all(e.info["winner"] in (0, 1) and e.info["full_play"] == 1 for e in eps)
    summary = registry.get("card_game").score(eps, tasks)
    assert summary["games"] == 20 and 0.0 <= summary["score"] <= 100.0
    assert summary["by_pairing"]["baseline1/seat0"]["games"] == 5
    assert summary["mean_damage"] > 0
