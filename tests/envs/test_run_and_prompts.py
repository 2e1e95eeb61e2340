"""The command-line runner, and instruction scaffolds taken from AgentInstruct files at run time."""
import json

import pytest

from agentlm.envs import db, os_env
from agentlm.envs.prompts import PromptScaffold, load_scaffold
from agentlm.envs.run import main
from tests.conftest import shared_path


def test_run_db_oracle_cli(tmp_path, capsys):
    tasks = shared_path("data", "agentbench", "dbbench", "dev.jsonl")
    assert main(["--env", "db", "--tasks", str(tasks), "--agent", "oracle", "--out", str(tmp_path), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "score" in printed and "success                    60" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["scores"]["score"] == 100.0 and summary["outcomes"]["success"] == 60
    rows = [json.loads(x) for x in (tmp_path / "db.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and {"id", "conversations", "reward", "outcome", "rounds"} <= set(rows[0])
    with pytest.raises(SystemExit):
        main(["--env", "nope", "--tasks", str(tasks)])


def test_agentinstruct_scaffolds():
    os_sc = load_scaffold(f"{shared_path('data', 'agentinstruct', 'os.parquet')}::0")
    assert os_sc.task_template.endswith("My problem is:\n\n{task}")
    assert os_sc.observation_template == "The output of the OS:\n\n{observation}"
    assert [m["loss"] for m in os_sc.turns if m["from"] == "gpt"] == [False] * 3
    db_path = shared_path("data", "agentinstruct", "db.parquet")
    env = db.DBEnv(prompt_file=f"{db_path}::5")
    task = db.load_tasks(shared_path("data", "agentbench", "dbbench", "dev.jsonl"))[0]
    prefix = env.reset(task)
    import pyarrow.parquet as pq
    row = pq.read_table(db_path).to_pylist()[5]["conversations"]
    assert [m["value"] for m in prefix[:2]] == [m["value"] for m in row[:2]]
    assert prefix[2]["value"] == task.data["description"] + "\n" + task.data["add_description"]
    env.close()
    hh = load_scaffold(str(shared_path("data", "agentinstruct", "alfworld.parquet")))
    assert hh.task_template == "Here is your task. {task}"


def test_scaffold_json_roundtrip_and_errors(tmp_path):
    sc = PromptScaffold([{"from": "human", "value": "do it", "loss": None}, {"from": "gpt", "value": "OK.", "loss": False}],
                        "Task: {task}", "Out: {observation}")
    f = tmp_path / "s.json"
    f.write_text(sc.to_json())
    back = load_scaffold(f)
    assert back == sc and back.build("x")[-1]["value"] == "Task: x" and back.observe("y") == "Out: y"
    with pytest.raises(ValueError, match="task_template"):
        PromptScaffold([], "no placeholder")
    with pytest.raises(ValueError, match="end with a gpt turn"):
        PromptScaffold([{"from": "human", "value": "x", "loss": None}])
    with pytest.raises(FileNotFoundError):
        load_scaffold(tmp_path / "missing.json")


def test_os_default_prompt_is_our_own():
    env = os_env.OSEnv()
    text = " ".join(m["value"] for m in env.scaffold.turns)
    assert "Act: bash" in text and "Act: answer(" in text and "Act: finish" in text
    assert "I'will play the role" not in text  # not AgentBench's wording
