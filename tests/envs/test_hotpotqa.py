"""HotpotQA: official answer scoring, the closed wiki's search/lookup, item formats, the ReAct prompt from
../shared, and the supporting-facts oracle scoring F1 = 1 on AgentTuning's 300 questions."""
import json

import pytest

from agentlm.envs import hotpotqa, registry
from agentlm.envs.base import Outcome
from agentlm.envs.loop import run_tasks
from agentlm.envs.qa_metrics import exact_match, f1_score, normalize_answer
from agentlm.envs.wiki_corpus import WikiBrowser, WikiCorpus, normalize_title, parse_wiki_action


def test_official_answer_normalisation_and_f1():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an Apple a day") == "apple day"
    assert exact_match("the Seine", "Seine") and not exact_match("Seine river", "Seine")
    assert f1_score("Seine river", "the Seine") == pytest.approx(2 / 3)
    assert f1_score("yes", "no") == 0.0 and f1_score("no", "no") == 1.0
    assert f1_score("yes it is", "yes") == 0.0  # a yes/no gold is all or nothing
    assert f1_score("", "Paris") == 0.0


def _corpus():
    return WikiCorpus([("Eiffel Tower", ["The Eiffel Tower is in Paris.", " It was built in 1889.",
                                         " Paris has many visitors."]),
                       ("Paris", ["Paris is the capital of France.", " It stands on the Seine."]),
                       ("PARIS (band)", ["PARIS is a band."])])


def test_search_normalises_titles_and_suggests_similar_ones():
    assert normalize_title("eiffel_tower  ") == "Eiffel tower"
    b = WikiBrowser(_corpus())
    assert b.search("Paris").startswith("Paris is the capital")
    assert b.search("paris (BAND)") == "PARIS is a band."  # one case-insensitive match is taken
    assert b.search("Eiffel  Tower") .startswith("The Eiffel Tower is in Paris.")
    miss = b.search("capital of France")
    assert miss.startswith("Could not find [capital of France]. Similar: ['Paris'")


def test_lookup_walks_the_current_pages_sentences():
    b = WikiBrowser(_corpus())
    assert "Search" in b.lookup("Paris")
    b.search("Eiffel Tower")
    assert b.lookup("paris") == "(Result 1 / 2) The Eiffel Tower is in Paris."
    assert b.lookup("paris") == "(Result 2 / 2) Paris has many visitors."
    assert b.lookup("paris") == "No more results."
    assert b.lookup("1889") == "(Result 1 / 1) It was built in 1889."


def test_action_parsing():
    assert parse_wiki_action("Thought 1: x\nAction 1: Search[Milhouse]") == ("search", "Milhouse")
    assert parse_wiki_action("finish[yes]") == ("finish", "yes")
    assert parse_wiki_action("Action: Lookup[named after] ") == ("lookup", "named after")
    assert parse_wiki_action("I think the answer is Paris") is None


def _row(qid, answer="Paris", **extra):
    return {"_id": qid, "question": "Capital of France?", "answer": answer, "type": "bridge", "level": "easy",
            "supporting_facts": [["Paris", 0]], "context": [["Paris", ["Paris is the capital of France."]],
                                                           ["Lyon", ["Lyon is a city."]]], **extra}


def test_item_formats_and_clear_errors(tmp_path):
    official = tmp_path / "dev.json"
    official.write_text(json.dumps([_row("a")]))
    hf = _row("b")
    hf["context"] = {"title": ["Paris"], "sentences": [["Paris is the capital of France."]]}
    hf["supporting_facts"] = {"title": ["Paris"], "sent_id": [0]}
    jl = tmp_path / "hf.jsonl"
    jl.write_text(json.dumps(hf) + "\n")
    tasks = hotpotqa.load_tasks(f"{official},{jl}")
    assert [t.id for t in tasks] == ["hotpotqa_a", "hotpotqa_b"]
    assert tasks[1].data["context"] == [["Paris", ["Paris is the capital of France."]]]
    eps = run_tasks(hotpotqa.HotpotQAEnv, hotpotqa.SupportingFactsOracle(), tasks, progress=False)
    assert [e.outcome for e in eps] == [Outcome.SUCCESS] * 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({k: v for k, v in _row("c").items() if k != "answer"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl item 0: missing field 'answer'"):
        hotpotqa.load_tasks(str(bad))


def test_invalid_actions_continue_and_wrong_answers_score_f1(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps(_row("q", answer="Paris France")) + "\n")
    env = hotpotqa.HotpotQAEnv()
    env.reset(hotpotqa.load_tasks(str(f))[0])
    r = env.step("I am not sure")
    assert not r.done and r.observation.startswith("Observation 1: Invalid Action")
    r = env.step("Thought 2: guess\nAction 2: Finish[Paris]")
    assert r.done and r.reward == pytest.approx(2 / 3) and not r.info["success"]


def test_oracle_scores_f1_1_on_all_300(shared):
    spec = registry.get("hotpotqa")
    tasks = spec.tasks(str(shared("data", "hotpotqa")))
    assert len(tasks) == 300 and {t.data["level"] for t in tasks} == {"easy", "medium", "hard"}
    env = hotpotqa.HotpotQAEnv()
    for t in tasks:  # every supporting-fact title opens its page
        env.reset(t)
        for title, _ in t.data["supporting_facts"]:
            assert not env.browser.search(title).startswith("Could not find"), (t.id, title)
    eps = run_tasks(spec.env_factory(), spec.make_oracle(), tasks, progress=False, workers=2)
    assert all(e.reward == 1.0 and e.outcome == Outcome.SUCCESS for e in eps)
    scored = spec.score(eps, tasks)
    assert scored["score"] == 100.0 and scored["em"] == 100.0
    assert {lvl: v["n"] for lvl, v in scored["levels"].items()} == {"easy": 100, "medium": 100, "hard": 100}


def test_prompt_is_the_react_instruction_and_examples(shared):
    prompts = shared("data", "hotpotqa", "prompts")
    task = hotpotqa.load_tasks(str(shared("data", "hotpotqa", "easy.jsonl")))[0]
    env = hotpotqa.HotpotQAEnv(prompt_dir=str(prompts))
    first = env.reset(task)
    instruction = (prompts / "react_instruction.txt").read_text()
    examples = (prompts / "react_examples.txt").read_text()
    assert first == [{"from": "human", "loss": None, "value": instruction.format(
        examples=examples, question=task.data["question"], scratchpad="")}]
    # the same strings as BOLAA's fewshots.py / pre_prompt.py (REACT_EXAMPLE, REACT_INSTRUCTION)
    assert examples.strip() in (prompts / "fewshots.py").read_text()
    assert instruction.split("{examples}")[0] in (prompts / "pre_prompt.py").read_text()
    own = hotpotqa.HotpotQAEnv().reset(task)[0]["value"]
    assert own.endswith(f"Question: {task.data['question']}") and "Search[entity]" in own


def test_scratchpad_view_is_one_prompt_with_the_trajectory(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps(_row("q")) + "\n")
    seen = []

    class Agent:
        def act(self, conversation, task):
            seen.append(conversation)
            return "Thought 1: look it up.\nAction 1: Search[Paris]" if len(seen) == 1 else \
                "Thought 2: found.\nAction 2: Finish[Paris]"

    [ep] = run_tasks(lambda: hotpotqa.HotpotQAEnv(scratchpad=True), Agent(), hotpotqa.load_tasks(str(f)),
                     progress=False)
    assert ep.outcome == Outcome.SUCCESS and len(ep.conversation) == 4  # recorded as a chat
    assert len(seen[1]) == 1 and seen[1][0]["value"].endswith(
        "Question: Capital of France?\nThought 1: look it up.\nAction 1: Search[Paris]\n"
        "Observation 1: Paris is the capital of France.")
