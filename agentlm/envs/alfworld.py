"""ALFWorld (held-in): the real ALFWorld text games, played the way AgentBench's ALFWorld task plays them.

Games are ALFWorld's `game.tw-pddl` files (json_2.1.1: train, valid_seen, valid_train, valid_unseen). They run on
TextWorld's PDDL backend with ALFWorld's own wrappers (`alfworld` package: object names demangled to "desk 2",
the game file in the infos), which gives ALFWorld's observations and admissible commands. The backend needs
TextWorld's planner library, `fast-downward-textworld`, which `make planner` builds from source once.

AgentBench's protocol (the paper's ALFWorld column), reproduced here:
- the conversation opens with an instruction and the reply "OK. I'll follow your instructions and try my best to
  solve the task.", then one example trajectory chosen by the game's task type ("Here is one example.\n" before
  its first turn), then "Here is your task. " + the opening observation without its welcome banner;
- each reply's action is the text after the first "ACTION:" (first line, stripped, lower-cased); an action that
  is not admissible becomes the admissible command closest to it by sentence BLEU (NLTK, smoothing method 4)
  when that score is above 0.01; "You arrive at loc N. " is cut from observations;
- an episode ends when the game is won (success), when the last three replies are identical (after at least
  four rounds), or after 35 rounds; the score is the success rate over the split (AgentBench's std: 50 games).
A reply with no "ACTION:" line ends the episode as an invalid action (AgentBench's runner crashes on it and leaves
the game out of its total; here it counts as a failure).

Games are played with AgentBench's logic/ domain and grammar (base_config's $ALFWORLD_DATA/logic) where found: the
game files here embed a newer copy whose commands ("move X to Y") and observations ("You arrive at desk 1.")
differ from the ones AgentBench's prompts and AgentInstruct's rows use ("put X in/on Y", "You arrive at loc 12.");
`logic_dir="embedded"` plays the game file's own copy.

The instruction and example turns are AgentBench's files, given at run time (`instruction_file`, e.g. its
task_instruction.txt, and `prompts_file`, its alfworld_multiturn_react.json); without them the environment uses
its own instruction and no example. Game paths in a split file are relative to the ALFWorld data root
(`$ALFWORLD_DATA`, `data_path`, or found beside the split file), which holds `json_2.1.1/` or the
`json_2.1.1.tar.xz` archive; an archive is extracted once into the agentlm cache.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any, Sequence

from agentlm.envs.agents import n_agent_turns
from agentlm.envs.alfworld_files import TASK_TYPES, game_data
from agentlm.envs.base import Environment, Episode, Message, Outcome, StepResult, Task
# TextWorld's PDDL backend (its grammar parser, Fast Downward's translator) keeps module-level state: two threads
# loading or stepping games at once fail ("pop from empty list"). Every game call takes the process-wide TextWorld
# lock the household games take too, so the two kinds of game cannot race each other in one evaluation; episodes
# still overlap in the agent's turns, which is where a model spends its time.
from agentlm.envs.household_games import TEXTWORLD_LOCK
from agentlm.envs.prompts import PromptScaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, scored_episodes, success_rate

OK_REPLY = "OK. I'll follow your instructions and try my best to solve the task."
EXAMPLE_PREFIX = "Here is one example.\n"
TASK_PREFIX = "Here is your task. "
BLEU_LIMIT = 0.01
REPEAT_WINDOW = 3

INSTRUCTION = """You act in a household to complete a task. First you are told what the room holds and what the
goal is; then, one turn at a time, you reply with one action and I tell you what happened. Reply either with a
thought and an action:
THOUGHT: what you know so far and what to do next.
 ACTION: the action
or with the action alone:
ACTION: the action
Actions look like: go to cabinet 1, open drawer 2, take mug 1 from countertop 1, put mug 1 in/on shelf 2,
clean/heat/cool apple 1 with sinkbasin 1/microwave 1/fridge 1, use desklamp 1, examine book 2, look, inventory.
If I answer "Nothing happens.", the action was not possible there: try another one."""


# -- AgentBench's text handling ------------------------------------------------------------------------------------

def bleu(reference: str, candidate: str) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    return sentence_bleu([reference.split()], candidate.split(), smoothing_function=SmoothingFunction().method4)


def parse_action(reply: str) -> str | None:
    """The text after the first "ACTION:" (first line, stripped, lower-cased), or None without one."""
    m = re.search("ACTION:(.*)", reply)
    return m.group(1).strip().lower() if m else None


def choose_command(action: str, admissible: Sequence[str]) -> str:
    """`action` when admissible (or nothing is), else the admissible command of highest BLEU above 0.01."""
    if not admissible or action in admissible:
        return action
    scores = [bleu(choice, action) for choice in admissible]
    best = max(range(len(scores)), key=scores.__getitem__)  # the first of equal scores, as numpy's argmax
    return admissible[best] if scores[best] > BLEU_LIMIT else action


def opening_observation(feedback: str) -> str:
    """The game's first text without its welcome banner (everything before the first blank line)."""
    return "\n".join(feedback.split("\n\n")[1:])


def clean_observation(feedback: str) -> str:
    if feedback.startswith("You arrive at loc "):
        feedback = feedback[feedback.find(". ") + 2:]
    return feedback


def load_examples(path: str | os.PathLike) -> dict[str, list[str]]:
    """AgentBench's prompt file: {task key: [alternating user/agent turns, user first]}."""
    p = pathlib.Path(path)
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected an object keyed by {sorted(set(TASK_TYPES.values()))}")
    for key in TASK_TYPES.values():
        turns = data.get(key)
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise ValueError(f"{p}: key {key!r} must be a non-empty list of turn strings")
        if len(turns) % 2:
            raise ValueError(f"{p}: key {key!r} has {len(turns)} turns; the example must end with an agent turn")
    return data


def scaffold_for(task_type_: str, instruction: str, examples: dict[str, list[str]] | None) -> PromptScaffold:
    """The turns before the task: instruction, the fixed reply, then the task type's example trajectory."""
    turns = [{"from": "human", "value": instruction, "loss": None}, {"from": "gpt", "value": OK_REPLY, "loss": False}]
    if examples:
        for n, text in enumerate(examples[TASK_TYPES[task_type_]]):
            role = "human" if n % 2 == 0 else "gpt"
            turns.append({"from": role, "value": (EXAMPLE_PREFIX + text) if n == 0 else text,
                          "loss": None if role == "human" else False})
    return PromptScaffold(turns, TASK_PREFIX + "{task}")


# -- the environment -----------------------------------------------------------------------------------------------

def start_game(data: dict[str, Any]):
    """TextWorld's PDDL backend on one ALFWorld game, wrapped as ALFWorld's evaluation wraps it."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs.pddl import PddlEnv
    game = PddlEnv(textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"]))
    for wrapper in (AlfredDemangler(shuffle=False), AlfredInfos):
        game = wrapper(game)
    game.load(data)
    return game


class ALFWorldEnv(Environment):
    name = "alfworld"

    def __init__(self, max_rounds: int = 35, data_path: str | None = None, logic_dir: str | None = None,
                 prompts_file: str | None = None, instruction_file: str | None = None, prompt_file: str | None = None):
        self.max_rounds = max_rounds
        self.data_path, self.logic_dir = data_path or None, logic_dir or None
        self.examples = load_examples(prompts_file) if prompts_file else None
        self.instruction = (pathlib.Path(instruction_file).read_text(encoding="utf-8") if instruction_file
                            else INSTRUCTION)
        # an AgentInstruct-derived scaffold replaces instruction and example alike
        self.scaffold = load_scaffold(prompt_file) if prompt_file else None
        self.game = None
        self.admissible: list[str] = []
        self.replies: list[str] = []

    def reset(self, task: Task) -> list[Message]:
        data = game_data(task, self.data_path, self.logic_dir)
        with TEXTWORLD_LOCK:
            if self.game is None:
                self.game = start_game(data)
            else:  # one backend (and one copy of the planner library) for all of this environment's episodes
                self.game.load(data)
            state = self.game.reset()
        self.admissible = list(state["admissible_commands"] or [])
        self.replies = []
        scaffold = self.scaffold or scaffold_for(task.data["task_type"], self.instruction, self.examples)
        return scaffold.build(opening_observation(state.feedback))

    def step(self, action: str) -> StepResult:
        command = parse_action(action)
        if command is None:
            return StepResult("", 0.0, True, {"invalid": True, "won": False}, invalid=True)
        command = choose_command(command, self.admissible)
        with TEXTWORLD_LOCK:
            state, _, _ = self.game.step(command)
        self.admissible = list(state["admissible_commands"] or [])
        self.replies.append(action)
        won = bool(state["won"])
        info = {"won": won, "command": command}
        # AgentBench checks for three identical replies before it looks at the result of the step
        if len(self.replies) > REPEAT_WINDOW and len(set(self.replies[-REPEAT_WINDOW:])) == 1:
            return StepResult("", 0.0, True, dict(info, won=False, repeated_action=True))
        if won:
            return StepResult("", 1.0, True, info)
        return StepResult(clean_observation(state.feedback), 0.0, False, info)

    def parse_ok(self, action: str) -> bool:
        return parse_action(action) is not None

    def close(self) -> None:
        # TextWorld keeps each backend's copy of the planner library loaded (unloading one and loading another
        # crashes the process), which is why one backend serves all of an environment's episodes
        if self.game is not None:
            with TEXTWORLD_LOCK:
                self.game.close()
            self.game = None


# -- the oracle ----------------------------------------------------------------------------------------------------

def expert_plan(task: Task, data_path: str | None = None, logic_dir: str | None = None) -> list[str]:
    """The game's expert plan: the walkthrough ALFWorld stored in the game file, in the commands of the grammar
    the game is played with."""
    plan = game_data(task, data_path, logic_dir).get("walkthrough")
    if not plan or not all(isinstance(c, str) for c in plan):
        raise ValueError(f"task {task.id}: the game file has no walkthrough (expert plan) to follow")
    return list(plan)


class ExpertPlanOracle:
    """Plays each game's expert plan, one command per turn, in AgentBench's reply format."""

    def __init__(self, data_path: str | None = None, logic_dir: str | None = None):
        self.data_path, self.logic_dir = data_path or None, logic_dir or None
        self._plans: dict[str, list[str]] = {}

    def act(self, conversation: list[Message], task: Task) -> str:
        if task.id not in self._plans:
            self._plans[task.id] = expert_plan(task, self.data_path, self.logic_dir)
        plan = self._plans[task.id]
        turn = n_agent_turns(conversation)
        if turn >= len(plan):
            return "ACTION: look"
        if turn == 0:
            goal = re.search(r"Your task is to: (.+)", conversation[-1]["value"])
            what = goal.group(1).strip().rstrip(".") if goal else "finish the task"
            return f"THOUGHT: The task is to {what}. I will follow a plan of {len(plan)} steps.\n ACTION: {plan[0]}"
        return f"ACTION: {plan[turn]}"


def aggregate(episodes: Sequence[Episode], tasks: Sequence[Task]) -> dict[str, Any]:
    """Success rate in percent (AgentBench's and the paper's ALFWorld metric), and the rate of each task type."""
    kinds = {t.id: t.data.get("task_type", "?") for t in tasks}
    by_type: dict[str, list[bool]] = {}
    for e in scored_episodes(episodes):
        by_type.setdefault(kinds.get(e.task_id, "?"), []).append(e.outcome == Outcome.SUCCESS)
    return {**success_rate(episodes, tasks), **{f"{k}_success": sum(v) / len(v) for k, v in sorted(by_type.items())}}


def _planner_check() -> str | None:
    import importlib.util
    if importlib.util.find_spec("fast_downward") is None:
        return ("environment 'alfworld' needs TextWorld's planner library (fast-downward-textworld), which PyPI "
                "ships only as source: run `make planner` (builds it once, several minutes, and caches the wheel)")
    return None


SPEC = EnvSpec(
    name="alfworld", env=ALFWorldEnv, load_tasks="agentlm.envs.alfworld_files:load_tasks", group="held_in",
    paper_task="ALFWorld",
    metric=Metric("success rate", aggregate), oracle=ExpertPlanOracle,
    oracle_options={"data_path": None, "logic_dir": None},
    action_format=ActionFormat(r"^\s*ACTION:", thought_prefix="THOUGHT: "),
    options={"data_path": None, "logic_dir": None, "prompts_file": None, "instruction_file": None,
             "prompt_file": None},
    requires=("textworld", "alfworld", "nltk"), check=_planner_check, install_hint="run `make install`",
    split="std",
    task_formats="AgentBench split file (std.json/dev.json), a JSON list of game paths, an ALFWorld data root "
                 "(json_2.1.1/ or json_2.1.1.tar.xz) with split train/valid_seen/valid_train/valid_unseen, or a "
                 "folder of game.tw-pddl files",
    description="ALFWorld's text games (TextWorld PDDL), AgentBench's protocol: 35 rounds, success rate")
