"""ReWOO: the offline workers, the answer rules, plan parsing and execution (evidence substitution, the model as
the LLM tool, shown only its own prompt), the pluggable judge, and the scripted planner solving the SOTU and GSM8K
samples from ../shared through the tool executor."""
import re
import types

import pytest

from agentlm.envs import registry
from agentlm.envs.base import Outcome, Task
from agentlm.envs.loop import run_tasks
from agentlm.envs.qa_metrics import normalize_answer
from agentlm.envs.rewoo import data, env as rw, judge, tools


def test_calculator_is_arithmetic_only():
    assert tools.calculator("2^10 / 4") == "256" and tools.calculator("1,200 * 3%") == "36"
    assert tools.calculator("(5.9*14.9*60)+(6.25*5.1*60)") == "7187.1" and tools.calculator("sqrt(16)") == "4"
    assert tools.calculator("10/3") == "3.333333333"
    assert "could not read" in tools.calculator('__import__("os").system("true")')
    assert "could not read" in tools.calculator("x + 1")
    assert "not a finite number" in tools.calculator("1/0")


def test_answer_rules():
    yes_no, sports = data.SETS["strategy_qa"], data.SETS["sports_understanding"]
    assert data.rule_score(yes_no, "Yes, because frost occurs in May.", "Yes")["reward"] == 1.0
    assert data.rule_score(yes_no, "No.", "Yes")["reward"] == 0.0
    assert data.rule_score(sports, "This is implausible.", "implausible")["reward"] == 1.0
    assert data.rule_score(sports, "not plausible", "plausible")["reward"] == 0.0
    assert data.rule_score(sports, "plausible", "implausible")["reward"] == 0.0
    physics, gsm = data.SETS["physics_question"], data.SETS["gsm8k"]
    assert data.rule_score(physics, "About 7190 m.", "Can be one of ['7187 m', '7 km']")["reward"] == 1.0
    assert data.rule_score(physics, "7 km", "Can be one of ['7187 m', '7 km']")["reward"] == 1.0
    assert data.rule_score(physics, "8000 m", "Can be one of ['7187 m', '7 km']")["reward"] == 0.0
    assert data.rule_score(gsm, "$1,200", "1200")["reward"] == 1.0 and data.rule_score(gsm, "1201", "1200")["reward"] == 0
    free = data.rule_score(data.SETS["sotu_qa"], "Hakeem Jeffries", "The leader is Hakeem Jeffries")
    assert 0 < free["reward"] == free["f1"] < 1


def test_plan_parsing_and_execution_with_the_model_as_llm_tool():
    steps = rw.parse_plan("Plan: add\n#E1 = Calculator[2 + 3]\nPlan: ask\n#E2 = LLM[double #E1]\n"
                          "Plan: search\n#E3 = Google[x]\n#E4 = Calculator[#E1 * 10]")
    assert [(s["n"], s["tool"], s["input"]) for s in steps] == [
        (1, "Calculator", "2 + 3"), (2, "LLM", "double #E1"), (3, "Google", "x"), (4, "Calculator", "#E1 * 10")]
    task = Task("t", "rewoo", {"set": "gsm8k", "question": "What is 2+3, doubled?", "answer": "10"})

    class Model:
        def __init__(self):
            self.views = []

        def act(self, conversation, task):
            self.views.append(conversation)
            prompt = conversation[-1]["value"]
            if prompt.startswith("For the question below"):
                return "Plan: add\n#E1 = Calculator[2 + 3]\nPlan: ask\n#E2 = LLM[double #E1]\n#E3 = Google[x]"
            if prompt.startswith("Respond briefly"):
                assert prompt.endswith("double 5")
                return "10"
            assert "Evidence: 5\n" in prompt and "Evidence: 10\n" in prompt and "Evidence: No evidence found." in prompt
            return "The answer is 10."

    model = Model()
    [ep] = run_tasks(rw.RewooEnv, model, [task], progress=False)
    assert ep.outcome == Outcome.SUCCESS and ep.rounds == 3 and ep.info["evidence"][3] == "No evidence found."
    assert all(len(v) == 1 for v in model.views)  # each part is a call of its own
    assert len(ep.conversation) == 6  # the episode records all of them
    assert "SearchSOTU" not in ep.conversation[0]["value"] and "Calculator[expression]" in ep.conversation[0]["value"]


def test_pluggable_judge_scores_free_text():
    calls = []

    def create(**kw):
        calls.append(kw)
        return types.SimpleNamespace(choices=[types.SimpleNamespace(message=types.SimpleNamespace(content="CORRECT"))])

    client = types.SimpleNamespace(chat=types.SimpleNamespace(completions=types.SimpleNamespace(create=create)))
    env = rw.RewooEnv()
    env.judge = judge.OpenAIJudge("http://unused", "judge-model", client=client)
    env.reset(Task("t", "rewoo", {"set": "sotu_qa", "question": "Who leads?", "answer": "Hakeem Jeffries leads"}))
    env.step("Plan: nothing")
    r = env.step("Jeffries")
    assert r.reward == 1.0 and r.info["scored_by"] == "judge" and calls[0]["model"] == "judge-model"
    assert "Reference answer: Hakeem Jeffries leads" in calls[0]["messages"][0]["content"]
    with pytest.raises(ValueError, match="judge_model"):
        rw.RewooEnv(judge_url="http://localhost:1/v1")


def test_sets_and_errors(shared, tmp_path):
    root = shared("data", "rewoo")
    tasks = registry.get("rewoo").tasks(str(root))
    counts = {s: sum(t.data["set"] == s for t in tasks) for s in data.AVAILABLE}
    assert counts == {s: 50 for s in data.AVAILABLE}
    assert [t.data["row"] for t in tasks if t.data["set"] == "strategy_qa"][:3] == [994, 2185, 1311]
    gsm = shared("data", "general_eval", "gsm8k", "test.jsonl")
    assert len(data.load_tasks(f"{tmp_path}::gsm8k={gsm}")) == 50  # GSM8K from anywhere
    with pytest.raises(ValueError, match="hotpot_qa: missing"):
        data.load_tasks(f"{root}::trivia_qa")
    (tmp_path / "SOTU").mkdir()
    (tmp_path / "SOTU" / "SOTU_QA.csv").write_text("q,a\nx,y\n")
    with pytest.raises(ValueError, match=r"SOTU_QA.csv: expected columns 'question' and 'answer'"):
        data.load_tasks(f"{tmp_path}::sotu_qa")


def test_scripted_planner_solves_sotu_and_gsm8k(shared):
    spec = registry.get("rewoo")
    tasks = spec.tasks(f"{shared('data', 'rewoo')}::sotu_qa,gsm8k")
    eps = run_tasks(spec.env_factory(), spec.make_oracle(), tasks, progress=False, workers=2)
    assert all(e.outcome == Outcome.SUCCESS and e.reward == 1.0 for e in eps), [e.info for e in eps if e.reward < 1]
    from_evidence = overlap = 0
    for t, e in zip(tasks, eps):
        if t.data["set"] == "gsm8k":  # every calculator step gives the solution's own intermediate result
            annotated = re.findall(r"<<([^=<>]*)=([^<>]*)>>", t.data["solution"])
            assert e.info["tools_used"] == ["Calculator"] * len(annotated)
            for k, (_, value) in enumerate(annotated, 1):
                assert data.numbers(e.info["evidence"][k])[:1] == data.numbers(value)[:1], (t.id, k)
            from_evidence += bool(annotated) and e.info["answer"] == e.info["evidence"][len(annotated)]
        else:  # the search step finds the passage: words of the gold answer beyond the question's own
            gold, question = (set(normalize_answer(x).split()) for x in (t.data["answer"], t.data["question"]))
            overlap += bool((gold - question) & set(normalize_answer(e.info["evidence"][1]).split()))
            assert e.info["tools_used"] == ["SearchSOTU", "LLM"]
    assert from_evidence >= 40 and overlap >= 40
    summary = spec.score(eps, tasks)
    assert summary["score"] == 100.0 and set(summary["not_run"]) >= {"hotpot_qa", "trivia_qa"}
    assert summary["sets"]["gsm8k"]["status"].startswith("substituted")
