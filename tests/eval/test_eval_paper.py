"""The overall-score arithmetic reproduces every overall row of the paper from its per-task numbers."""
import math

import pytest

from agentlm.eval import paper


@pytest.mark.parametrize("model", paper.MODELS)
def test_overalls_reproduce_every_paper_column(model):
    scores = paper.paper_row(model)
    got = paper.overalls(scores)
    j = paper.MODELS.index(model)
    for category, published in paper.PUBLISHED_OVERALLS.items():
        assert got[category]["complete"]
        assert got[category]["overall"] == pytest.approx(published[j], abs=0.01), (model, category)


def test_agentlm_70b_overalls():
    got = paper.overalls(paper.paper_row("AgentLM-70B"))
    assert round(got["held_in"]["overall"], 2) == 2.55
    assert round(got["held_out"]["overall"], 2) == 1.40
    assert round(got["general"]["overall"], 2) == 0.96


def test_partial_category_is_mean_over_tasks_run_and_says_which():
    ours = paper.to_paper_names({"db": 37.7, "os": 21.5, "mmlu": 59.5})
    held_in = paper.overall(ours, "held_in")
    assert held_in["tasks"] == ["OS", "DB"] and not held_in["complete"]
    assert held_in["overall"] == pytest.approx((21.5 / 18.1 + 37.7 / 12.5) / 2)
    assert "ALFWorld" in held_in["missing"]
    assert paper.overall(ours, "held_out") == {"overall": None, "tasks": [], "complete": False,
                                               "missing": list(paper.CATEGORIES["held_out"])}
    assert paper.overall({"DB": math.nan, "OS": 18.1}, "held_in")["tasks"] == ["OS"]


def test_unknown_names_are_rejected():
    with pytest.raises(KeyError, match="mind2web"):
        paper.to_paper_names({"mind2web": 1.0})
    with pytest.raises(KeyError, match="unknown paper model"):
        paper.paper_row("AgentLM-1B")


def test_report_reproduces_general_overall_from_a_run(tmp_path):
    """A run directory holding AgentLM-70B's general numbers: the report's overall is the paper's 0.96."""
    import json

    from agentlm.eval import report

    row = paper.paper_row("AgentLM-70B")
    general = {"model": "agentlm-70b-as-published",
               "benchmarks": {k: {"score": row[paper.TASK_TO_PAPER[k]], "n": 1}
                              for k in ("mmlu", "humaneval", "gsm8k", "mt_bench")}}
    agent = {"model": "agentlm-70b-as-published",
             "tasks": {k: {"score": row[paper.TASK_TO_PAPER[k]], "n": 1, "metric": "", "errors": {}}
                       for k in ("db", "os", "household", "sciworld", "miniwob")}}
    (tmp_path / "general").mkdir()
    (tmp_path / "agent").mkdir()
    (tmp_path / "general" / "summary.json").write_text(json.dumps(general))
    (tmp_path / "agent" / "summary.json").write_text(json.dumps(agent))
    r = report.collect(tmp_path)
    assert round(r["overall"]["general"]["overall"], 2) == 0.96 and r["overall"]["general"]["complete"]
    # Held-in/out: our five tasks only; the like-for-like paper value over the same tasks is what it must equal.
    for cat in ("held_in", "held_out"):
        same = paper.overall({t: row[t] for t in r["overall"][cat]["tasks"]}, cat)["overall"]
        assert r["overall"][cat]["overall"] == pytest.approx(same)
    md = open(report.write_model_report(tmp_path)["markdown"]).read()
    assert "| **general overall** | all tasks | | **0.96** |" in md
