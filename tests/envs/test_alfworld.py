"""ALFWorld: AgentBench's text handling on project-made inputs (action parsing, BLEU mapping onto admissible
commands, observation clean-up, split files, game folders, archive extraction), and on the real games in
../shared: the prompt a model sees for a std game is AgentBench's, the expert-plan oracle wins the std games
through the loop a model uses, and AgentBench's repeat and invalid-reply rules end episodes."""
import json
import tarfile

import pytest

from agentlm.envs import alfworld, alfworld_files, registry
from agentlm.envs.base import Outcome, Task
from agentlm.envs.loop import LoopConfig, run_episode, run_tasks
from data_pipeline.sources.alfworld_games import game_tasks
from tests.conftest import shared_path

UNSEEN = "json_2.1.1/valid_unseen"


def _game(root, rel, solvable=True, walkthrough=("go to desk 1",)):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pddl_domain": "", "grammar": "", "pddl_problem": "", "solvable": solvable,
                                "walkthrough": list(walkthrough)}))
    return path


def test_action_parsing_and_bleu_mapping_as_agentbench():
    assert alfworld.parse_action("THOUGHT: find a mug.\n ACTION: Go To Desk 1 \nmore") == "go to desk 1"
    assert alfworld.parse_action("I would go to desk 1") is None
    choices = ["go to desk 1", "go to desk 2", "open drawer 1", "take mug 1 from desk 1"]
    assert alfworld.choose_command("go to desk 2", choices) == "go to desk 2"
    assert alfworld.choose_command("take the mug 1 from desk 1", choices) == "take mug 1 from desk 1"
    assert alfworld.choose_command("go desk 2", choices) == "go to desk 2"
    assert alfworld.choose_command("xyzzy", choices) == "xyzzy"  # nothing close: left as is ("Nothing happens.")
    assert alfworld.choose_command("anything", []) == "anything"
    assert alfworld.clean_observation("You arrive at loc 12. On the desk 1, you see a pen 1.") == \
        "On the desk 1, you see a pen 1."
    assert alfworld.opening_observation("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in a room.\n\nYour task "
                                        "is to: x.") == "You are in a room.\nYour task is to: x."


def test_plans_are_rewritten_in_the_grammar_the_game_is_played_with():
    newer = 'action PutObject {\n    template :: "move {o} to {r}";\n}\naction GotoLocation {\n    template :: ' \
            '"go to [{r.name | receptacleatlocation(r:receptacle, lend:location)}]";\n}\n' \
            'action HeatObject {\n    template :: "heat {o} with {r}";\n}'
    agentbench = newer.replace("move {o} to {r}", "put {o} in/on {r}")
    plan = ["go to desk 2", "take pencil 2 from desk 2", "heat pencil 2 with microwave 1", "move pencil 2 to shelf 5"]
    assert alfworld_files.translate_plan(plan, newer, agentbench) == plan[:3] + ["put pencil 2 in/on shelf 5"]
    assert alfworld_files.translate_plan(plan, newer, newer) == plan


def test_split_files_folders_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    data = tmp_path / "alfworld"
    a = _game(data, f"{UNSEEN}/pick_and_place_simple-Pen-None-Desk-1/trial_1/game.tw-pddl")
    b = _game(data, f"{UNSEEN}/look_at_obj_in_light-Book-None-DeskLamp-2/trial_2/game.tw-pddl")
    _game(data, f"{UNSEEN}/pick_heat_then_place_in_recep-Egg-None-Fridge-3/trial_3/game.tw-pddl", solvable=False)
    _game(data, f"{UNSEEN}/pick_and_place_simple-Knife-Sliced-Desk-4/trial_4/game.tw-pddl")
    split = tmp_path / "alfworld" / "std.json"  # AgentBench's layout: the split file beside json_2.1.1/
    split.write_text(json.dumps({"pick_and_place": [str(a.relative_to(data))],
                                 "look_at_obj": [str(b.relative_to(data))]}))
    tasks = alfworld_files.load_tasks(split)
    assert [t.data["task_type"] for t in tasks] == ["pick_and_place", "look_at_obj"]
    assert [t.id for t in tasks] == ["alfworld_std_0000", "alfworld_std_0001"] and tasks[0].split == "std"
    assert alfworld_files.game_path(tasks[1]) == b
    # a data root with a split: solvable games only, the sliced and unsolvable ones left out as ALFWorld does
    walked = alfworld_files.load_tasks(data, "valid_unseen")
    assert [alfworld_files.game_path(t) for t in walked] == [b, a]
    with pytest.raises(ValueError, match="split one of"):
        alfworld_files.load_tasks(data, "std")
    with pytest.raises(ValueError, match="names no ALFWorld task type"):
        alfworld_files.make_task("json_2.1.1/train/stack_plates-X/trial_1/game.tw-pddl", None, "train", 0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pick_and_place": "not a list"}))
    with pytest.raises(ValueError, match="bad.json key 'pick_and_place': expected a list"):
        alfworld_files.load_tasks(bad)
    lonely = tmp_path / "elsewhere" / "std.json"
    lonely.parent.mkdir()
    lonely.write_text(json.dumps([str(a.relative_to(data))]))
    with pytest.raises(FileNotFoundError, match="no ALFWorld data root is known"):
        alfworld_files.game_path(alfworld_files.load_tasks(lonely)[0])
    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    assert alfworld_files.game_path(alfworld_files.load_tasks(lonely)[0]) == a


def test_archive_is_extracted_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTLM_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src"
    _game(src, "json_2.1.1/train/pick_two_obj_and_place-Pen-None-Desk-1/trial_1/game.tw-pddl")
    archive = tmp_path / "json_2.1.1.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(src / "json_2.1.1", arcname="json_2.1.1")
    root = alfworld_files.data_root(tmp_path)
    assert root.parent == tmp_path / "cache" / "alfworld" and (root / "json_2.1.1" / "train").is_dir()
    assert alfworld_files.data_root(archive) == root  # the archive itself names the same entry
    assert [t.data["task_type"] for t in alfworld_files.load_tasks(archive, "train")] == ["pick_two_obj"]
    with pytest.raises(FileNotFoundError, match="no ALFWorld data here"):
        alfworld_files.data_root(src / "json_2.1.1")


def test_training_games_come_from_train_types_in_turn_never_valid_unseen(tmp_path):
    import ml_collections

    data = tmp_path / "alfworld"
    for t, n in (("pick_and_place_simple", 3), ("pick_cool_then_place_in_recep", 2), ("look_at_obj_in_light", 1)):
        for i in range(n):
            _game(data, f"json_2.1.1/train/{t}-X-None-Y-{i}/trial_{i}/game.tw-pddl")
    src = ml_collections.ConfigDict(dict(data=str(data), split="train", n=4, seed=0, offset=0))
    tasks = game_tasks("alfworld", src)
    assert [t.data["task_type"] for t in tasks] == ["pick_and_place", "pick_cool_then_place", "look_at_obj",
                                                    "pick_and_place"]
    assert all(t.split == "train" and t.id.startswith("alfworld_") for t in tasks)
    src.offset, src.n = 4, 0
    rest = game_tasks("alfworld", src)
    assert len(rest) == 2 and not {t.data["game"] for t in rest} & {t.data["game"] for t in tasks}
    src.split = "valid_unseen"
    with pytest.raises(ValueError, match="evaluation games"):
        game_tasks("alfworld", src)


# -- the real games ------------------------------------------------------------------------------------------------

def _real():
    spec = registry.get("alfworld")
    if spec.problem():
        pytest.skip(spec.problem())
    bench = shared_path("data", "alfworld", "agentbench")
    return spec, bench, {"data_path": str(shared_path("data", "alfworld")),
                         "prompts_file": str(bench / "prompts" / "alfworld_multiturn_react.json"),
                         "instruction_file": str(bench / "task_instruction.txt")}


def test_std_prompt_is_agentbenchs():
    spec, bench, options = _real()
    tasks = spec.tasks(str(bench / "std.json"))
    assert len(tasks) == 50
    examples = json.loads((bench / "prompts" / "alfworld_multiturn_react.json").read_text())
    instruction = (bench / "task_instruction.txt").read_text()
    env = spec.make_env(**options)
    for task, key in ((tasks[0], "put"), (tasks[-1], "puttwo")):
        conv = env.reset(task)
        want = [instruction, alfworld.OK_REPLY, "Here is one example.\n" + examples[key][0], *examples[key][1:]]
        assert [m["value"] for m in conv[:-1]] == want
        assert [m["from"] for m in conv[:-1]] == ["human", "gpt"] * (len(want) // 2)
        assert all(m["loss"] is False for m in conv[:-1] if m["from"] == "gpt")
        task_turn = conv[-1]["value"]
        assert task_turn.startswith("Here is your task. You are in the middle of a room.")
        assert "Welcome" not in task_turn and "\nYour task is to: " in task_turn
    assert "put soapbottle 1 in/on toilet 1" in alfworld.expert_plan(spec.tasks(str(bench / "dev.json"))[0])
    env.close()


def test_games_play_with_agentbenchs_logic_or_their_own():
    spec, bench, options = _real()
    task = spec.tasks(str(bench / "dev.json"))[0]  # put a soapbottle in toilet
    assert task.data["logic"].endswith("logic")  # found beside the data root, as AgentBench's base_config has it
    own = spec.make_env(**options, logic_dir="embedded")
    own.reset(task)
    assert own.step("ACTION: go to countertop 1").observation.startswith("You arrive at countertop 1. On the")
    own.step("ACTION: take soapbottle 1 from countertop 1")
    own.step("ACTION: go to toilet 1")
    assert "move soapbottle 1 to toilet 1" in own.admissible  # the newer grammar of the game files
    assert alfworld.expert_plan(task, logic_dir="embedded")[-1] == "move soapbottle 1 to toilet 1"
    own.close()


def test_repeated_and_invalid_replies_end_episodes_as_agentbench():
    spec, bench, options = _real()
    task = spec.tasks(str(bench / "dev.json"))[0]
    env = spec.make_env(**options)

    class Say:
        def __init__(self, *replies):
            self.replies = replies

        def act(self, conversation, task):
            turn = sum(1 for m in conversation if m["from"] == "gpt" and m.get("loss"))
            return self.replies[min(turn, len(self.replies) - 1)]

    # a near-miss action is mapped onto the admissible command; then three identical replies end the episode
    ep = run_episode(env, Say("ACTION: go to the countertop 1", "ACTION: inventory", "ACTION: look"), task,
                     LoopConfig(repeat_limit=None))
    assert ep.outcome == Outcome.REPEATED_ACTION and ep.rounds == 5 and ep.reward == 0.0
    first = next(i for i, m in enumerate(ep.conversation) if m["from"] == "gpt" and m["loss"])
    assert ep.conversation[first + 1]["value"].startswith("On the countertop 1, you see")  # "You arrive at loc N. " cut
    ep = run_episode(env, Say("I think I should look around."), task)
    assert ep.outcome == Outcome.INVALID_ACTION and ep.rounds == 1
    env.close()


@pytest.mark.slow
def test_expert_plan_oracle_wins_the_std_games():
    spec, bench, options = _real()
    tasks = spec.tasks(str(bench / "std.json"))
    episodes = run_tasks(spec.env_factory(**options), spec.make_oracle(data_path=options["data_path"]), tasks,
                         workers=2, progress=False)
    score = spec.score(episodes, tasks)
    assert score["scored"] == 50 and score["score"] == 100.0, [(e.task_id, e.outcome) for e in episodes]
    assert all(e.rounds <= 35 for e in episodes)
