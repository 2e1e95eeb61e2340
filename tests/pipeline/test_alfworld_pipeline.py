"""configs/pipeline/alfworld.py at reduced size on the real games in ../shared: train games -> expert-plan rollouts
and CoT-annotated gold runs -> success filter -> AgentInstruct export that the tfds builder loads; and
agentlm.eval.agent scores the oracle on AgentBench's dev games with the paper's metric and normaliser."""
import json

import pytest

from agentlm.envs import registry
from tests.conftest import ROOT, shared_path


def _shared():
    problem = registry.get("alfworld").problem()
    if problem:
        pytest.skip(problem)
    return shared_path("data", "alfworld")


@pytest.mark.slow
def test_pipeline_exports_alfworld_rows_the_mixture_loads(tmp_path):
    from agentlm.configfile import load_config_file
    from agentlm.data import builders
    from agentlm.data.validate import clean_row
    from data_pipeline.run import run_stages

    data = _shared()
    cfg = load_config_file(ROOT / "configs" / "pipeline" / "alfworld.py")
    cfg.out_dir, cfg.progress, cfg.fsync = str(tmp_path / "run"), False, False
    prompts = {"prompts_file": str(data / "agentbench" / "prompts" / "alfworld_multiturn_react.json"),
               "instruction_file": str(data / "agentbench" / "task_instruction.txt")}
    for name, n, offset in (("alfworld", 4, 0), ("alfworld_annotated", 2, 4)):
        src = cfg.sources[name]
        src.data, src.n, src.offset = str(data), n, offset
        src.env_kwargs.update(prompts)
    summary = run_stages(cfg)
    assert summary["filter"]["total"]["kept"] == 6, summary["filter"]
    tasks = [json.loads(x) for x in (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()]
    assert all("/train/" in t["data"]["game"] for t in tasks) and len({t["data"]["game"] for t in tasks}) == 6
    path = tmp_path / "run" / "export" / "agentinstruct" / "alfworld.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    instruction = (data / "agentbench" / "task_instruction.txt").read_text()
    for row in rows:
        assert clean_row(row)[0]["conversations"] == row["conversations"]  # valid and already canonical
        conv = row["conversations"]
        assert conv[0]["value"] == instruction and conv[2]["value"].startswith("Here is one example.\n")
        replies = [t["value"] for t in conv if t["from"] == "gpt" and t["loss"]]
        assert replies and all("ACTION: " in r for r in replies) and replies[0].startswith("THOUGHT: ")
    builder, report = builders.prepare("agent", [path.parent], tmp_path / "tfds", strict=True, verbose=False)
    assert sum(1 for _ in builder.as_dataset(split="alfworld")) == 6


@pytest.mark.slow
def test_eval_agent_scores_alfworld_with_the_papers_metric(tmp_path):
    from agentlm.configfile import load_config_file
    from agentlm.eval import agent, report

    data = _shared()
    config = load_config_file(ROOT / "configs" / "eval" / "agent.py")
    config.update(model="oracle", tasks="alfworld", out=str(tmp_path / "run"), workers=2, label="alfworld-oracle")
    section = config.alfworld
    section.data_file = str(data / "agentbench" / "dev.json")
    section.data_path = str(data)
    section.prompts_file = str(data / "agentbench" / "prompts" / "alfworld_multiturn_react.json")
    section.instruction_file = str(data / "agentbench" / "task_instruction.txt")
    section.limit = 6
    s = agent.run(config)["tasks"]["alfworld"]
    assert s["paper_task"] == "ALFWorld" and s["metric"] == "success rate" and s["n"] == 6 and s["score"] == 100.0
    paths = report.write_model_report(config.out)
    text = open(paths["markdown"]).read()
    assert "| alfworld (ALFWorld) |" in text
    data_json = json.loads(open(paths["json"]).read())
    assert data_json["overall"]["held_in"]["tasks"] == ["ALFWorld"]
    # the paper's normaliser: 100 / 19.9 = 5.03
    assert data_json["overall"]["held_in"]["overall"] == pytest.approx(100 / 19.9)
