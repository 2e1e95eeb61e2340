"""Agent evaluation: the DB oracle's score through agentlm.eval.agent equals the environments' own oracle score."""
import json

import pytest

from agentlm.configfile import load_config_file
from agentlm.envs import db, loop
from agentlm.envs.base import Outcome
from agentlm.eval import agent, report
from tests.conftest import ROOT, shared_path


def _config(tmp_path, **overrides):
    config = load_config_file(ROOT / "configs" / "eval" / "agent.py")
    config.out = str(tmp_path / "run")
    config.db.data_file = str(shared_path("data", "agentbench", "dbbench", "dev.jsonl"))
    for key, value in overrides.items():
        target = config
        *parents, leaf = key.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return config


@pytest.mark.parametrize("mode", ["label", "sql"])
def test_db_oracle_matches_envs_oracle_score(tmp_path, mode):
    config = _config(tmp_path, model="oracle", tasks="db", workers=2, **{"db.mode": mode})
    summary = agent.run(config)
    # The environments' own evaluation of the same oracle.
    tasks = db.load_tasks(config.db.data_file)
    episodes = loop.run_tasks(lambda: db.DBEnv(), db.DBOracle(mode=mode), tasks, workers=2, progress=False)
    expected = db.aggregate(episodes, tasks)["score"]
    got = summary["tasks"]["db"]
    assert got["score"] == pytest.approx(expected)
    assert got["n"] == 60 and got["scored"] == 60
    if mode == "label":
        assert got["score"] == 100.0 and got["errors"]["invalid_action"] == 0.0
    else:
        assert got["score"] < 100.0  # some gold SQL does not reproduce its label: the comparison can fail
    assert summary["overall"]["held_in"]["tasks"] == ["DB"]
    assert summary["overall"]["held_in"]["overall"] == pytest.approx(got["score"] / 12.5)
    rows = [json.loads(x) for x in (tmp_path / "run" / "agent" / "db" / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and rows[0]["conversations"][-1]["from"] == "gpt"


class CountingAgent:
    """Answers every DB item wrongly, in a valid format; counts its calls."""

    calls = 0

    def act(self, conversation, task):
        CountingAgent.calls += 1
        return "Action: Answer\nFinal Answer: [\"nothing\"]"


def test_rerun_skips_finished_items_and_error_analysis(tmp_path):
    config = _config(tmp_path, tasks="db", workers=1, **{"db.limit": 6})
    out_dir = tmp_path / "run" / "agent"
    first = agent.evaluate_task("db", config, out_dir, agent=CountingAgent())
    assert CountingAgent.calls == 6 and first["n"] == 6
    # Drop the last two transcripts as if the run had been killed; the rerun plays only those two.
    path = out_dir / "db" / "episodes.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4]) + "\n")
    again = agent.evaluate_task("db", config, out_dir, agent=CountingAgent())
    assert CountingAgent.calls == 8 and again["n"] == 6 and again["score"] == first["score"]

    class Gibberish:
        def act(self, conversation, task):
            return "I think I will look at the table."

    bad = agent.evaluate_task("db", _config(tmp_path / "b", **{"db.limit": 4}), tmp_path / "b", agent=Gibberish())
    assert bad["errors"]["invalid_action"] == 1.0 and bad["score"] == 0.0


def test_report_from_agent_run(tmp_path):
    config = _config(tmp_path, model="oracle", tasks="db", workers=2, label="db-oracle", **{"db.limit": 10})
    agent.run(config)
    paths = report.write_model_report(config.out)
    text = open(paths["markdown"]).read()
    assert "db-oracle" in text and "| db (DB) |" in text and "held-in overall" in text
    # Like for like: the paper's AgentLM-70B over DB alone is 37.7 / 12.5 = 3.02 (its six-task overall is 2.55).
    same = next(line for line in text.splitlines() if line.startswith("| held-in overall, paper over the same"))
    assert "| 3.02 |" in same
    data = json.loads(open(paths["json"]).read())
    assert data["overall"]["held_in"]["tasks"] == ["DB"]
    assert open(paths["plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_unknown_task_and_missing_data_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown environment 'mind2web'"):
        agent.parse_tasks("db,mind2web")
    config = _config(tmp_path, model="oracle", tasks="os")  # no item file: reported as not run, with the reason
    assert "config.os.data_file" in agent.run(config)["tasks"]["os"]["skipped"]
    config.os.data_file = str(tmp_path / "missing.json")
    assert "missing.json" in agent.run(config)["tasks"]["os"]["skipped"]


def test_checkpoint_model_plays_db_in_process(tmp_path):
    """A saved (random) tiny checkpoint evaluated in-process: the template, batched generation, outcome records."""
    import shutil

    import jax

    from agentlm import checkpoint
    from agentlm import model as llama

    cfg = llama.get_config("tiny", max_position_embeddings=4096)
    ckpt = tmp_path / "ckpt"
    checkpoint.save(ckpt, cfg, llama.init_params(cfg, jax.random.key(1)))
    shutil.copy(shared_path("models", "stories260K-hf", "tokenizer.model"), ckpt / "tokenizer.model")
    config = _config(tmp_path, model=str(ckpt), tasks="db", workers=2, max_tokens=8, label="tiny",
                     **{"db.limit": 2})
    summary = agent.run(config)
    db_summary = summary["tasks"]["db"]
    assert db_summary["n"] == 2 and summary["model"] == "tiny"
    # A random model never writes a valid action: every episode ends as an invalid action, none as a crash.
    assert db_summary["errors"]["invalid_action"] == 1.0 and db_summary["errors"]["error"] == 0.0
    rows = [json.loads(x) for x in (tmp_path / "run" / "agent" / "db" / "episodes.jsonl").read_text().splitlines()]
    assert all(r["conversations"][-1]["from"] == "gpt" and r["rounds"] == 1 for r in rows)


def _oracle_vs_envs(tmp_path, task, rows, module, env_factory, oracle, workers):
    """Our agent evaluation of an env's oracle, and the env's own loop + aggregate on the same items."""
    items = tmp_path / f"{task}.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(tmp_path, model="oracle", tasks=task, workers=workers, **{f"{task}.data_file": str(items)})
    got = agent.run(config)["tasks"][task]
    tasks = module.load_tasks(str(items))
    episodes = loop.run_tasks(env_factory, oracle, tasks, workers=1, progress=False)
    return got, episodes, tasks


def test_household_oracle_matches_envs_with_parallel_episodes(tmp_path):
    household = pytest.importorskip("agentlm.envs.household")
    rows = [{"kind": k, "level": 1, "seed": s} for k in ("coin", "treasure", "cooking") for s in (0, 1)]
    got, episodes, tasks = _oracle_vs_envs(tmp_path, "household", rows, household, household.HouseholdEnv,
                                           household.WalkthroughOracle(), workers=3)
    assert got["errors"]["error"] == 0.0  # TextWorld resets are serialised: parallel workers do not collide
    assert got["score"] == pytest.approx(household.aggregate(episodes, tasks)["score"]) == 100.0
    assert got["n"] == 6


@pytest.mark.slow
def test_sciworld_oracle_matches_envs(tmp_path):
    sciworld = pytest.importorskip("agentlm.envs.sciworld")
    rows = [{"task": "boil", "variation": 14}, {"task": "chemistry-mix", "variation": 16}]
    got, episodes, tasks = _oracle_vs_envs(tmp_path, "sciworld", rows, sciworld, sciworld.SciWorldEnv,
                                           sciworld.GoldPathOracle(), workers=2)
    assert got["score"] == pytest.approx(sciworld.aggregate(episodes, tasks)["score"]) == 100.0


@pytest.mark.slow
def test_miniwob_oracle_matches_envs(tmp_path):
    miniwob = pytest.importorskip("agentlm.envs.miniwob")
    if miniwob.browser_problem():
        pytest.skip(miniwob.browser_problem())
    from agentlm.envs.miniwob_solvers import ScriptedSolver

    rows = [{"task": "click-button", "seed": 0}, {"task": "enter-text", "seed": 1}]
    got, episodes, tasks = _oracle_vs_envs(tmp_path, "miniwob", rows, miniwob, miniwob.MiniWoBEnv,
                                           ScriptedSolver(), workers=2)
    assert got["score"] == pytest.approx(miniwob.aggregate(episodes, tasks)["score"]) == 100.0


def test_endpoint_model_plays_db_over_http(tmp_path):
    """--model http://...: the environments' OpenAIChatAgent, greedy, model name taken from /v1/models."""
    from tests.eval.openai_stub import StubServer

    with StubServer(chat=lambda body: 'Thought.\nAction: Answer\nFinal Answer: ["nothing"]', model="served") as srv:
        config = _config(tmp_path, model=srv.url, tasks="db", workers=2, **{"db.limit": 4})
        summary = agent.run(config)
        bodies = [b for path, b in srv.requests if path == "/v1/chat/completions"]
    assert summary["model"] == "served" and summary["tasks"]["db"]["n"] == 4
    assert summary["tasks"]["db"]["errors"]["invalid_action"] == 0.0
    assert len(bodies) == 4 and all(b["temperature"] == 0.0 and b["model"] == "served" for b in bodies)
    assert bodies[0]["messages"][0]["role"] == "user"  # the environment's instruction, no extra system prompt
