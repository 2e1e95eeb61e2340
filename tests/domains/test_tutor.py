"""The tutor domain: misconceptions reproduce their known wrong answers, the student changes only for a hint that
names and explains the right concept, the oracle tutor succeeds everywhere, and bad tutors fail for their reason."""
import copy

import pytest

from agentlm.envs.base import Task
from agentlm.envs.domains import tutor
from agentlm.envs.domains import tutor_problems as tp
from agentlm.envs.loop import run_tasks
from agentlm.envs.tools.env import ToolEnv
from agentlm.envs.tools.oracle import TextOracle, step_text

KNOWN_ERRORS = [  # misconception, problem, the well-known wrong answer, the right answer
    ("add_across", "1/2 + 1/3", "2/5", "5/6"),
    ("smaller_from_larger", "52 - 38", "26", "14"),
    ("forget_carry", "47 + 38", "75", "85"),
    ("left_to_right", "2 + 3 * 4", "20", "14"),
    ("power_as_product", "2 + 3 ^ 4", "14", "83"),
    ("decimal_misalign", "2.5 + 1.25", "1.50", "3.75"),
    ("neg_times_neg", "(-3) * (-4)", "-12", "12"),
    ("distribute_first_only", "expand 3(x + 4)", "3x + 4", "3x + 12"),
    ("move_without_sign_change", "solve x + 5 = 12", "x = 17", "x = 7"),
]


def test_every_catalogue_entry_has_a_known_error_case():
    assert {m for m, *_ in KNOWN_ERRORS} == set(tp.MISCONCEPTIONS)


@pytest.mark.parametrize("name,problem,wrong,right", KNOWN_ERRORS)
def test_misconception_reproduces_its_known_wrong_answer(name, problem, wrong, right):
    assert tp.solve(problem, [name])[1] == wrong
    assert tp.solve(problem)[1] == right
    others = [m for m, c in tp.MISCONCEPTIONS.items() if c.kind != tp.MISCONCEPTIONS[name].kind]
    assert tp.solve(problem, others)[1] == right  # misconceptions of other problem kinds do not touch it


def test_two_misconceptions_each_needed_for_the_right_answer():
    both = ["left_to_right", "power_as_product"]
    assert tp.solve("2 + 3 * 2 ^ 3", both)[1] == "30"
    assert tp.solve("2 + 3 * 2 ^ 3", ["power_as_product"])[1] == "20"
    assert tp.solve("2 + 3 * 2 ^ 3", ["left_to_right"])[1] == "1000"
    assert tp.solve("2 + 3 * 2 ^ 3")[1] == "26"


def test_unreadable_probe_is_an_error_listing_the_formats():
    with pytest.raises(tp.ProblemError, match="I can do:.*a/b \\+ c/d"):
        tp.parse("what is the square root of 9")
    with pytest.raises(tp.ProblemError, match="first number is the larger"):
        tp.parse("12 - 40")


def _session(holds, problem, budget=3, seed=1):
    return tutor.Session.from_task({"world": {"name": "Ada", "problem": problem, "misconceptions": holds,
                                              "seed": seed, "hint_budget": budget}})


def test_student_changes_only_for_a_hint_naming_and_explaining_the_concept():
    s = _session(["add_across"], "1/2 + 1/3")
    tutor.give_hint(s, "common_denominator", "Try harder and check your work.")  # names it, explains nothing
    tutor.give_hint(s, "borrowing", "Use a common denominator.")  # explains it under the wrong concept
    assert "2/5" in tutor.ask_retry(s) and not s.solved
    tutor.give_hint(s, "common_denominator", "Rewrite both fractions over a common denominator first.")
    assert "5/6" in tutor.ask_retry(s) and s.solved


def test_wording_is_seeded_and_the_mathematics_is_not():
    a, b, c = (_session(["forget_carry"], "47 + 38", seed=k) for k in (1, 1, 2))
    texts = [tutor.view_problem(x)["student_work"] for x in (a, b, c)]
    assert texts[0] == texts[1]
    assert all(t.endswith("My answer is 75.") for t in texts)
    variants = {tutor.view_problem(_session(["forget_carry"], "47 + 38", seed=k))["student_work"] for k in range(12)}
    assert len(variants) > 1


def _play(task, replies):
    class Scripted:
        def act(self, conversation, task):
            return replies[min(sum(1 for m in conversation if m["from"] == "gpt" and m.get("loss")),
                               len(replies) - 1)]
    return run_tasks(lambda: ToolEnv(tutor.DOMAIN), Scripted(), [task], progress=False)[0]


@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_succeeds_on_every_template(split):
    templates = tutor.DOMAIN.templates_of(split)
    tasks = tutor.DOMAIN.generate(split, 5 * len(templates), seed=3)
    assert {t.data["template"] for t in tasks} == {t.name for t in templates}
    episodes = run_tasks(lambda: ToolEnv(tutor.DOMAIN), TextOracle(), tasks, progress=False)
    assert [e.outcome.value for e in episodes] == ["success"] * len(tasks), [e.info for e in episodes]
    assert tutor.failure_reasons(episodes) == {k: 0 for k in tutor.FAILURES}


def test_held_out_templates_hold_misconceptions_training_never_uses():
    train = {m for t in tutor.DOMAIN.generate("train", 30, 0) for m in t.data["world"]["misconceptions"]}
    test = [set(t.data["world"]["misconceptions"]) for t in tutor.DOMAIN.generate("test", 25, 0)]
    assert all(tp.MISCONCEPTIONS[m].split == "train" for m in train)
    assert all(any(tp.MISCONCEPTIONS[m].split == "test" for m in holds) for holds in test)


def _bad_tutor_plan(task, kind):
    plan = copy.deepcopy(task.data["solution"])
    answer = tp.solve(task.data["world"]["problem"])[1]
    if kind == "tells_answer":
        plan.insert(1, {"tool": "give_hint", "args": {"concept": "order_of_operations",
                                                      "explanation": f"The answer is {answer}, write that."}})
    elif kind == "wrong_concept":
        holds = {tp.MISCONCEPTIONS[m].concept for m in task.data["world"]["misconceptions"]}
        other = next(c for c in tp.CONCEPTS if c not in holds)
        for step in plan:
            if step.get("tool") == "give_hint":
                step["args"] = {"concept": other, "explanation": tutor.HINTS[other]}
    elif kind == "never_diagnoses":
        plan = [s for s in plan if s.get("tool") != "submit_diagnosis"]
    return [step_text(s) for s in plan]


@pytest.mark.parametrize("kind,reason", [("tells_answer", "revealed_answer"),
                                         ("wrong_concept", "student_still_wrong"),
                                         ("never_diagnoses", "no_diagnosis")])
def test_bad_tutors_fail_for_their_reason(kind, reason):
    for task in tutor.DOMAIN.generate("train", 6, seed=5) + tutor.DOMAIN.generate("test", 5, seed=5):
        episode = _play(task, _bad_tutor_plan(task, kind))
        assert episode.outcome.value != "success"
        assert episode.info["check"].split("; ") == [reason], (task.data["template"], episode.info)


def test_hints_over_budget_fail():
    task = tutor.DOMAIN.generate("train", 1, seed=0)[0]
    plan = copy.deepcopy(task.data["solution"])
    hint = next(s for s in plan if s.get("tool") == "give_hint")
    extra = [copy.deepcopy(hint) for _ in range(task.data["world"]["hint_budget"])]
    i = plan.index(hint)
    episode = _play(task, [step_text(s) for s in plan[:i] + extra + plan[i:]])
    assert episode.info["check"] == "over_hint_budget"


def test_task_files_round_trip(tmp_path):
    import json

    from agentlm.envs.tools.domain import load_tasks

    tasks = tutor.DOMAIN.generate("test", 4, seed=9)
    path = tmp_path / "tutor.jsonl"
    path.write_text("".join(json.dumps(t.data) + "\n" for t in tasks))
    loaded = load_tasks(tutor.DOMAIN, str(path))
    episodes = run_tasks(lambda: ToolEnv(tutor.DOMAIN), TextOracle(), loaded, progress=False)
    assert all(e.outcome.value == "success" for e in episodes)
    assert isinstance(loaded[0], Task)


def test_pipeline_exports_tutor_trajectories_the_mixture_loads(tmp_path):
    """configs/pipeline/domain_tutor.py at reduced size: oracle sessions with thoughts -> filter -> export ->
    AgentInstruct rows -> the tfds builder."""
    import json

    from agentlm.configfile import load_config_file
    from agentlm.data import builders
    from agentlm.data.validate import clean_row
    from data_pipeline.run import run_stages
    from tests.conftest import ROOT

    cfg = load_config_file(ROOT / "configs" / "pipeline" / "domain_tutor.py")
    cfg.out_dir, cfg.progress, cfg.fsync = str(tmp_path / "run"), False, False
    cfg.sources.tutor.path, cfg.sources.tutor_annotated.path = "builtin:train:12:0", "builtin:train:3:1"
    summary = run_stages(cfg)
    assert summary["filter"]["total"]["kept"] == 15
    path = tmp_path / "run" / "export" / "agentinstruct" / "tutor.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for row in rows:
        assert clean_row(row)[0]["conversations"] == row["conversations"]  # valid and already canonical
        replies = [t["value"] for t in row["conversations"] if t["from"] == "gpt" and t["loss"]]
        assert all(r.startswith("Thought: ") for r in replies)
    templates = {json.loads(x)["data"]["template"] for x in (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()}
    assert templates <= {t.name for t in tutor.DOMAIN.templates_of("train")}
    builder, report = builders.prepare("agent", [path.parent], tmp_path / "tfds", strict=True, verbose=False)
    assert sum(1 for _ in builder.as_dataset(split="tutor")) == 15


def test_eval_agent_reports_success_and_failure_reasons(tmp_path):
    from agentlm.configfile import load_config_file
    from agentlm.eval import agent
    from tests.conftest import ROOT

    config = load_config_file(ROOT / "configs" / "eval" / "agent.py")
    config.update(model="oracle", tasks="tutor", out=str(tmp_path / "run"), workers=2)
    config.tutor.limit = 15
    s = agent.run(config)["tasks"]["tutor"]
    assert s["score"] == 100.0 and s["n"] == 15
    assert s["failure_reasons"] == {k: 0 for k in tutor.FAILURES}
    assert set(s["per_template"]) == {t.name for t in tutor.DOMAIN.templates_of("test")}
