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
import logging
import os
import pathlib
import re
import tarfile
import threading
from typing import Any, Sequence

from agentlm.cache import build_once, cache_root
from agentlm.envs.agents import n_agent_turns
from agentlm.envs.base import Environment, Episode, Message, Outcome, StepResult, Task
from agentlm.envs.prompts import PromptScaffold, load_scaffold
from agentlm.envs.spec import ActionFormat, EnvSpec, Metric, scored_episodes, success_rate

log = logging.getLogger(__name__)

GAMES_DIR = "json_2.1.1"
ARCHIVE = "json_2.1.1.tar.xz"
GAME_FILE = "game.tw-pddl"
LOGIC_FILES = ("alfred.pddl", "alfred.twl2")
SPLITS = ("train", "valid_seen", "valid_train", "valid_unseen")
# Task folder prefix -> key of the example trajectory in AgentBench's prompt files (order as in its split files).
TASK_TYPES = {"pick_and_place": "put", "pick_clean_then_place": "clean", "pick_heat_then_place": "heat",
              "pick_cool_then_place": "cool", "look_at_obj": "examine", "pick_two_obj": "puttwo"}
OK_REPLY = "OK. I'll follow your instructions and try my best to solve the task."
EXAMPLE_PREFIX = "Here is one example.\n"
TASK_PREFIX = "Here is your task. "
BLEU_LIMIT = 0.01
REPEAT_WINDOW = 3
# TextWorld's PDDL backend (its grammar parser, Fast Downward's translator) keeps module-level state: two threads
# loading or stepping games at once fail ("pop from empty list"). Every game call of this process takes this lock;
# episodes still overlap in the agent's turns, which is where a model spends its time.
_GAME_LOCK = threading.RLock()

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


# -- where the games are -------------------------------------------------------------------------------------------

def extracted_archive(archive: str | os.PathLike) -> pathlib.Path:
    """An ALFWORLD_DATA root holding json_2.1.1/, extracted from `archive` once into the agentlm cache."""
    archive = pathlib.Path(archive)
    size = archive.stat().st_size
    stem = re.sub(r"\.(tar\.\w+|tgz|tar)$", "", archive.name)
    entry = cache_root() / "alfworld" / f"{stem}-{size}"  # the size tells two versions of one archive apart

    def build(tmp: pathlib.Path) -> None:
        log.info("extracting %s into %s (once)", archive, entry)
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        if not (tmp / GAMES_DIR).is_dir():
            raise ValueError(f"{archive}: the archive has no top-level {GAMES_DIR}/ folder")

    return build_once(entry, build, directory=True, what=f"ALFWorld games from {archive}")


def data_root(path: str | os.PathLike) -> pathlib.Path:
    """The ALFWORLD_DATA root for `path`: a folder holding json_2.1.1/ (or its archive), or the archive itself."""
    p = pathlib.Path(path).expanduser()
    if p.is_dir() and (p / GAMES_DIR).is_dir():
        return p
    archive = p if p.is_file() else p / ARCHIVE
    if archive.is_file():
        return extracted_archive(archive)
    raise FileNotFoundError(f"{p}: no ALFWorld data here (expected {GAMES_DIR}/ or {ARCHIVE})")


def env_root() -> pathlib.Path | None:
    """$ALFWORLD_DATA when it holds the games. The alfworld package sets it to its own default (~/.cache/alfworld,
    created empty) when unset, so an empty folder there means "not given", not an error."""
    given = os.environ.get("ALFWORLD_DATA")
    try:
        return data_root(given) if given else None
    except FileNotFoundError:
        return None


def find_root(near: pathlib.Path | None = None, data_path: str | None = None) -> pathlib.Path | None:
    """`data_path`, else $ALFWORLD_DATA (when it holds games), else the nearest folder at or above `near` that
    holds them."""
    if data_path:
        return data_root(data_path)
    root = env_root()
    if root is not None:
        return root
    for folder in ([near, *near.parents][:3] if near else []):
        if (folder / GAMES_DIR).is_dir() or (folder / ARCHIVE).is_file():
            return data_root(folder)
    return None


def logic_near(folder: pathlib.Path | None) -> pathlib.Path | None:
    """The `logic/` folder (alfred.pddl + alfred.twl2) at or up to two levels above `folder`, where AgentBench's
    base_config expects it ($ALFWORLD_DATA/logic)."""
    for f in ([folder, *folder.parents][:3] if folder else []):
        if all((f / "logic" / name).is_file() for name in LOGIC_FILES):
            return f / "logic"
    return None


def task_type(game: str) -> str:
    """The AgentBench task type ('pick_and_place', ...) of a game path, from its task folder."""
    folder = pathlib.PurePosixPath(game).parts[-3] if len(pathlib.PurePosixPath(game).parts) >= 3 else ""
    for prefix in TASK_TYPES:
        if folder.startswith(prefix):
            return prefix
    raise ValueError(f"{game}: task folder {folder!r} names no ALFWorld task type ({', '.join(TASK_TYPES)})")


def make_task(game: str, root: pathlib.Path | None, split: str, index: int, prefix: str = "alfworld",
              logic: pathlib.Path | None = None) -> Task:
    data = {"game": game, "task_type": task_type(game)}
    if root is not None:
        data["root"] = str(root)
    if logic is not None:
        data["logic"] = str(logic)
    return Task(id=f"{prefix}_{split}_{index:04d}", env="alfworld", data=data, split=split)


def walk_games(folder: pathlib.Path) -> tuple[list[pathlib.Path], dict[str, int]]:
    """Game files under `folder` that ALFWorld plays, in a fixed order, and how many were left out and why
    (as ALFWorld's loader does: unsolvable games, and the 'movable' and 'Sliced' trials it does not support)."""
    games, skipped = [], {"unsolvable": 0, "movable_or_sliced": 0}
    for path in sorted(folder.rglob(GAME_FILE)):
        if "movable" in str(path.parent) or "Sliced" in str(path.parent):
            skipped["movable_or_sliced"] += 1
            continue
        try:
            solvable = json.loads(path.read_text(encoding="utf-8")).get("solvable", False)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a game file ({e})") from None
        if not solvable:
            skipped["unsolvable"] += 1
            continue
        games.append(path)
    return games, skipped


def load_tasks(source: str | os.PathLike, split: str = "std") -> list[Task]:
    """Games from
    - an AgentBench split file (std.json / dev.json: {task type: [paths relative to the data root]}) or a JSON
      list of such paths; the root is $ALFWORLD_DATA or found beside the file;
    - an ALFWORLD_DATA root (json_2.1.1/ or its .tar.xz) with `split` one of train / valid_seen / valid_train /
      valid_unseen, or a folder of games; every solvable game.tw-pddl below it, in path order.
    """
    p = pathlib.Path(source).expanduser()
    if p.suffix == ".json" and p.is_file():
        try:
            content = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not JSON ({e})") from None
        if isinstance(content, dict):
            paths = [g for key, games in content.items() for g in _path_list(games, f"{p} key {key!r}")]
        else:
            paths = _path_list(content, str(p))
        root, logic = find_root(p.parent), logic_near(p.parent)
        return [make_task(g, root, p.stem, i, logic=logic) for i, g in enumerate(paths)]
    if not p.exists():
        raise FileNotFoundError(f"ALFWorld tasks: {p} does not exist (give a split file such as AgentBench's "
                                f"std.json, an ALFWorld data root, or a folder of {GAME_FILE} files)")
    if p.is_dir() and not (p / GAMES_DIR).is_dir() and not (p / ARCHIVE).is_file():
        root, folder, logic = None, p, logic_near(p)
    else:
        if split not in SPLITS:
            raise ValueError(f"{p}: an ALFWorld data root needs split one of {SPLITS}, not {split!r}")
        root, logic = data_root(p), logic_near(p if p.is_dir() else p.parent)
        folder = root / GAMES_DIR / split
    games, skipped = walk_games(folder)
    if any(skipped.values()):
        log.warning("%s: left out %s (as ALFWorld's own loader does)", folder, skipped)
    split_name = split if split in SPLITS else folder.name
    return [make_task(str(g.relative_to(root)) if root else str(g), root, split_name, i, logic=logic)
            for i, g in enumerate(games)]


def _path_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise ValueError(f"{where}: expected a list of game paths, got {type(value).__name__}")
    return value


def game_path(task: Task, data_path: str | None = None) -> pathlib.Path:
    """The game file of a task: absolute, or joined onto the data root (option, $ALFWORLD_DATA, or the task's)."""
    game = pathlib.Path(task.data["game"])
    if game.is_absolute():
        path = game
    else:
        root = find_root(data_path=data_path) or (pathlib.Path(task.data["root"]) if task.data.get("root") else None)
        if root is None:
            raise FileNotFoundError(f"task {task.id}: {game} is relative and no ALFWorld data root is known (set "
                                    f"$ALFWORLD_DATA, now {os.environ.get('ALFWORLD_DATA')!r}, or the data_path "
                                    f"option)")
        path = root / game
    if not path.is_file():
        raise FileNotFoundError(f"task {task.id}: game file {path} does not exist")
    return path


def logic_for(task: Task, data_path: str | None = None, logic_dir: str | None = None) -> pathlib.Path | None:
    """The domain and grammar a game is played with: `logic_dir` ("embedded" = the game file's own copy), else
    logic/ beside `data_path`, $ALFWORLD_DATA or the task's data, else None (the game's own copy)."""
    if logic_dir == "embedded":
        return None
    if logic_dir:
        found = logic_near(pathlib.Path(logic_dir).parent) if pathlib.Path(logic_dir).name == "logic" else None
        if found is None:
            raise FileNotFoundError(f"logic_dir {logic_dir}: expected a folder logic/ holding {LOGIC_FILES}")
        return found
    for base in (data_path, os.environ.get("ALFWORLD_DATA")):
        found = logic_near(pathlib.Path(base)) if base else None
        if found:
            return found
    return pathlib.Path(task.data["logic"]) if task.data.get("logic") else None


_TEMPLATE = re.compile(r'action (\w+) \{\s*template :: "([^"]*)";')
_GOAL = re.compile(r'"rhs": "Your task is to: ([^"]*)"')


def translate_plan(plan: Sequence[str], source_grammar: str, target_grammar: str) -> list[str]:
    """Commands written with one grammar's action templates, in another's (the newer game files say
    "move X to Y" where AgentBench's grammar says "put X in/on Y")."""
    source, target = dict(_TEMPLATE.findall(source_grammar)), dict(_TEMPLATE.findall(target_grammar))
    rules = []
    for action, template in source.items():
        if action in target and target[action] != template and "[" not in template:
            slots = re.split(r"(\{\w+\})", template)
            pattern = "".join(f"(?P<{s[1:-1]}>.+?)" if s.startswith("{") else re.escape(s) for s in slots)
            rules.append((re.compile(pattern + "$"), target[action]))
    out = []
    for command in plan:
        for pattern, template in rules:
            m = pattern.match(command)
            if m:
                command = template.format(**m.groupdict())
                break
        out.append(command)
    return out


def game_data(task: Task, data_path: str | None = None, logic_dir: str | None = None) -> dict[str, Any]:
    """The game as TextWorld's PDDL backend loads it. With AgentBench's logic/ (the default where it is found),
    its domain and grammar replace the game file's own copy, the game's goal goes into the grammar as ALFWorld's
    add_task_to_grammar does, and the expert plan is rewritten in that grammar's commands."""
    path = game_path(task, data_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"task {task.id}: {path} is not a game file ({e})") from None
    missing = [k for k in ("pddl_domain", "grammar", "pddl_problem") if k not in data]
    if missing:
        raise ValueError(f"task {task.id}: {path} lacks {missing}")
    logic = logic_for(task, data_path, logic_dir)
    if logic is None:
        return data
    grammar = (logic / "alfred.twl2").read_text(encoding="utf-8")
    goal = _GOAL.search(data["grammar"])
    if goal is None or "UNKNOWN GOAL." not in grammar:
        raise ValueError(f"task {task.id}: cannot carry the goal of {path} into {logic / 'alfred.twl2'}")
    walkthrough = translate_plan(data.get("walkthrough") or [], data["grammar"], grammar)
    return {**data, "pddl_domain": (logic / "alfred.pddl").read_text(encoding="utf-8"),
            "grammar": grammar.replace("UNKNOWN GOAL.", goal.group(1)), "walkthrough": walkthrough}


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
        with _GAME_LOCK:
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
        with _GAME_LOCK:
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
            with _GAME_LOCK:
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
                "ships only as source: run `make planner` (builds it once, ~15 min, and caches the wheel)")
    return None


SPEC = EnvSpec(
    name="alfworld", env=ALFWorldEnv, load_tasks=load_tasks, group="held_in", paper_task="ALFWorld",
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
